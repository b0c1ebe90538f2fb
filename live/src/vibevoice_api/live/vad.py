"""Server VAD: silero-vad speech probabilities per 32 ms frame, and the turn segmenter over them.

:class:`Segmenter` is pure (probabilities in, start/stop decisions out) so its rules are tested apart
from the model. :class:`VADPool` hands each session its own stateful silero model and takes it back
when the session ends (bounded number kept loaded).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

FRAME_MS = 32  # silero-vad takes 512 samples at 16 kHz or 256 at 8 kHz


@dataclass
class VADConfig:
    threshold: float = 0.5
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    idle_timeout_ms: int | None = None


@dataclass(frozen=True)
class Started:
    audio_start_ms: int  # where speech was detected (session audio time)


@dataclass(frozen=True)
class Stopped:
    audio_end_ms: int  # where the closing silence began


class Segmenter:
    """Speech starts on a frame at or above ``threshold``; it stops after ``silence_duration_ms`` of frames
    below ``threshold - 0.15`` (silero's hysteresis, so a word's quiet tail does not end the turn)."""

    def __init__(self, cfg: VADConfig) -> None:
        self.cfg = cfg
        self.speaking = False
        self.silence_since: int | None = None

    def feed(self, prob: float, frame_start_ms: int) -> Started | Stopped | None:
        frame_end = frame_start_ms + FRAME_MS
        if not self.speaking:
            if prob >= self.cfg.threshold:
                self.speaking = True
                self.silence_since = None
                return Started(frame_start_ms)
            return None
        if prob >= max(self.cfg.threshold - 0.15, 0.01):
            self.silence_since = None
            return None
        if self.silence_since is None:
            self.silence_since = frame_start_ms
        if frame_end - self.silence_since >= self.cfg.silence_duration_ms:
            self.speaking = False
            end, self.silence_since = self.silence_since, None
            return Stopped(end)
        return None

    def reset(self) -> None:
        self.speaking = False
        self.silence_since = None


class VADPool:
    """Loaded silero-vad models (stateful, one per session at a time); at most ``keep`` idle ones kept."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._idle: list[Any] = []
        self._lock = threading.Lock()
        self.loaded = 0

    def acquire(self) -> Any:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        from silero_vad import load_silero_vad

        model = load_silero_vad()
        with self._lock:
            self.loaded += 1
        return model

    def release(self, model: Any) -> None:
        model.reset_states()
        with self._lock:
            if len(self._idle) < self.keep:
                self._idle.append(model)

    @staticmethod
    def probabilities(model: Any, frames: list[np.ndarray], rate: int) -> list[float]:
        """Speech probability of each frame, in order (the model carries state across calls)."""
        import torch

        out = []
        with torch.inference_mode():
            for f in frames:
                out.append(float(model(torch.from_numpy(f), rate).item()))
        return out
