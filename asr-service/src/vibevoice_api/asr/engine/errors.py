"""Engine errors, shaped as OpenAI errors where a client sees them."""

from __future__ import annotations

from vibevoice_api.shared.errors import RateLimitError
from vibevoice_api.shared.model_files import ModelLoadError

__all__ = ["EngineBusyError", "ModelLoadError"]


class EngineBusyError(RateLimitError):
    """The transcription queue is full."""

    def __init__(self, queued: int) -> None:
        super().__init__(f"The transcription queue is full ({queued} waiting); retry shortly.", retry_after=2)
