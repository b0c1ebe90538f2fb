"""Gateway cost vs calling the service directly, measured side by side in one run.

Prints ratios (gateway / direct) for p50, p99 and requests/s on a small JSON request and a 10 MB
upload, time to first byte on a streamed response, and the gateway's peak RSS while it proxies a
large upload (it must stay flat: the body is streamed, not buffered).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx
from common import BIN, free_port, rss_mb, start, stop, summary


async def drive(url: str, n: int, concurrency: int, make_request) -> tuple[list[float], float]:
    lat: list[float] = []
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one() -> None:
            async with sem:
                t = time.perf_counter()
                r = await make_request(client, url)
                r.raise_for_status()
                lat.append(time.perf_counter() - t)

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(n)))
        return lat, time.perf_counter() - t0


async def small_json(client: httpx.AsyncClient, url: str) -> httpx.Response:
    return await client.post(
        url + "/v1/audio/speech", json={"model": "vibevoice-realtime", "input": "hi", "voice": "carter"}
    )


def upload_of(size: int):
    blob = b"\0" * size

    async def req(client: httpx.AsyncClient, url: str) -> httpx.Response:
        return await client.post(
            url + "/v1/audio/transcriptions", files={"file": ("a.wav", blob)}, data={"model": "vibevoice-asr"}
        )

    return req


async def ttfb(url: str, n: int) -> list[float]:
    out = []
    async with httpx.AsyncClient(timeout=60) as client:
        for _ in range(n):
            t = time.perf_counter()
            async with client.stream(
                "POST",
                url + "/v1/audio/speech",
                json={"model": "vibevoice-realtime", "input": "x", "voice": "c", "stream_delay": 0.02},
            ) as r:
                async for _ in r.aiter_raw():
                    out.append(time.perf_counter() - t)
                    break
    return out


async def big_upload(url: str, total_mb: int) -> None:
    async def body():
        chunk = b"\0" * (1 << 20)
        yield b'--bb\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n\r\n'
        for _ in range(total_mb):
            yield chunk
        yield b"\r\n--bb--\r\n"

    async with httpx.AsyncClient(timeout=600) as client:
        r = await client.post(
            url + "/v1/audio/transcriptions",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=bb"},
        )
        r.raise_for_status()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--upload-mb", type=int, default=500)
    args = ap.parse_args()
    up_port, gw_port = free_port(), free_port()
    upstream = start(
        [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "upstream_app:app",
            "--app-dir",
            "bench",
            "--port",
            str(up_port),
            "--log-level",
            "warning",
        ],
        ready=f"http://127.0.0.1:{up_port}/ready",
    )
    direct = f"http://127.0.0.1:{up_port}"
    gateway = f"http://127.0.0.1:{gw_port}"
    gw = start(
        [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(gw_port)],
        env={
            "VIBEVOICE_ASR_URL": direct,
            "VIBEVOICE_TTS_URL": direct,
            "VIBEVOICE_LOG_LEVEL": "warning",
            "VIBEVOICE_MAX_UPLOAD_MB": "4096",
        },
        ready=gateway + "/health",
    )
    results = {}
    try:
        for label, maker, n in (("small_json", small_json, args.requests), ("upload_10MB", upload_of(10 << 20), 40)):
            # Interleave direct and gateway rounds so machine noise hits both alike.
            rows = {"direct": [], "gateway": []}
            for _ in range(2):
                for which, url in (("direct", direct), ("gateway", gateway)):
                    lat, wall = asyncio.run(drive(url, n // 2, args.concurrency if n > 100 else 4, maker))
                    rows[which].append((lat, wall))
            d = summary("direct", [x for r in rows["direct"] for x in r[0]], sum(r[1] for r in rows["direct"]))
            g = summary("gateway", [x for r in rows["gateway"] for x in r[0]], sum(r[1] for r in rows["gateway"]))
            results[label] = {
                "direct": d,
                "gateway": g,
                "p50_ratio": g["p50_ms"] / d["p50_ms"],
                "p99_ratio": g["p99_ms"] / d["p99_ms"],
                "rps_ratio": g["rps"] / d["rps"],
            }
        t_direct = asyncio.run(ttfb(direct, 30))
        t_gw = asyncio.run(ttfb(gateway, 30))
        results["ttfb_stream"] = {
            "direct_ms": sorted(t_direct)[15] * 1000,
            "gateway_ms": sorted(t_gw)[15] * 1000,
            "ratio": sorted(t_gw)[15] / sorted(t_direct)[15],
        }
        before = rss_mb(gw.pid)
        asyncio.run(big_upload(gateway, args.upload_mb))
        after = rss_mb(gw.pid)
        results["upload_rss"] = {
            "upload_mb": args.upload_mb,
            "rss_before_mb": round(before[0], 1),
            "rss_after_mb": round(after[0], 1),
            "peak_rss_mb": round(after[1], 1),
            "peak_growth_mb": round(after[1] - before[1], 1),
        }
    finally:
        stop(gw)
        stop(upstream)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
