"""What the HTTP layer asks of a transcription engine.

:class:`~.engine.ASREngine` implements it (with transformers or a vLLM server generating behind it);
``build_app(engine=...)`` takes anything of this shape. Routes get the loaded engine with
:func:`engine_of` (a 503 while the model is still loading).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from starlette.requests import HTTPConnection
from vibevoice_api.shared.transcripts import Seg

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .engine.runtime import TranscribeOptions
    from .engine.textstream import TextPiece


class TranscriptionEngine(Protocol):
    sample_rate: int  # of the mono float32 audio the engine takes

    async def transcribe(self, audio: np.ndarray, **options: Unpack[TranscribeOptions]) -> list[Seg]:
        """The whole transcript's segments (the duration limit was checked when the audio was decoded)."""
        ...

    def transcribe_stream(
        self, audio: np.ndarray, *, text: bool = False, **options: Unpack[TranscribeOptions]
    ) -> AsyncIterator[Seg | TextPiece]:
        """Segments as they complete; with ``text``, the transcript's text as it is generated too."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def warmup(self) -> None: ...

    def close(self) -> None: ...


def engine_of(conn: HTTPConnection) -> TranscriptionEngine:
    """The app's loaded engine, or a 503 (loading, or failed to load) with Retry-After."""
    return conn.app.state.holder.require()
