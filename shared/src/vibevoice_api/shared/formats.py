"""The audio formats of ``POST /v1/audio/speech``, defined once: name, Content-Type, container, encoder.

Pure data (no codec library is imported here), so the gateway, the request schema, the OpenAPI
document and the encoder in :mod:`.audio` all read the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class AudioFormat:
    name: str
    content_type: str  # truthful about the container we produce
    container: str | None = None  # FFmpeg muxer; None: headerless 16-bit PCM, no encoder
    codec: str | None = None  # FFmpeg encoder
    bit_rate: int | None = None
    muxer_options: Mapping[str, str] = field(default_factory=dict)


SPEECH_FORMATS: dict[str, AudioFormat] = {
    f.name: f
    for f in (
        AudioFormat("mp3", "audio/mpeg", "mp3", "libmp3lame", 128_000),
        # 20 ms Ogg pages: bytes leave as soon as they are encoded.
        AudioFormat("opus", "audio/ogg", "ogg", "libopus", 64_000, {"page_duration": "20000"}),
        AudioFormat("aac", "audio/aac", "adts", "aac", 96_000),
        AudioFormat("flac", "audio/flac", "flac", "flac"),
        AudioFormat("wav", "audio/wav", "wav", "pcm_s16le"),
        AudioFormat("pcm", "audio/pcm"),
    )
}

#: The ``response_format`` values, as a type for request models.
SpeechFormat = Literal[tuple(SPEECH_FORMATS)]  # type: ignore[valid-type]


def content_type(fmt: str, sample_rate: int = 24000) -> str:
    """The Content-Type of a response in ``fmt`` (raw PCM names its rate and channels)."""
    if fmt == "pcm":
        return f"audio/pcm;rate={sample_rate};channels=1"
    return SPEECH_FORMATS[fmt].content_type
