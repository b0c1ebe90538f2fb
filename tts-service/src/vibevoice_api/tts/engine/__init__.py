"""Our inference engine for VibeVoice-Realtime-0.5B (Microsoft's code needs transformers 4.51)."""

from .errors import EngineBusyError, ModelLoadError, UnknownVoiceError, VoicePresetError
from .runtime import EngineConfig, TTSEngine
from .voices import VoiceInfo

__all__ = [
    "EngineBusyError",
    "EngineConfig",
    "ModelLoadError",
    "TTSEngine",
    "UnknownVoiceError",
    "VoiceInfo",
    "VoicePresetError",
]
