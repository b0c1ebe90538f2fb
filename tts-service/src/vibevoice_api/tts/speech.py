"""From an OpenAI speech request to encoded audio chunks: voice choice, text checks, tempo, encoding.

Shared by ``POST /v1/audio/speech`` and the realtime WebSocket, so both speak the same voices and
refuse the same inputs.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from vibevoice_api.shared.audio import StreamingEncoder, StreamingTempo
from vibevoice_api.shared.errors import InvalidRequestError

from .engine_api import SpeechEngine
from .settings import TTSSettings

log = logging.getLogger("vibevoice_api.tts")


@dataclass
class SpeechJob:
    text: str
    voice_id: str
    response_format: str
    speed: float
    seed: int | None = None  # reproducible sampling (our extension)
    samples: int = 0  # model samples produced so far (before the tempo change)


def check_text(text: Any, settings: TTSSettings) -> str:
    if not isinstance(text, str):
        raise InvalidRequestError("'input' must be a string.", param="input", code="invalid_type")
    cleaned = text.replace("\x00", "")
    if not cleaned.strip():
        raise InvalidRequestError("'input' is empty: give the text to speak.", param="input", code="empty_input")
    if len(cleaned) > settings.tts_max_input_chars:
        raise InvalidRequestError(
            f"'input' is {len(cleaned)} characters; the maximum is {settings.tts_max_input_chars}.",
            param="input",
            code="string_above_max_length",
        )
    return cleaned


def choose_voice(engine: SpeechEngine, name: str | None, settings: TTSSettings) -> str:
    """Preset id for a request's voice: preset names, short names, OpenAI names (mapped), default."""
    if name is None or not str(name).strip():
        name = settings.tts_default_voice
    name = str(name).strip()
    mapped = {k.lower(): v for k, v in settings.tts_voice_map.items()}.get(name.lower())
    if mapped is not None:
        try:
            return engine.resolve_voice(mapped)
        except InvalidRequestError:
            # The mapped preset is not installed: fall back to the default voice rather than fail
            # a client that simply sent OpenAI's default 'alloy'.
            log.warning("voice %r maps to %r which is not installed; using the default voice", name, mapped)
            return engine.resolve_voice(settings.tts_default_voice)
    return engine.resolve_voice(name)


async def encoded_chunks(
    engine: SpeechEngine, job: SpeechJob, *, cfg_scale: float | None = None, steps: int | None = None
) -> AsyncIterator[bytes]:
    """Encoded bytes as the engine produces audio; the concatenation is a complete file."""
    encoder = StreamingEncoder(job.response_format, engine.sample_rate)
    tempo = StreamingTempo(job.speed, engine.sample_rate)
    stream = engine.stream(job.text, job.voice_id, cfg_scale=cfg_scale, steps=steps, seed=job.seed)
    finished = False
    try:
        async for pcm in stream:
            job.samples += int(np.asarray(pcm).size)
            out = encoder.feed(tempo.feed(np.asarray(pcm, dtype=np.float32)))
            if out:
                yield out
        tail = encoder.feed(tempo.close()) + encoder.close()
        finished = True
        if tail:
            yield tail
    finally:
        if not finished:
            encoder.abort()
        await stream.aclose()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
