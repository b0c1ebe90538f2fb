"""verbose_json's ``no_speech_prob``, measured: how likely a segment holds no speech at all.

Whisper reports its own no-speech token's probability; VibeVoice-ASR has no such token. Here a voice
activity detector scores the audio instead: Silero VAD (MIT, its TorchScript model ships in the
``silero-vad`` wheel) gives a speech probability for every 32 ms of 16 kHz audio, and a segment's
``no_speech_prob`` is one minus the highest of them within the segment: near 0 when someone surely
speaks in it, near 1 when nothing in it sounds like speech. Computed only for verbose_json, in a thread
that runs while the model transcribes.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from .once import loaded_once

RATE = 16000
WINDOW = 512  # samples per score (32 ms)
_LOCK = threading.Lock()  # the model keeps state between calls: one audio at a time


@loaded_once
def model() -> Any:
    """The process's Silero VAD model, loaded on first use."""
    from silero_vad import load_silero_vad

    return load_silero_vad()


def speech_probabilities(samples: np.ndarray, rate: int, chunk_seconds: float = 600.0) -> np.ndarray:
    """Speech probability of every 32 ms window of ``samples`` (mono float32 at ``rate`` Hz).

    Read in 10-minute chunks (resampled one at a time, so a 4-hour upload never has a second full copy)."""
    import torch

    from .speakers import resample

    vad = model()
    step = int(chunk_seconds * rate)
    out: list[np.ndarray] = []
    with _LOCK:  # the model keeps state between calls: one audio at a time
        for start in range(0, max(1, samples.shape[0]), step):
            audio = resample(samples[start : start + step], rate, RATE)
            if audio.shape[0] < WINDOW:
                audio = np.pad(audio, (0, WINDOW - audio.shape[0]))
            vad.reset_states()
            with torch.inference_mode():
                probs = vad.audio_forward(torch.from_numpy(np.ascontiguousarray(audio)), RATE)
            out.append(probs.reshape(-1).float().numpy())
    return np.concatenate(out)


def no_speech(probs: np.ndarray, spans: Sequence[tuple[float, float]]) -> list[float]:
    """``1 - max(speech probability)`` over the windows each ``(start, end)`` span (seconds) touches."""
    per_second = RATE / WINDOW
    out = []
    for start, end in spans:
        a = min(max(0, int(math.floor(start * per_second))), max(0, probs.shape[0] - 1))
        b = min(probs.shape[0], max(a + 1, int(math.ceil(end * per_second))))
        out.append(round(1.0 - float(probs[a:b].max()), 4) if b > a else 1.0)
    return out
