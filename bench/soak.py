"""Soak: the whole stack (gateway + ASR + TTS + live, optionally the vLLM server) under steady mixed load.

Keeps ``--level × capacity`` clients busy for ``--seconds`` with a mix of speech (chunked audio and SSE),
transcriptions (whole and SSE-streamed) and realtime sessions (a transcription session: append + commit; a voice
call: a spoken answer), all through the gateway. Reports per kind: answered, refused (an OpenAI 429 with
Retry-After; on a WebSocket an error/failed event carrying rate_limit_exceeded), lost or hung (no answer within
``--timeout``, a broken stream, a 5xx, a refusal without Retry-After: must be 0), and every process's RSS after
warm-up and at the end (flat = growth within 30 MB). Tiny models by default; ``--model-dir`` for real weights.
``make soak`` runs it for 10 minutes at 2× capacity; ``ASR_BACKEND=vllm`` puts a local vLLM server behind the ASR.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "deploy" / "local"))
from common import BIN, free_port, rss_mb, start, stop
from loadtest import make_models

KINDS = ("speech", "speech_sse", "transcription", "transcription_sse", "rt_transcription", "rt_call")
RSS_FLAT_MB = 30


class Tally:
    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.bad: list[str] = []

    def add(self, kind: str, outcome: str, detail: str = "") -> None:
        self.counts[(kind, outcome)] += 1
        if outcome == "lost" and len(self.bad) < 20:
            self.bad.append(f"{kind}: {detail}"[:200])


def _refusal(r: httpx.Response) -> bool:
    try:
        err = r.json()["error"]
    except (ValueError, KeyError, TypeError):
        return False
    return r.status_code == 429 and "retry-after" in r.headers and set(err) == {"message", "type", "param", "code"}


async def http_job(client: httpx.AsyncClient, gw: str, kind: str, wav: bytes) -> tuple[str, str]:
    if kind.startswith("speech"):
        body = {"model": "tts-1", "input": "Soak test sentence.", "voice": "carter", "response_format": "pcm"}
        if kind == "speech_sse":
            body["stream_format"] = "sse"
        req = client.build_request("POST", gw + "/v1/audio/speech", json=body)
    else:
        data = {"model": "whisper-1"} if kind == "transcription" else {"model": "gpt-4o-transcribe", "stream": "true"}
        req = client.build_request("POST", gw + "/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, data=data)
    r = await client.send(req, stream=True)
    try:
        if r.status_code != 200:
            await r.aread()
            return ("refused", "") if _refusal(r) else ("lost", f"{r.status_code} {r.text[:100]}")
        raw = b"".join([c async for c in r.aiter_bytes()])
    finally:
        await r.aclose()
    if kind.endswith("_sse"):
        events = [json.loads(x[6:]) for x in raw.decode().split("\n") if x.startswith("data: ") and x[6:] != "[DONE]"]
        last = events[-1]["type"] if events else ""
        if last not in ("speech.audio.done", "transcript.text.done"):
            codes = [e.get("error", {}).get("code") for e in events if e.get("type") == "error"]
            return ("refused", "") if "rate_limit_exceeded" in codes else ("lost", f"sse ended with {last!r} {codes}")
    elif not raw:
        return "lost", "empty body"
    return "ok", ""


def _rt_outcome(e: dict) -> str | None:
    """ok/refused/lost once the session's exchange is over, None while it goes on."""
    t = e["type"]
    if t in ("conversation.item.input_audio_transcription.completed",):
        return "ok"
    if t == "response.done":
        if e["response"]["status"] == "completed":
            return "ok"
        err = (e["response"].get("status_details") or {}).get("error") or {}
        return "refused" if err.get("code") == "rate_limit_exceeded" else "lost"  # the TTS service's 429, passed on
    if t in ("conversation.item.input_audio_transcription.failed", "error"):
        err = e.get("error") or {}
        return "refused" if err.get("code") in ("rate_limit_exceeded", "too_many_requests") else "lost"
    return None


async def rt_job(gw: str, kind: str, pcm: bytes, timeout: float) -> tuple[str, str]:
    url = gw.replace("http://", "ws://", 1) + "/v1/realtime?"
    url += "intent=transcription" if kind == "rt_transcription" else "model=gpt-realtime"
    async with websockets.connect(url, max_size=None, open_timeout=timeout) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if first["type"] != "session.created":
            return ("refused", "") if _rt_outcome(first) == "refused" else ("lost", json.dumps(first)[:150])
        if kind == "rt_transcription":
            await ws.send(
                json.dumps(
                    {
                        "type": "session.update",
                        "session": {
                            "type": "transcription",
                            "audio": {"input": {"transcription": {"model": "gpt-transcribe"}, "turn_detection": None}},
                        },
                    }
                )
            )
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        else:
            await ws.send(json.dumps({"type": "response.create", "response": {"instructions": "Say this: Hello."}}))
        while True:
            e = json.loads(await asyncio.wait_for(ws.recv(), timeout))
            if e["type"] == "session.updated":
                continue
            outcome = _rt_outcome(e)
            if outcome is not None:
                return outcome, json.dumps(e)[:150]


async def drive(gw: str, clients: int, seconds: float, timeout: float, wav: bytes, pcm: bytes, tally: Tally) -> None:
    stop_at = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients + 8, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:

        async def worker(i: int) -> None:
            n = i
            while time.monotonic() < stop_at:
                kind = KINDS[n % len(KINDS)]
                n += 1
                try:
                    if kind.startswith("rt_"):
                        outcome, detail = await asyncio.wait_for(rt_job(gw, kind, pcm, timeout), timeout * 2)
                    else:
                        outcome, detail = await asyncio.wait_for(http_job(client, gw, kind, wav), timeout)
                except (asyncio.TimeoutError, httpx.TimeoutException):
                    outcome, detail = "lost", "hung (no answer in time)"
                except (httpx.HTTPError, websockets.WebSocketException, OSError, ValueError, KeyError) as exc:
                    outcome, detail = "lost", f"{type(exc).__name__}: {exc}"
                tally.add(kind, outcome, detail)
                if outcome == "refused":
                    await asyncio.sleep(0.5)

        await asyncio.gather(*(worker(i) for i in range(clients)))


@contextlib.contextmanager
def whole_stack(
    models: Path, tmp: Path, concurrency: int, queue: int, backend: str = "transformers"
) -> Iterator[tuple[str, dict[str, subprocess.Popen]]]:
    """ASR + TTS + live + gateway (and a vLLM server for ``backend="vllm"``) as processes: (gateway URL, procs)."""
    ports = {n: free_port() for n in ("asr", "tts", "live", "gateway")}
    env = {
        "VIBEVOICE_MODEL_DIR": str(models),
        "VIBEVOICE_CONVERTED_DIR": str(tmp / "converted"),
        "VIBEVOICE_DEVICE": os.environ.get("VIBEVOICE_DEVICE", "cpu"),
        "VIBEVOICE_AUTO_DOWNLOAD": "false",
        "VIBEVOICE_LOG_LEVEL": "warning",
        "VIBEVOICE_MAX_CONCURRENCY": str(concurrency),
        "VIBEVOICE_MAX_QUEUE": str(queue),
        "VIBEVOICE_ASR_BACKEND": backend,
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{ports['asr']}",
        "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{ports['tts']}",
        "VIBEVOICE_LIVE_URL": f"http://127.0.0.1:{ports['live']}",
    }
    procs: dict[str, subprocess.Popen] = {}
    try:
        if backend == "vllm":
            import vllm_server

            vport = free_port()
            procs["vllm"] = vllm_server.start(models / "VibeVoice-ASR", vport, stdout=subprocess.DEVNULL)
            env["VIBEVOICE_ASR_VLLM_URL"] = f"http://127.0.0.1:{vport}"
        for n in ("asr", "tts", "live", "gateway"):
            procs[n] = start(
                [str(BIN / f"vibevoice-{n}"), "--host", "127.0.0.1", "--port", str(ports[n])],
                env=env,
                ready=f"http://127.0.0.1:{ports[n]}/ready",
                timeout=900,
            )
        yield f"http://127.0.0.1:{ports['gateway']}", procs
    finally:
        for n, p in procs.items():
            if n == "vllm":
                os.killpg(p.pid, signal.SIGTERM)
                p.wait(30)
            else:
                stop(p)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--level", type=float, default=2.0, help="clients = level × capacity")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--concurrency", type=int, default=2, help="VIBEVOICE_MAX_CONCURRENCY of each service")
    ap.add_argument("--queue", type=int, default=4, help="VIBEVOICE_MAX_QUEUE of each service")
    ap.add_argument(
        "--backend", choices=("transformers", "vllm"), default=os.environ.get("ASR_BACKEND", "transformers")
    )
    ap.add_argument("--model-dir", type=Path, help="real weights (default: tiny random models)")
    args = ap.parse_args()
    capacity = args.concurrency + args.queue
    with tempfile.TemporaryDirectory() as tmp:
        models = args.model_dir or Path(tmp) / "models"
        if args.model_dir is None:
            make_models(models)
        wav_path = Path(tmp) / "a.wav"
        subprocess.run(
            ["espeak-ng", "-v", "en-us", "-w", str(wav_path), "Good morning, this is a soak test."], check=True
        )
        wav = wav_path.read_bytes()
        pcm = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(wav_path), "-f", "s16le", "-ac", "1", "-ar", "24000", "-"],
            capture_output=True,
            check=True,
        ).stdout
        with whole_stack(models, Path(tmp), args.concurrency, args.queue, args.backend) as (gw, procs):
            clients = max(len(KINDS), int(args.level * capacity))
            tally = Tally()
            warm = min(90.0, args.seconds / 6)
            asyncio.run(drive(gw, clients, warm, args.timeout, wav, pcm, Tally()))  # warm-up, not counted
            rss_warm = {n: round(rss_mb(p.pid)[0], 1) for n, p in procs.items()}
            t0 = time.monotonic()
            asyncio.run(drive(gw, clients, args.seconds, args.timeout, wav, pcm, tally))
            rss_end = {n: round(rss_mb(p.pid)[0], 1) for n, p in procs.items()}
            per_kind = {k: {o: tally.counts[(k, o)] for o in ("ok", "refused", "lost")} for k in KINDS}
            growth = {n: round(rss_end[n] - rss_warm[n], 1) for n in procs}
            report = {
                "backend": args.backend,
                "seconds": round(time.monotonic() - t0),
                "clients": clients,
                "capacity_per_service": capacity,
                "per_kind": per_kind,
                "answered_ok": sum(v["ok"] for v in per_kind.values()),
                "refused_429": sum(v["refused"] for v in per_kind.values()),
                "lost_or_hung": sum(v["lost"] for v in per_kind.values()),
                "rss_after_warmup_mb": rss_warm,
                "rss_end_mb": rss_end,
                "rss_growth_mb": growth,
                "rss_flat": all(g < RSS_FLAT_MB for g in growth.values()),
                "bad": tally.bad,
            }
            print(json.dumps(report, indent=2))
            ok = report["lost_or_hung"] == 0 and report["rss_flat"] and report["answered_ok"] > 0
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
