"""ASR engine speed, side by side in one run: real-time factor by audio length, batched vs sequential
throughput, and peak memory of decoding an hour of audio.

Default: a mid-size random VibeVoice-ASR in the original layout (converted on load, as users' downloads
are); `--model-dir` points it at real weights (same script on a GPU). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SR = 24000


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    env = (np.sin(2 * np.pi * 0.7 * t) > 0).astype(np.float32)
    return (
        0.1 * env * np.sin(2 * np.pi * (180 + 40 * np.sin(2 * np.pi * 3 * t)) * t) + 0.01 * rng.standard_normal(t.size)
    ).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, default=None, help="VibeVoice-ASR folder with real weights")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", default="mid", choices=("tiny", "mid"))
    ap.add_argument("--lengths", default="10,60", help="seconds; add 600 for 10 minutes")
    ap.add_argument("--min-new-tokens", type=int, default=64, help="generation floor (random weights never stop)")
    args = ap.parse_args()
    from vibevoice_api.asr.engine import ASREngine, EngineConfig

    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model_dir
        if folder is None:
            from vibevoice_api.asr.engine.tiny import write_tiny_asr_model

            folder = write_tiny_asr_model(Path(tmp) / "VibeVoice-ASR", layout="original", size=args.size)
        eng = ASREngine.load(
            EngineConfig(
                model_dir=folder,
                device=args.device,
                min_new_tokens=args.min_new_tokens,
                tokens_per_second=1.0,
                max_batch_size=8,
                max_batch_wait_ms=200,
                # random weights loop at once; a fixed token budget keeps the workload comparable
                loop_detection=args.model_dir is not None,
            )
        )
        out["model_parameters"] = sum(p.numel() for p in eng.loaded.model.parameters())
        eng.warmup()
        out["rtf"] = {}
        for secs in (float(x) for x in args.lengths.split(",")):
            audio = speechlike(secs)
            t0 = time.perf_counter()
            asyncio.run(eng.transcribe(audio))
            out["rtf"][f"{secs:.0f}s"] = round((time.perf_counter() - t0) / secs, 4)
        clips = [speechlike(8.0, seed=i) for i in range(8)]
        t0 = time.perf_counter()
        for c in clips:
            asyncio.run(eng.transcribe(c))
        sequential = time.perf_counter() - t0

        async def together():
            return await asyncio.gather(*(eng.transcribe(c) for c in clips))

        t0 = time.perf_counter()
        asyncio.run(together())
        batched = time.perf_counter() - t0
        out["eight_requests"] = {
            "sequential_s": round(sequential, 2),
            "batched_s": round(batched, 2),
            "throughput_ratio": round(sequential / batched, 2),
        }
        eng.close()
        # Decoding an hour-long upload: peak RSS of a fresh process (the decoder streams from disk).
        mp3 = Path(tmp) / "hour.mp3"
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=300:duration=3600",
                "-c:a",
                "libmp3lame",
                "-b:a",
                "32k",
                str(mp3),
            ],
            check=True,
        )
        # VmHWM belongs to the new process image; ru_maxrss would inherit this (large) parent's peak across exec.
        code = (
            "import re; from vibevoice_api.shared.audio import decode_audio; "
            f"a=decode_audio(r'{mp3}', 24000); "
            "hwm=int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
            "print(a.nbytes/2**20, hwm/1024)"
        )
        audio_mb, peak_mb = map(
            float,
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(),
        )
        out["decode_60min"] = {
            "samples_mb": round(audio_mb, 1),
            "peak_rss_mb": round(peak_mb, 1),
            "peak_over_samples": round(peak_mb / audio_mb, 2),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
