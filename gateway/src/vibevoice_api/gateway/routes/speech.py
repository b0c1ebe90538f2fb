"""``POST /v1/audio/speech``: forwarded to the TTS service that serves the requested model."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from vibevoice_api.shared.openapi import AUDIO_RESPONSE, json_body
from vibevoice_api.shared.schemas import SpeechRequest

from ..upstream import Upstream, get_upstream

router = APIRouter(tags=["audio"])


@router.post(
    "/v1/audio/speech",
    summary="Create speech (TTS)",
    openapi_extra=json_body(SpeechRequest),
    responses={200: AUDIO_RESPONSE},
)
async def speech(request: Request, upstream: Annotated[Upstream, Depends(get_upstream)]) -> Response:
    return await upstream.forward_json(request, "tts", "/v1/audio/speech")
