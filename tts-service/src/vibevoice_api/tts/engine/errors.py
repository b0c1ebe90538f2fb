"""Engine errors; the ones a client sees are OpenAI-shaped."""

from __future__ import annotations

from vibevoice_api.shared.errors import InvalidRequestError, RateLimitError
from vibevoice_api.shared.model_files import ModelLoadError

__all__ = ["EngineBusyError", "ModelLoadError", "UnknownVoiceError", "VoicePresetError"]


class UnknownVoiceError(InvalidRequestError):
    def __init__(self, name: str, valid: list[str]) -> None:
        shown = ", ".join(valid[:40]) + (" ..." if len(valid) > 40 else "")
        super().__init__(f"Unknown voice {name!r}. Available voices: {shown}.", param="voice", code="unknown_voice")


class VoicePresetError(InvalidRequestError):
    """A preset file exists but was refused (unsafe pickle) or is damaged."""

    def __init__(self, name: str, why: str) -> None:
        super().__init__(
            f"The voice {name!r} is unavailable: its preset file was refused ({why}).",
            param="voice",
            code="voice_unavailable",
        )


class EngineBusyError(RateLimitError):
    def __init__(self, waiting: int) -> None:
        super().__init__(f"The speech queue is full ({waiting} waiting); retry shortly.", retry_after=1)
