"""``POST /v1/audio/transcriptions`` and ``/translations``: uploads streamed through to an ASR service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from vibevoice_api.shared.openapi import transcription_form, transcription_responses

from ..upstream import Upstream, get_upstream

router = APIRouter(tags=["audio"])


@router.post(
    "/v1/audio/transcriptions",
    summary="Create transcription (ASR)",
    openapi_extra=transcription_form(),
    responses=transcription_responses(),
)
async def transcriptions(request: Request, upstream: Annotated[Upstream, Depends(get_upstream)]) -> Response:
    return await upstream.forward_upload(request, "/v1/audio/transcriptions")


@router.post(
    "/v1/audio/translations",
    summary="Create translation into English (ASR)",
    openapi_extra=transcription_form(translation=True),
    responses=transcription_responses(),
)
async def translations(request: Request, upstream: Annotated[Upstream, Depends(get_upstream)]) -> Response:
    return await upstream.forward_upload(request, "/v1/audio/translations")
