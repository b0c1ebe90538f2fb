"""A stand-in service for gateway benchmarks: answers at once, so only proxy cost is measured."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse

app = FastAPI()


@app.get("/v1/models")
async def models() -> dict:
    return {
        "object": "list",
        "data": [
            {"id": "vibevoice-realtime", "object": "model", "created": 0, "owned_by": "bench"},
            {"id": "vibevoice-asr", "object": "model", "created": 0, "owned_by": "bench"},
        ],
    }


@app.get("/ready")
async def ready() -> dict:
    return {"status": "ready"}


@app.post("/v1/audio/speech")
async def speech(request: Request):
    body = await request.json()
    if body.get("stream_delay"):
        delay = float(body["stream_delay"])

        async def gen():
            yield b"x" * 1024
            for _ in range(5):
                await asyncio.sleep(delay)
                yield b"y" * 1024

        return StreamingResponse(gen(), media_type="audio/mpeg")
    return JSONResponse({"ok": True})


@app.post("/v1/audio/transcriptions")
async def transcriptions(request: Request):
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"text": str(size)}
