"""Which model and voice names a live session accepts.

The OpenAI name patterns come from ``shared.model_names`` (one table for the gateway and services);
settings can replace them. ``matches`` is re-exported for the session code.
"""

from __future__ import annotations

from collections.abc import Iterable

from vibevoice_api.shared.model_names import DEFAULT_PATTERNS, matches

__all__ = ["OPENAI_VOICES", "REALTIME_MODEL_PATTERNS", "TRANSCRIPTION_MODEL_PATTERNS", "matches", "voice_known"]

#: Realtime model names routed to live sessions: OpenAI's (shared patterns) plus our own id.
REALTIME_MODEL_PATTERNS = ("vibevoice-live", *DEFAULT_PATTERNS["realtime"])
#: Transcription model names accepted in ``audio.input.transcription.model`` (all served by VibeVoice-ASR).
TRANSCRIPTION_MODEL_PATTERNS = ("vibevoice-asr", *DEFAULT_PATTERNS["asr"])
#: OpenAI's voice names; the TTS service maps them to presets (VIBEVOICE_TTS_VOICE_MAP).
OPENAI_VOICES = (
    "alloy",
    "ash",
    "ballad",
    "cedar",
    "coral",
    "echo",
    "fable",
    "marin",
    "nova",
    "onyx",
    "sage",
    "shimmer",
    "verse",
)


def voice_known(name: str, presets: Iterable[tuple[str, str]]) -> bool:
    """``presets`` = (id, display name) pairs from the TTS service; short names ("carter") count too."""
    low = name.strip().lower()
    if not low:
        return False
    if low in OPENAI_VOICES:
        return True
    for pid, pname in presets:
        short = pid.split("-", 1)[-1].split("_", 1)[0].lower()
        if low in (pid.lower(), pname.lower(), short):
            return True
    return False
