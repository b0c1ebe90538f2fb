"""Realtime sessions leave no memory behind: 500 opened, used and closed one after another, then 50 at once.

Through the gateway of the whole stack (tiny models by default): each session is a transcription session (format
set, 1 s of speech appended and committed, transcript awaited) or a voice call (a short spoken answer awaited),
alternately. Prints every process's RSS after a warm-up of ``--warmup`` sessions, after the sequential run and after
the concurrent run, and whether all stayed within +30 MB (exit status 1 if not).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import rss_mb
from loadtest import make_models
from soak import whole_stack

BOUND_MB = 30
ENDS = ("conversation.item.input_audio_transcription.completed", "conversation.item.input_audio_transcription.failed")


async def session(gw: str, n: int, pcm: bytes) -> str:
    call = n % 2 == 1
    url = (
        gw.replace("http://", "ws://", 1) + "/v1/realtime?" + ("model=gpt-realtime" if call else "intent=transcription")
    )
    async with websockets.connect(url, max_size=None, open_timeout=120) as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        if call:
            await ws.send(json.dumps({"type": "response.create", "response": {"instructions": "Say this: Hi there."}}))
        else:
            session = {"type": "transcription", "audio": {"input": {"turn_detection": None}}}
            await ws.send(json.dumps({"type": "session.update", "session": session}))
            await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()}))
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        while True:
            e = json.loads(await asyncio.wait_for(ws.recv(), 300))
            if e["type"] == "response.done":
                return e["response"]["status"]
            if e["type"] in ENDS:
                return e["type"].rsplit(".", 1)[-1]
            if e["type"] == "error":
                return "error:" + str(e["error"].get("code"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sequential", type=int, default=500)
    ap.add_argument("--concurrent", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp) / "models"
        make_models(models)
        wav = Path(tmp) / "a.wav"
        subprocess.run(["espeak-ng", "-w", str(wav), "Good morning."], check=True)
        pcm = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", str(wav), "-f", "s16le", "-ac", "1", "-ar", "24000", "-"],
            capture_output=True,
            check=True,
        ).stdout
        # Capacity for 50 sessions' jobs at once (queued, not refused): this measures leaks, not admission.
        with whole_stack(models, Path(tmp), 4, 64) as (gw, procs):
            outcomes: dict[str, int] = {}

            def rss() -> dict[str, float]:
                return {n: round(rss_mb(p.pid)[0], 1) for n, p in procs.items()}

            async def run() -> dict[str, dict[str, float]]:
                for n in range(args.warmup):
                    await session(gw, n, pcm)
                marks = {"after_warmup": rss()}
                for n in range(args.sequential):
                    out = await session(gw, n, pcm)
                    outcomes[out] = outcomes.get(out, 0) + 1
                marks["after_sequential"] = rss()
                for out in await asyncio.gather(*(session(gw, n, pcm) for n in range(args.concurrent))):
                    outcomes[out] = outcomes.get(out, 0) + 1
                marks["after_concurrent"] = rss()
                return marks

            marks = asyncio.run(run())
            growth = {n: round(max(m[n] for m in marks.values()) - marks["after_warmup"][n], 1) for n in procs}
            report = {
                "sessions": {"sequential": args.sequential, "concurrent": args.concurrent},
                "outcomes": outcomes,
                "rss_mb": marks,
                "rss_growth_mb": growth,
                "within_30_mb": all(g <= BOUND_MB for g in growth.values()),
            }
            print(json.dumps(report, indent=2))
    sys.exit(0 if report["within_30_mb"] else 1)


if __name__ == "__main__":
    main()
