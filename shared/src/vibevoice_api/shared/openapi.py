"""OpenAPI documentation for routes that read their body by hand (proxying, streaming forms).

Such routes cannot let FastAPI parse the body, so they describe it with ``openapi_extra``; the
pydantic models they reference are added to ``components/schemas`` by :func:`install_openapi`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel

from .schemas import TRANSCRIPTION_FORMATS

REF = "#/components/schemas/{model}"
_EXTRA_MODELS: dict[str, type[BaseModel]] = {}


def ref(model: type[BaseModel]) -> dict[str, str]:
    _EXTRA_MODELS[model.__name__] = model
    return {"$ref": REF.format(model=model.__name__)}


def json_body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref(model)}}}}


def transcription_form(*, translation: bool = False) -> dict[str, Any]:
    """The multipart form of ``/v1/audio/transcriptions`` (and translations) as OpenAI documents it."""
    formats = [f for f in TRANSCRIPTION_FORMATS if not (translation and f == "diarized_json")]
    props: dict[str, Any] = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "Audio: wav, mp3, m4a, ogg/opus, flac, webm, mp4, pcm.",
        },
        "model": {
            "type": "string",
            "default": "vibevoice-asr",
            "description": "vibevoice-asr or an alias (whisper-1, ...).",
        },
        "prompt": {"type": "string", "description": "Context or hotwords (names, terms) for the model."},
        "response_format": {"type": "string", "enum": formats, "default": "json"},
        "temperature": {"type": "number", "minimum": 0, "maximum": 1, "default": 0},
    }
    if not translation:
        props.update(
            {
                "language": {"type": "string", "description": "ISO-639-1 hint, e.g. en."},
                "timestamp_granularities[]": {
                    "type": "array",
                    "items": {"type": "string", "enum": ["segment", "word"]},
                },
                "stream": {"type": "boolean", "default": False, "description": "Server-sent transcript.text.* events."},
                "chunking_strategy": {"type": "string", "description": "Accepted: 'auto' or a server_vad JSON object."},
                "include[]": {"type": "array", "items": {"type": "string"}},
            }
        )
    json_form = {
        "type": "object",
        "required": ["input_audio"],
        "properties": {
            "model": {"type": "string"},
            "language": {"type": "string"},
            "input_audio": {
                "type": "object",
                "required": ["data"],
                "properties": {"data": {"type": "string", "description": "base64"}, "format": {"type": "string"}},
            },
        },
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": props}},
                "application/json": {"schema": json_form},
            },
        }
    }


AUDIO_RESPONSE = {
    "description": "Audio bytes in the requested format (chunked), or server-sent events when stream_format=sse.",
    "content": {
        **{
            ct: {"schema": {"type": "string", "format": "binary"}}
            for ct in ("audio/mpeg", "audio/ogg", "audio/aac", "audio/flac", "audio/wav", "audio/pcm")
        },
        "text/event-stream": {"schema": {"type": "string"}},
    },
}


def transcription_responses() -> dict[int | str, dict[str, Any]]:
    from .schemas import TranscriptionDiarized, TranscriptionJSON, TranscriptionVerbose

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
                "text/event-stream": {"schema": {"type": "string"}},
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
        for name, model in list(_EXTRA_MODELS.items()):
            js = model.model_json_schema(ref_template=REF)
            for def_name, def_schema in js.pop("$defs", {}).items():
                comps.setdefault(def_name, def_schema)
            comps.setdefault(name, js)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
