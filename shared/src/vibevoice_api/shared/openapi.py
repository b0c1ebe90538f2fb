"""OpenAPI documentation for routes that read their body by hand (proxying, streaming forms).

Such routes cannot let FastAPI parse the body, so they describe it with ``openapi_extra``; the
pydantic models they reference are added to ``components/schemas`` by :func:`install_openapi`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from .events import (
    ErrorEvent,
    SpeechAudioDelta,
    SpeechAudioDone,
    TranscriptTextDelta,
    TranscriptTextDone,
    TranscriptTextSegment,
)
from .formats import SPEECH_FORMATS
from .schemas import ErrorResponse, TranscriptionDiarized, TranscriptionJSON, TranscriptionVerbose
from .transcription_request import NESTED_MODELS, form_schema

REF = "#/components/schemas/{model}"
_EXTRA_MODELS: dict[str, type[BaseModel]] = {}


def ref(model: type[BaseModel]) -> dict[str, str]:
    _EXTRA_MODELS[model.__name__] = model
    return {"$ref": REF.format(model=model.__name__)}


def json_body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref(model)}}}}


def transcription_form(*, translation: bool = False) -> dict[str, Any]:
    """The request bodies of ``/v1/audio/transcriptions`` (and translations), from the request model."""
    for model in NESTED_MODELS:
        ref(model)
    return {"requestBody": {"required": True, "content": form_schema(translation=translation)}}


def event_stream(*events: type[BaseModel]) -> dict[str, Any]:
    """A ``text/event-stream`` body: each event's ``data`` holds one of ``events`` as JSON.

    Before OpenAPI 3.2 (``itemSchema``) the media type's ``schema`` describes one event, read as
    the object ``{data, event, id, retry}``; ``data`` is a JSON text, so it carries
    ``contentMediaType``/``contentSchema`` (JSON Schema 2020-12) rather than the model itself.
    """
    return {
        "schema": {
            "description": "Server-sent events: the `data:` line of each is one of these, as JSON.",
            "type": "object",
            "required": ["data"],
            "properties": {
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"oneOf": [ref(e) for e in events]},
                },
                "event": {"type": "string"},
                "id": {"type": "string"},
            },
        }
    }


AUDIO_RESPONSE = {
    "description": "Audio bytes in the requested format (chunked), or server-sent events when stream_format=sse.",
    "content": {
        **{f.content_type: {"schema": {"type": "string", "format": "binary"}} for f in SPEECH_FORMATS.values()},
        "text/event-stream": event_stream(SpeechAudioDelta, SpeechAudioDone, ErrorEvent),
    },
}


def transcription_responses() -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "Transcript in the requested response_format.",
            "content": {
                "application/json": {
                    "schema": {"oneOf": [ref(TranscriptionJSON), ref(TranscriptionVerbose), ref(TranscriptionDiarized)]}
                },
                "text/plain": {"schema": {"type": "string"}},
                "application/x-subrip": {"schema": {"type": "string"}},
                "text/vtt": {"schema": {"type": "string"}},
                "text/event-stream": event_stream(
                    TranscriptTextDelta, TranscriptTextSegment, TranscriptTextDone, ErrorEvent
                ),
            },
        }
    }


def install_openapi(app: FastAPI) -> None:
    """Generate the schema once, adding the models referenced by hand-written request bodies."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        _document_errors(schema)
        for model in [*_EXTRA_MODELS.values(), ErrorResponse]:
            js = model.model_json_schema(ref_template=REF)
            for def_name, def_schema in js.pop("$defs", {}).items():
                comps.setdefault(def_name, def_schema)
            comps.setdefault(model.__name__, js)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_ERRORS = {
    "400": "Invalid request (OpenAI error shape)",
    "401": "Missing or wrong API key",
    "404": "Unknown model or path",
    "413": "Body too large",
    "415": "Unsupported media type",
    "429": "Busy: retry after the Retry-After header",
    "500": "Internal error",
    "502": "Upstream failed",
    "503": "Not ready, or upstream unavailable",
    "504": "Upstream timed out",
    "507": "No room to store the upload",
}


def _document_errors(schema: dict[str, Any]) -> None:
    """Every operation can answer with the OpenAI error shape; FastAPI's 422 never leaves our apps (it is a 400)."""
    error = {"application/json": {"schema": {"$ref": REF.format(model="ErrorResponse")}}}
    for path_item in schema.get("paths", {}).values():
        for op in path_item.values():
            if not isinstance(op, dict) or "responses" not in op:
                continue
            op["responses"].pop("422", None)
            for code, desc in _ERRORS.items():
                op["responses"].setdefault(code, {"description": desc, "content": error})
