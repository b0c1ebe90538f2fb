"""``GET /v1/audio/voices``: the installed voice presets, in Open WebUI's shape."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from vibevoice_api.shared.schemas import VoiceList

from ..engine_api import engine_of

router = APIRouter(tags=["discovery"])


@router.get("/v1/audio/voices", response_model=VoiceList, summary="Voice presets (Open WebUI's shape)")
async def voices(request: Request) -> dict[str, Any]:
    eng = engine_of(request)
    return {
        "voices": [{"id": v.id, "name": v.name, "language": v.language, "gender": v.gender} for v in eng.list_voices()]
    }
