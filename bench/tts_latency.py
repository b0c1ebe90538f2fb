"""TTS engine speed, side by side in one run: first-audio latency vs whole utterance, RTF, concurrency.

Default: a mid-size random VibeVoice-Realtime (written to a temp dir in the official layout);
`--model-dir` points it at real weights (same script on a GPU). Prints JSON with ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TEXT_30S = (
    "The morning train was late again, so Maria opened her notebook and started planning the week. "
    "She had three meetings, a dentist appointment, and a long overdue call with her brother. "
    "By the time the train arrived, the list was done and the coffee was cold."
)


async def one(engine, text: str, voice: str, seed: int) -> dict:
    t0 = time.perf_counter()
    first = None
    samples = 0
    async for chunk in engine.stream(text, voice, seed=seed):
        if first is None:
            first = time.perf_counter() - t0
        samples += chunk.size
    total = time.perf_counter() - t0
    return {"first_audio_s": first, "total_s": total, "audio_s": samples / engine.sample_rate}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, default=None, help="MODEL_DIR with real weights (default: mid random)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", default="mid", choices=("tiny", "mid"))
    ap.add_argument("--latents-per-token", type=float, default=2.5, help="budget for random weights (no EOS)")
    args = ap.parse_args()
    from vibevoice_api.tts.engine import EngineConfig, TTSEngine

    with tempfile.TemporaryDirectory() as tmp:
        root = args.model_dir
        if root is None:
            root = Path(tmp)
            from vibevoice_api.tts.engine.tiny import write_tiny_realtime_model, write_tiny_voice_presets

            m = write_tiny_realtime_model(root / "VibeVoice-Realtime-0.5B", size=args.size)
            write_tiny_voice_presets(m, root / "voices" / "streaming_model")
        eng = TTSEngine.load(
            EngineConfig(
                model_dir=root / "VibeVoice-Realtime-0.5B",
                voices_dir=root / "voices" / "streaming_model",
                device=args.device,
                latents_per_token=args.latents_per_token,
                max_concurrency=4,
            )
        )
        voice = eng.resolve_voice("carter")
        params = sum(p.numel() for p in eng.loaded.model.parameters())
        eng.warmup()
        single = asyncio.run(one(eng, TEXT_30S, voice, 0))

        async def four():
            t0 = time.perf_counter()
            res = await asyncio.gather(*(one(eng, TEXT_30S, voice, s) for s in range(4)))
            return res, time.perf_counter() - t0

        multi, wall = asyncio.run(four())
        eng.close()
    out = {
        "model_parameters": params,
        "single": single,
        "first_audio_over_total": round(single["first_audio_s"] / single["total_s"], 4),
        "rtf_single": round(single["total_s"] / single["audio_s"], 3),
        "four_streams": {
            "aggregate_audio_s_per_s": round(sum(r["audio_s"] for r in multi) / wall, 3),
            "single_audio_s_per_s": round(single["audio_s"] / single["total_s"], 3),
            "first_audio_s_mean": round(float(np.mean([r["first_audio_s"] for r in multi])), 3),
        },
    }
    out["four_streams"]["throughput_ratio_vs_single"] = round(
        out["four_streams"]["aggregate_audio_s_per_s"] / out["four_streams"]["single_audio_s_per_s"], 3
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
