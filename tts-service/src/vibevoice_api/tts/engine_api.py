"""What the HTTP and WebSocket layers ask of a speech engine.

:class:`~.engine.TTSEngine` implements it; ``build_app(engine=...)`` takes anything of this shape.
Routes get the loaded engine with :func:`engine_of` (a 503 while the model is still loading).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from starlette.requests import HTTPConnection

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .engine.runtime import StreamOptions


class Voice(Protocol):
    id: str
    name: str
    language: str | None
    gender: str | None


class SpeechEngine(Protocol):
    sample_rate: int  # of the mono float32 audio ``stream`` yields

    def list_voices(self) -> Sequence[Voice]: ...

    def resolve_voice(self, name: str) -> str:
        """The preset id for a voice name (400 ``unknown_voice`` when there is none)."""
        ...

    def count_tokens(self, text: str) -> int: ...

    def stream(self, text: str, voice_id: str, **options: Unpack[StreamOptions]) -> AsyncIterator[np.ndarray]:
        """Audio chunks as they are generated; closing the iterator stops the generation."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def warmup(self) -> None: ...

    def close(self) -> None: ...


def engine_of(conn: HTTPConnection) -> SpeechEngine:
    """The app's loaded engine, or a 503 (loading, or failed to load) with Retry-After."""
    return conn.app.state.holder.require()
