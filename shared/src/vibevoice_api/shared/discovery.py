"""Discovery routes of a model service: ``/v1/models``, ``/v1/models/{id}``, ``/v1/audio/models``, ``/``.

They describe the app's :class:`~.identity.ModelIdentity` (``app.state.identity``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from .identity import ModelIdentity
from .schemas import AudioModelList, ModelCard, ModelList

router = APIRouter()


def _identity(request: Request) -> ModelIdentity:
    return request.app.state.identity


@router.get("/v1/models", tags=["discovery"], response_model=ModelList)
async def models(request: Request) -> dict[str, Any]:
    return {"object": "list", "data": [ModelCard(id=_identity(request).id).model_dump()]}


@router.get("/v1/models/{model_id}", tags=["discovery"], response_model=ModelCard)
async def model(model_id: str, request: Request) -> dict[str, Any]:
    identity = _identity(request)
    identity.check(model_id)
    return ModelCard(id=identity.id).model_dump()


@router.get("/v1/audio/models", tags=["discovery"], response_model=AudioModelList)
async def audio_models(request: Request) -> dict[str, Any]:
    identity = _identity(request)
    return {"models": [{"id": identity.id, "name": identity.display_name}]}


@router.get("/", include_in_schema=False)
async def root(request: Request) -> dict[str, Any]:
    return {
        "name": request.app.title,
        "model": _identity(request).id,
        "state": request.app.state.holder.state,
        "docs": "/docs",
    }
