"""Load test: the full stack (gateway + ASR + TTS on tiny models) driven past its capacity.

Capacity = the services' admission limits (max_concurrency + max_queue). For each load level the driver
keeps ``level × capacity`` requests in flight for ``--seconds`` and reports, per level: answered with
success, answered with a proper OpenAI error (429/503 with Retry-After), lost or hung (no answer within
``--timeout``; must be 0), p50/p99 latency of successes, and RSS of every process before and after.
Loopback only; bounded in count and time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BIN, ROOT, free_port, pct, rss_mb, start, stop


def make_models(target: Path) -> None:
    for module in ("vibevoice_api.asr.engine.tiny", "vibevoice_api.tts.engine.tiny"):
        subprocess.run(
            [str(BIN / "python"), "-m", module, str(target)], check=True, cwd=ROOT, stdout=subprocess.DEVNULL
        )


async def run_level(gateway: str, in_flight: int, seconds: float, timeout: float, wav: bytes) -> dict:
    ok = errors = lost = 0
    bad_errors: list[str] = []
    lat: list[float] = []
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=in_flight + 8, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def worker(i: int) -> None:
            nonlocal ok, errors, lost
            while time.monotonic() < stop_at:
                t = time.perf_counter()
                try:
                    if i % 2:
                        r = await client.post(
                            gateway + "/v1/audio/speech",
                            json={
                                "model": "tts-1",
                                "input": "Load test sentence.",
                                "voice": "carter",
                                "response_format": "pcm",
                            },
                        )
                    else:
                        r = await client.post(
                            gateway + "/v1/audio/transcriptions",
                            files={"file": ("a.wav", wav)},
                            data={"model": "whisper-1"},
                        )
                except httpx.TimeoutException:
                    lost += 1
                    continue
                except httpx.HTTPError as exc:
                    lost += 1
                    bad_errors.append(type(exc).__name__)
                    continue
                if r.status_code == 200:
                    ok += 1
                    lat.append(time.perf_counter() - t)
                else:
                    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                    shaped = set(body.get("error", {})) == {"message", "type", "param", "code"}
                    if shaped and (r.status_code not in (429, 503) or "retry-after" in r.headers):
                        errors += 1
                        await asyncio.sleep(float(r.headers.get("retry-after", "1")) * 0.2)
                    else:
                        lost += 1
                        bad_errors.append(f"{r.status_code}:{r.text[:80]}")

        await asyncio.gather(*(worker(i) for i in range(in_flight)))
    return {
        "in_flight": in_flight,
        "answered_ok": ok,
        "answered_error": errors,
        "lost_or_hung": lost,
        "p50_ms": round(pct(lat, 50) * 1000, 1),
        "p99_ms": round(pct(lat, 99) * 1000, 1),
        "bad": bad_errors[:5],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--levels", default="2,10", help="multiples of capacity")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--concurrency", type=int, default=2, help="VIBEVOICE_MAX_CONCURRENCY of each service")
    ap.add_argument("--queue", type=int, default=4, help="VIBEVOICE_MAX_QUEUE of each service")
    args = ap.parse_args()
    capacity = args.concurrency + args.queue
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        make_models(models)
        wav = Path(tmp) / "a.wav"
        subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=2", str(wav)], check=True)
        ports = {n: free_port() for n in ("asr", "tts", "gateway")}
        env = {
            "VIBEVOICE_MODEL_DIR": str(models),
            "VIBEVOICE_DEVICE": "cpu",
            "VIBEVOICE_AUTO_DOWNLOAD": "false",
            "VIBEVOICE_LOG_LEVEL": "warning",
            "VIBEVOICE_MAX_CONCURRENCY": str(args.concurrency),
            "VIBEVOICE_MAX_QUEUE": str(args.queue),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
            "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{ports['asr']}",
            "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{ports['tts']}",
        }
        procs = {
            n: start(
                [str(BIN / f"vibevoice-{n}"), "--host", "127.0.0.1", "--port", str(ports[n])],
                env=env,
                ready=f"http://127.0.0.1:{ports[n]}/ready",
                timeout=300,
            )
            for n in ("asr", "tts", "gateway")
        }
        try:
            gateway = f"http://127.0.0.1:{ports['gateway']}"
            report = {"capacity_per_service": capacity, "levels": []}
            for level in [float(x) for x in args.levels.split(",")]:
                before = {n: round(rss_mb(p.pid)[0], 1) for n, p in procs.items()}
                res = asyncio.run(
                    run_level(gateway, max(1, int(level * capacity)), args.seconds, args.timeout, wav.read_bytes())
                )
                after = {n: round(rss_mb(p.pid)[0], 1) for n, p in procs.items()}
                report["levels"].append({"x_capacity": level, **res, "rss_before_mb": before, "rss_after_mb": after})
            print(json.dumps(report, indent=2))
        finally:
            for p in procs.values():
                stop(p)


if __name__ == "__main__":
    main()
