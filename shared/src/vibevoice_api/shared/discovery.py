"""What every model service says about its model: the model-name check and the discovery routes.

Both services accept their own model id and a list of aliases (``whisper-1``, ``tts-1``, ...), case
insensitively; an empty ``model`` means the service's own. Keeping the check and the routes in one
place keeps ``/v1/models`` and a request's ``model`` field from disagreeing between the services.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from .errors import InvalidRequestError, ModelNotFoundError
from .lifecycle import ModelHolder
from .schemas import AudioModelList, ModelCard, ModelList


def check_model(model: Any, model_id: str, aliases: Iterable[str]) -> str:
    """The name a request's ``model`` gives (``model_id`` when empty); 404 if this service does not serve it."""
    if model is None or (isinstance(model, str) and not model.strip()):
        return model_id
    if not isinstance(model, str):
        raise InvalidRequestError("'model' must be a string.", param="model", code="invalid_type")
    names = {model_id, *aliases}
    if model.strip().lower() not in {n.lower() for n in names}:
        raise ModelNotFoundError(model, sorted(names))
    return model.strip()


def install_model_routes(
    app: FastAPI, *, model_id: str, display_name: str, aliases: list[str], title: str, holder: ModelHolder[Any]
) -> None:
    """``/v1/models``, ``/v1/models/{id}``, ``/v1/audio/models`` (Open WebUI) and ``/`` for one model."""
    served = model_id  # the path parameter below keeps OpenAI's name

    @app.get("/v1/models", tags=["discovery"], response_model=ModelList)
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [ModelCard(id=served).model_dump()]}

    @app.get("/v1/models/{model_id}", tags=["discovery"], response_model=ModelCard)
    async def model(model_id: str) -> dict[str, Any]:
        check_model(model_id, served, aliases)
        return ModelCard(id=served).model_dump()

    @app.get("/v1/audio/models", tags=["discovery"], response_model=AudioModelList)
    async def audio_models() -> dict[str, Any]:
        return {"models": [{"id": served, "name": display_name}]}

    @app.get("/", include_in_schema=False)
    async def root() -> dict[str, Any]:
        return {"name": title, "model": served, "state": holder.state, "docs": "/docs"}
