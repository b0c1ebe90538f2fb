"""Engine errors, shaped as OpenAI errors where a client sees them."""

from __future__ import annotations

from vibevoice_api.shared.errors import RateLimitError


class ModelLoadError(Exception):
    """The model folder is missing, incomplete or of an unknown kind; the message says what to do."""

    @property
    def user_message(self) -> str:
        return str(self)


class EngineBusyError(RateLimitError):
    """The transcription queue is full."""

    def __init__(self, queued: int) -> None:
        super().__init__(f"The transcription queue is full ({queued} waiting); retry shortly.", retry_after=2)
