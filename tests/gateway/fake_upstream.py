"""Small upstream services for gateway tests: real ASGI apps that record what reached them."""

from __future__ import annotations

import asyncio
import threading

from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, StreamingResponse


class Recorder:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.release = threading.Event()
        self.cancelled = threading.Event()
        self.finished = threading.Event()
        self.upload_started = threading.Event()  # the first bytes of an upload reached the service
        self.ready = True


def fake_service(kind: str, model: str, rec: Recorder) -> FastAPI:
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": model, "object": "model", "created": 1, "owned_by": "test"}]}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        return JSONResponse({"status": "ready" if rec.ready else "loading"}, status_code=200 if rec.ready else 503)

    @app.get("/v1/audio/voices")
    async def voices() -> dict:
        return {"voices": [{"id": "en-Carter_man", "name": "Carter", "language": "en", "gender": "man"}]}

    @app.post("/v1/audio/speech")
    async def speech(request: Request):
        body = await request.json()
        rec.requests.append({"path": "speech", "body": body, "headers": dict(request.headers)})
        text = body.get("input", "")
        if text == "error":
            return JSONResponse(
                {"error": {"message": "bad voice", "type": "invalid_request_error", "param": "voice", "code": None}},
                status_code=400,
            )
        if text == "slow":
            await asyncio.sleep(5)

        async def gen():
            try:
                yield b"first-chunk|"
                # Hold the rest until the test releases it (or the client goes away).
                for _ in range(400):
                    if rec.release.is_set():
                        break
                    await asyncio.sleep(0.025)
                for i in range(3):
                    yield f"chunk{i}|".encode()
                rec.finished.set()
            except asyncio.CancelledError:
                rec.cancelled.set()
                raise

        return StreamingResponse(gen(), media_type="audio/mpeg")

    async def upload(request: Request, path: str):
        size = 0
        chunks = 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                chunks += 1
                if chunk:
                    rec.upload_started.set()
        except Exception:
            rec.cancelled.set()
            raise
        rec.requests.append({"path": path, "size": size, "chunks": chunks, "headers": dict(request.headers)})
        if request.headers.get("x-test-wait"):
            try:
                for _ in range(400):
                    if await request.is_disconnected():
                        rec.cancelled.set()
                        return JSONResponse({"text": "gone"})
                    await asyncio.sleep(0.025)
            except asyncio.CancelledError:
                rec.cancelled.set()
                raise
        return JSONResponse({"text": f"{kind} received {size} bytes", "usage": {"type": "duration", "seconds": 1.0}})

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(request: Request):
        return await upload(request, "transcriptions")

    @app.post("/v1/audio/translations")
    async def translations(request: Request):
        return await upload(request, "translations")

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_json({"type": "session.created", "model": ws.query_params.get("model")})
        while True:
            msg = await ws.receive_json()
            await ws.send_json({"type": "echo", "got": msg})
            if msg.get("type") == "bye":
                await ws.close()
                return

    return app
