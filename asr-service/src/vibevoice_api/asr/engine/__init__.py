"""VibeVoice-ASR inference on transformers' native model: loading (both layouts), batching, streaming."""

from .errors import EngineBusyError, ModelLoadError
from .parsing import Segment
from .runtime import ASREngine, EngineConfig

__all__ = ["ASREngine", "EngineBusyError", "EngineConfig", "ModelLoadError", "Segment"]
