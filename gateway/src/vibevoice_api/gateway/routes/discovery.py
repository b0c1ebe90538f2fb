"""What the gateway serves: models (merged from every service), voices (from a TTS service), ``/``."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from vibevoice_api.shared.errors import NotFoundError
from vibevoice_api.shared.schemas import AudioModelList, ModelCard, ModelList, VoiceList

from ..upstream import Upstream, get_upstream

router = APIRouter(tags=["discovery"])
UpstreamDep = Annotated[Upstream, Depends(get_upstream)]

#: The OpenAI paths this gateway serves (each also without the /v1 prefix, see app.py).
API_PATHS = (
    "/v1/audio/speech",
    "/v1/audio/transcriptions",
    "/v1/audio/translations",
    "/v1/audio/voices",
    "/v1/audio/models",
    "/v1/models",
    "/v1/realtime",
)
ENDPOINTS = [p + " (WebSocket)" if p == "/v1/realtime" else p for p in API_PATHS]


async def merged_models(upstream: Upstream, kind: str | None = None) -> list[dict[str, Any]]:
    """Model cards of every service of ``kind`` (first one wins per id); an unreachable service's configured ids."""
    r = upstream.router
    states = r.backends(kind)
    results = await asyncio.gather(*(r.fetch_models(s) for s in states))
    seen: dict[str, dict[str, Any]] = {}
    for st, data in zip(states, results, strict=True):
        for card in data or [ModelCard(id=m).model_dump() for m in (st.models if not st.reachable else [])]:
            seen.setdefault(card["id"], card)
    return list(seen.values())


@router.get("/v1/audio/voices", summary="Voices (Open WebUI's shape)", response_model=VoiceList)
async def voices(request: Request, upstream: UpstreamDep, model: str | None = Query(None)) -> Response:
    state = await upstream.router.resolve("tts", model)
    return await upstream.forward(request, state, "/v1/audio/voices", read_timeout=upstream.settings.discovery_timeout)


@router.get("/v1/models", summary="Models of every reachable service", response_model=ModelList)
async def models(upstream: UpstreamDep) -> dict[str, Any]:
    return {"object": "list", "data": await merged_models(upstream)}


@router.get("/v1/models/{model_id}", summary="One model", response_model=ModelCard)
async def model(model_id: str, upstream: UpstreamDep) -> dict[str, Any]:
    target = upstream.router.aliases.get(model_id.lower(), model_id)
    for card in await merged_models(upstream):
        if card["id"] in (model_id, target):
            return card
    kind = upstream.router.names.kind_of(model_id)  # an OpenAI name by pattern: the model it is served by
    if kind in ("asr", "tts") and (cards := await merged_models(upstream, kind)):
        return cards[0]
    raise NotFoundError(f"The model `{model_id}` does not exist.", param="model", code="model_not_found")


@router.get(
    "/v1/audio/models",
    response_model=AudioModelList,
    summary="Audio models in Open WebUI's shape (speech models by default; kind=asr|all for others)",
)
async def audio_models(upstream: UpstreamDep, kind: str = Query("tts", pattern="^(tts|asr|all)$")) -> dict[str, Any]:
    cards = await merged_models(upstream, None if kind == "all" else kind)
    return {"models": [{"id": c["id"], "name": c["id"]} for c in cards]}


@router.get("/", tags=["ops"], summary="What this server is")
async def root(upstream: UpstreamDep) -> dict[str, Any]:
    return {
        "name": "vibevoice-api",
        "description": "OpenAI-compatible speech API for Microsoft VibeVoice (ASR + realtime TTS).",
        "base_url": "/v1",
        "endpoints": ENDPOINTS,
        "docs": "/docs",
        "playground": "/playground",
        "services": {s.backend.name: s.backend.url for s in upstream.router.states}
        | ({"live": upstream.settings.live_url} if upstream.settings.live_url else {}),
        "time": int(time.time()),
    }
