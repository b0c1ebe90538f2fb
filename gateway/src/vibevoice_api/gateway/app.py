"""The gateway app: OpenAI audio paths routed to the ASR and TTS services."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI, Query, Request, WebSocket
from fastapi.responses import JSONResponse, Response
from vibevoice_api.shared.app import create_app
from vibevoice_api.shared.errors import InvalidRequestError, NotFoundError, PayloadTooLargeError
from vibevoice_api.shared.openapi import (
    AUDIO_RESPONSE,
    install_openapi,
    json_body,
    transcription_form,
    transcription_responses,
)
from vibevoice_api.shared.schemas import ERROR_RESPONSES, AudioModelList, ModelCard, ModelList, SpeechRequest, VoiceList

from .proxy import forward, stream_body
from .realtime import proxy_realtime
from .routing import Router
from .settings import GatewaySettings

MODEL_FIELD = re.compile(
    rb'content-disposition:[^\r\n]*\bname="?model"?[^\r\n]*\r\n(?:[^\r\n]+\r\n)*\r\n(.*?)\r\n--', re.I | re.S
)
FILE_PART = re.compile(rb"content-disposition:[^\r\n]*\bfilename=", re.I)
PEEK_LIMIT = 64 * 1024


def build_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        limits = httpx.Limits(max_connections=settings.pool_size * 4, max_keepalive_connections=settings.pool_size)
        client = httpx.AsyncClient(
            limits=limits, timeout=httpx.Timeout(settings.tts_timeout, connect=settings.connect_timeout)
        )
        app.state.client = client
        app.state.router = Router(settings, client)
        state["router"] = app.state.router
        state["ready"] = {}
        try:
            yield
        finally:
            await client.aclose()

    def readiness() -> tuple[bool, dict[str, Any]]:
        # /ready is overridden below with a live fan-out; this is only the fallback.
        return True, {}

    app = create_app(
        title="vibevoice-api gateway",
        service="gateway",
        settings=settings,
        readiness=readiness,
        lifespan=lifespan,
        description="OpenAI-compatible speech API: VibeVoice-ASR (transcriptions) and VibeVoice-Realtime (speech).",
    )
    # Replace the generic /ready with one that asks every service.
    app.router.routes = [r for r in app.router.routes if getattr(r, "path", None) != "/ready"]

    def router() -> Router:
        return app.state.router

    async def read_json_body(request: Request) -> bytes:
        limit = int(settings.max_json_mb * 2**20)
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > limit:
            raise PayloadTooLargeError(f"JSON body exceeds the limit of {settings.max_json_mb:g} MiB.")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise PayloadTooLargeError(f"JSON body exceeds the limit of {settings.max_json_mb:g} MiB.")
        return bytes(body)

    def model_from_json(body: bytes) -> str | None:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequestError(
                "We could not parse the JSON body of your request. Expected a JSON object.", code="invalid_json"
            ) from exc
        if not isinstance(data, dict):
            raise InvalidRequestError("The request body must be a JSON object.", code="invalid_json")
        model = data.get("model")
        if model is not None and not isinstance(model, str):
            raise InvalidRequestError("'model' must be a string.", param="model", code="invalid_type")
        return model

    async def proxy_json(request: Request, kind: str, path: str) -> Response:
        body = await read_json_body(request)
        st = await router().resolve(kind, model_from_json(body))
        timeout = settings.tts_timeout if kind == "tts" else settings.asr_timeout
        return await forward(
            request,
            st,
            path,
            client=app.state.client,
            auth=router().upstream_auth(),
            read_timeout=timeout,
            connect_timeout=settings.connect_timeout,
            body=body,
        )

    async def proxy_upload(request: Request, path: str) -> Response:
        ctype = request.headers.get("content-type", "").lower()
        if ctype.startswith("application/json"):
            return await proxy_json(request, "asr", path)
        chunks = request.stream().__aiter__()
        prefix = bytearray()
        model: str | None = None
        if ctype.startswith("multipart/form-data"):
            # Peek until the model field (clients send it before the file) or the file part starts.
            async for chunk in chunks:
                prefix += chunk
                m = MODEL_FIELD.search(prefix)
                f = FILE_PART.search(prefix)
                if m and (not f or m.start() < f.start()):
                    model = m.group(1).decode("utf-8", "replace").strip()
                    break
                if f or len(prefix) > PEEK_LIMIT:
                    break
        st = await router().resolve("asr", model)
        done = asyncio.Event()
        return await forward(
            request,
            st,
            path,
            client=app.state.client,
            auth=router().upstream_auth(),
            read_timeout=settings.asr_timeout,
            connect_timeout=settings.connect_timeout,
            body=stream_body(chunks, done, bytes(prefix)),
            body_done=done,
        )

    responses = {**ERROR_RESPONSES}

    @app.post(
        "/v1/audio/speech",
        tags=["audio"],
        summary="Create speech (TTS)",
        openapi_extra=json_body(SpeechRequest),
        responses={200: AUDIO_RESPONSE, **responses},
    )
    async def speech(request: Request) -> Response:
        return await proxy_json(request, "tts", "/v1/audio/speech")

    @app.post(
        "/v1/audio/transcriptions",
        tags=["audio"],
        summary="Create transcription (ASR)",
        openapi_extra=transcription_form(),
        responses={**transcription_responses(), **responses},
    )
    async def transcriptions(request: Request) -> Response:
        return await proxy_upload(request, "/v1/audio/transcriptions")

    @app.post(
        "/v1/audio/translations",
        tags=["audio"],
        summary="Create translation into English (ASR)",
        openapi_extra=transcription_form(translation=True),
        responses={**transcription_responses(), **responses},
    )
    async def translations(request: Request) -> Response:
        return await proxy_upload(request, "/v1/audio/translations")

    @app.get("/v1/audio/voices", tags=["discovery"], summary="Voices (Open WebUI's shape)", response_model=VoiceList)
    async def voices(request: Request, model: str | None = Query(None)) -> Response:
        st = await router().resolve("tts", model)
        return await forward(
            request,
            st,
            "/v1/audio/voices",
            client=app.state.client,
            auth=router().upstream_auth(),
            read_timeout=settings.discovery_timeout,
            connect_timeout=settings.connect_timeout,
            body=None,
        )

    async def merged_models(kind: str | None = None) -> list[dict[str, Any]]:
        r = router()
        results = await asyncio.gather(*(r.fetch_models(s) for s in r.backends(kind)))
        seen: dict[str, dict[str, Any]] = {}
        for st, data in zip(r.backends(kind), results, strict=True):
            for card in data or [ModelCard(id=m).model_dump() for m in (st.models if not st.reachable else [])]:
                seen.setdefault(card["id"], card)
        return list(seen.values())

    @app.get("/v1/models", tags=["discovery"], summary="Models of every reachable service", response_model=ModelList)
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": await merged_models()}

    @app.get("/v1/models/{model_id}", tags=["discovery"], summary="One model", response_model=ModelCard)
    async def model(model_id: str) -> dict[str, Any]:
        target = router().aliases.get(model_id.lower(), model_id)
        for card in await merged_models():
            if card["id"] in (model_id, target):
                return card
        raise NotFoundError(f"The model `{model_id}` does not exist.", param="model", code="model_not_found")

    @app.get(
        "/v1/audio/models",
        tags=["discovery"],
        response_model=AudioModelList,
        summary="Audio models in Open WebUI's shape (speech models by default; kind=asr|all for others)",
    )
    async def audio_models(kind: str = Query("tts", pattern="^(tts|asr|all)$")) -> dict[str, Any]:
        cards = await merged_models(None if kind == "all" else kind)
        return {"models": [{"id": c["id"], "name": c["id"]} for c in cards]}

    @app.get("/ready", tags=["ops"], summary="Readiness of every configured service (503 until all are ready)")
    async def ready() -> JSONResponse:
        r = router()

        async def probe(st: Any) -> tuple[str, dict[str, Any]]:
            try:
                resp = await app.state.client.get(st.backend.url + "/ready", timeout=settings.discovery_timeout)
                try:
                    detail = resp.json()
                except ValueError:
                    detail = {}
                return st.backend.name, {
                    "ready": resp.status_code == 200,
                    "url": st.backend.url,
                    "kind": st.backend.kind,
                    "status": detail.get("status", resp.status_code),
                }
            except httpx.HTTPError as exc:
                return st.backend.name, {
                    "ready": False,
                    "url": st.backend.url,
                    "kind": st.backend.kind,
                    "status": "unreachable",
                    "error": type(exc).__name__,
                }

        results = dict(await asyncio.gather(*(probe(s) for s in r.states)))
        ok = bool(results) and all(v["ready"] for v in results.values())
        return JSONResponse(
            {"status": "ready" if ok else "not_ready", "service": "gateway", "services": results},
            status_code=200 if ok else 503,
        )

    @app.get("/", tags=["ops"], summary="What this server is")
    async def root() -> dict[str, Any]:
        return {
            "name": "vibevoice-api",
            "description": "OpenAI-compatible speech API for Microsoft VibeVoice (ASR + realtime TTS).",
            "base_url": "/v1",
            "endpoints": [
                "/v1/audio/speech",
                "/v1/audio/transcriptions",
                "/v1/audio/translations",
                "/v1/audio/voices",
                "/v1/audio/models",
                "/v1/models",
                "/v1/realtime (WebSocket)",
            ],
            "docs": "/docs",
            "services": {s.backend.name: s.backend.url for s in router().states},
            "time": int(time.time()),
        }

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        st = await _resolve_ws(router(), ws)
        if st is None:
            return
        await proxy_realtime(ws, st, router().upstream_auth(), settings.connect_timeout)

    # Forgiving aliases for clients configured without the /v1 prefix (a common Open WebUI mistake).
    for path, endpoint, methods in (
        ("/audio/speech", speech, ["POST"]),
        ("/audio/transcriptions", transcriptions, ["POST"]),
        ("/audio/translations", translations, ["POST"]),
        ("/audio/voices", voices, ["GET"]),
        ("/audio/models", audio_models, ["GET"]),
        ("/models", models, ["GET"]),
    ):
        app.add_api_route(path, endpoint, methods=methods, include_in_schema=False)
    app.add_api_websocket_route("/realtime", realtime)

    install_openapi(app)
    return app


async def _resolve_ws(router: Router, ws: WebSocket) -> Any:
    from vibevoice_api.shared.errors import APIError

    try:
        return await router.resolve("tts", ws.query_params.get("model"))
    except APIError as exc:
        await ws.accept()
        await ws.send_json({"type": "error", "error": exc.body()["error"]})
        await ws.close(code=1008)
        return None
