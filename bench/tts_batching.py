"""Batched TTS streams: aggregate audio throughput and time to first audio at 1, 2, 4, 8 and 16 concurrent streams.

For each model (tiny and mid random models of the real architecture on the CPU, or real weights with
``--model-dir``) and each path (in-process engine; HTTP through the gateway to the TTS service), N listeners
ask for the same amount of speech at once. Printed per load: aggregate audio seconds per wall second,
its ratio to one stream on the same model and path, and the median time to first audio. Everything runs in
one invocation, so the ratios compare like with like on a noisy machine.

    python bench/tts_batching.py                      # tiny + mid on the CPU, in-process + gateway
    python bench/tts_batching.py --model-dir /models --device cuda --loads 1,2,4,8,16,32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, free_port, start, stop

TEXT = (
    "The morning train was late again, so Maria opened her notebook and planned the week ahead: "
    "three meetings, a dentist appointment and a long overdue call with her brother."
)
SAMPLE_RATE = 24000


def summarise(results: list[dict], wall: float) -> dict:
    audio = sum(r["audio_s"] for r in results)
    return {
        "streams": len(results),
        "audio_s": round(audio, 2),
        "wall_s": round(wall, 2),
        "audio_s_per_s": round(audio / wall, 3),
        "median_first_audio_s": round(statistics.median(r["first_s"] for r in results), 3),
    }


def rounds(run, loads: list[int], repeat: int) -> list[dict]:
    """Every load ``repeat`` times, loads interleaved; per load the round with the best throughput
    (other work on a shared machine only ever slows a round down)."""
    best: dict[int, dict] = {}
    for _ in range(repeat):
        for n in loads:
            row = summarise(*run(n))
            if n not in best or row["audio_s_per_s"] > best[n]["audio_s_per_s"]:
                best[n] = row
    return [best[n] for n in loads]


# --------------------------------------------------------------------------------------------- in-process


async def _engine_listener(engine, voice: str, seed: int) -> dict:
    t0 = time.perf_counter()
    first, samples = None, 0
    async for chunk in engine.stream(TEXT, voice, seed=seed):
        if first is None:
            first = time.perf_counter() - t0
        samples += chunk.size
    return {"first_s": first, "audio_s": samples / SAMPLE_RATE}


def in_process(model_root: Path, args, loads: list[int]) -> list[dict]:
    from vibevoice_api.tts.engine import EngineConfig, TTSEngine

    eng = TTSEngine.load(
        EngineConfig(
            model_dir=model_root / "VibeVoice-Realtime-0.5B",
            voices_dir=model_root / "voices" / "streaming_model",
            device=args.device,
            max_concurrency=max(loads),
            max_queue=0,
            latents_per_token=args.latents_per_token,
            min_latents=args.min_latents,
            compile=args.compile,
        )
    )
    try:
        voice = eng.resolve_voice("carter")
        eng.warmup()

        async def run(n: int) -> tuple[list[dict], float]:
            t0 = time.perf_counter()
            res = await asyncio.gather(*(_engine_listener(eng, voice, s) for s in range(n)))
            return res, time.perf_counter() - t0

        return rounds(lambda n: asyncio.run(run(n)), loads, args.repeat)
    finally:
        eng.close()


# --------------------------------------------------------------------------------------------- HTTP


async def _http_listener(client: httpx.AsyncClient, url: str, seed: int) -> dict:
    body = {"model": "vibevoice-realtime", "input": TEXT, "voice": "carter", "response_format": "pcm", "seed": seed}
    t0 = time.perf_counter()
    first, size = None, 0
    async with client.stream("POST", url + "/v1/audio/speech", json=body) as r:
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {(await r.aread())[:300]!r}")
        async for data in r.aiter_bytes():
            if data and first is None:
                first = time.perf_counter() - t0
            size += len(data)
    return {"first_s": first, "audio_s": size / 2 / SAMPLE_RATE}


def through_gateway(model_root: Path, args, loads: list[int]) -> list[dict]:
    tts_port, gw_port = free_port(), free_port()
    env = {
        "VIBEVOICE_MODEL_DIR": str(model_root),
        "VIBEVOICE_DEVICE": args.device,
        "VIBEVOICE_AUTO_DOWNLOAD": "false",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VIBEVOICE_LOG_LEVEL": "warning",
        "VIBEVOICE_MAX_CONCURRENCY": str(max(loads)),
        "VIBEVOICE_MAX_QUEUE": "0",
        "VIBEVOICE_TTS_LATENTS_PER_TOKEN": str(args.latents_per_token or 1e-6),
        "VIBEVOICE_TTS_MIN_LATENTS": str(args.min_latents),
        "VIBEVOICE_TTS_COMPILE": "true" if args.compile else "false",
    }
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    tts = start(
        [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(tts_port)],
        env=env,
        ready=f"http://127.0.0.1:{tts_port}/ready",
        timeout=900,
    )
    gw = None
    try:
        gw = start(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(gw_port)],
            env={
                "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{tts_port}",
                "VIBEVOICE_ASR_URL": "",
                "VIBEVOICE_LIVE_URL": "",
                "VIBEVOICE_LOG_LEVEL": "warning",
            },
            ready=f"http://127.0.0.1:{gw_port}/ready",
            timeout=120,
        )
        url = f"http://127.0.0.1:{gw_port}"

        async def run(n: int) -> tuple[list[dict], float]:
            limits = httpx.Limits(max_connections=n + 4)
            async with httpx.AsyncClient(timeout=3600, limits=limits) as client:
                t0 = time.perf_counter()
                res = await asyncio.gather(*(_http_listener(client, url, s) for s in range(n)))
                return res, time.perf_counter() - t0

        asyncio.run(run(1))  # warm-up
        return rounds(lambda n: asyncio.run(run(n)), loads, args.repeat)
    finally:
        if gw is not None:
            stop(gw)
        stop(tts)


# --------------------------------------------------------------------------------------------- main


def with_ratios(rows: list[dict]) -> list[dict]:
    base = rows[0]["audio_s_per_s"]
    return [{**r, "throughput_vs_one": round(r["audio_s_per_s"] / base, 2)} for r in rows]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, default=None, help="MODEL_DIR with real weights (default: random)")
    ap.add_argument("--sizes", default="tiny,mid", help="random model sizes to run (without --model-dir)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--loads", default="1,2,4,8,16", help="concurrent streams per round")
    ap.add_argument("--paths", default="inprocess,gateway")
    ap.add_argument("--min-latents", type=int, default=48, help="speech latents per stream (7.5 per second)")
    ap.add_argument(
        "--latents-per-token", type=float, default=0.0, help="budget per text token (0: exactly --min-latents)"
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on cpu, torch's on cuda)")
    ap.add_argument("--repeat", type=int, default=2, help="rounds per load (the best is kept)")
    ap.add_argument("--compile", action="store_true", help="VIBEVOICE_TTS_COMPILE (torch.compile the head)")
    args = ap.parse_args()
    if args.threads is None and args.device == "cpu":
        args.threads = 1
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    loads = [int(x) for x in args.loads.split(",")]
    paths = args.paths.split(",")
    out: dict = {"device": args.device, "threads": args.threads, "latents_per_stream": args.min_latents}
    with tempfile.TemporaryDirectory() as tmp:
        models: list[tuple[str, Path]] = []
        if args.model_dir is not None:
            models.append(("real", args.model_dir))
        else:
            from vibevoice_api.tts.engine.tiny import write_tiny_realtime_model, write_tiny_voice_presets

            for size in args.sizes.split(","):
                root = Path(tmp) / size
                m = write_tiny_realtime_model(root / "VibeVoice-Realtime-0.5B", size=size)
                write_tiny_voice_presets(m, root / "voices" / "streaming_model")
                models.append((size, root))
        for name, root in models:
            entry = {}
            if "inprocess" in paths:
                entry["in_process"] = with_ratios(in_process(root, args, loads))
            if "gateway" in paths:
                entry["http_gateway"] = with_ratios(through_gateway(root, args, loads))
            out[name] = entry
            print(json.dumps({name: entry}), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
