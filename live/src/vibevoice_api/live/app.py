"""The live service app: ``/v1/realtime`` sessions (transcription and voice calls); owns no model."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.websockets import WebSocket
from vibevoice_api.shared.app import create_app

from . import metrics
from .protocol import ProtocolError, new_id
from .session import Session, session_type_for
from .settings import LiveSettings
from .upstream import Services
from .vad import VADPool

log = logging.getLogger("vibevoice_api.live")


def build_app(settings: LiveSettings | None = None) -> FastAPI:
    settings = settings or LiveSettings()
    state: dict[str, Any] = {"ready": False, "error": None, "open": 0}
    pool = VADPool()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import torch

        torch.set_num_threads(1)  # VAD frames are tiny; one thread per call keeps sessions from contending
        app.state.services = Services(settings)
        try:
            pool.release(await asyncio.to_thread(pool.acquire))  # load silero-vad once before ready
            state["ready"] = True
        except Exception as exc:
            log.exception("silero-vad failed to load")
            state["error"] = f"{type(exc).__name__}: {exc}"
        try:
            yield
        finally:
            await app.state.services.aclose()

    def readiness(_app: Any = None) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {"sessions": state["open"], "asr_url": settings.asr_url, "tts_url": settings.tts_url}
        if state["error"]:
            details.update(state="failed", error=state["error"])
        return state["ready"], details

    app = create_app(
        title="vibevoice-api live service",
        service="live",
        settings=settings,
        readiness=readiness,
        description="OpenAI Realtime sessions (transcription, voice calls) over the ASR and TTS services.",
        lifespan=lifespan,
    )

    async def refuse(ws: WebSocket, message: str, code: str, param: str | None, close_code: int) -> None:
        await ws.accept()
        await ws.send_json(
            {
                "type": "error",
                "event_id": new_id("event"),
                "error": {"type": "invalid_request_error", "code": code, "message": message, "param": param},
            }
        )
        await ws.close(code=close_code)

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        try:
            kind, model = session_type_for(ws.query_params.get("intent"), ws.query_params.get("model"), settings)
        except ProtocolError as exc:
            await refuse(ws, exc.message, exc.code, exc.param, 1008)
            return
        if state["open"] >= settings.live_max_sessions:
            metrics.ERRORS.labels("session_limit").inc()
            await refuse(ws, "Too many live sessions are open; retry shortly.", "rate_limit_exceeded", None, 1013)
            return
        await ws.accept()
        state["open"] += 1
        metrics.SESSIONS.labels(kind).inc()
        metrics.SESSIONS_TOTAL.labels(kind).inc()
        session = Session(ws, settings, app.state.services, pool, session_type=kind, model=model)
        log.info("session %s opened (%s, model %s)", session.id, kind, model)
        try:
            await session.run()
        finally:
            state["open"] -= 1
            metrics.SESSIONS.labels(kind).dec()
            log.info("session %s closed", session.id)

    app.add_api_websocket_route("/realtime", realtime)
    return app
