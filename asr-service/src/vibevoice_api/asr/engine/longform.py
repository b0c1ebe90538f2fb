"""Split audio longer than one model pass at its quietest moments, and place the pieces on one timeline.

VibeVoice-ASR reads up to 60 minutes in one pass, but a smaller GPU runs out of memory sooner (users
report 24 GB failing at ~50 minutes): the single-pass limit is a setting. Cuts are made at the
lowest-energy 50 ms frame within the second half of each window, so words are rarely split.
Speaker ids restart in every piece (the model sees each piece alone): a documented limitation.
"""

from __future__ import annotations

import numpy as np

FRAME_SECONDS = 0.05


def split_points(audio: np.ndarray, sample_rate: int, max_seconds: float, search_fraction: float = 0.5) -> list[int]:
    """Sample offsets where pieces start (always begins with 0)."""
    n = audio.shape[0]
    limit = int(max_seconds * sample_rate)
    if n <= limit:
        return [0]
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    usable = (n // frame) * frame
    energy = np.sqrt(np.mean(audio[:usable].reshape(-1, frame).astype(np.float64) ** 2, axis=1))
    starts = [0]
    pos = 0
    while n - pos > limit:
        hi = pos + limit
        lo = pos + int(limit * (1 - search_fraction))
        f_lo, f_hi = lo // frame, min(hi // frame, energy.shape[0])
        cut = (f_lo + int(np.argmin(energy[f_lo:f_hi]))) * frame + frame // 2 if f_hi > f_lo else hi
        cut = min(max(cut, pos + 1), hi)
        starts.append(cut)
        pos = cut
    return starts


def pieces(audio: np.ndarray, sample_rate: int, max_seconds: float) -> list[tuple[float, np.ndarray]]:
    """(offset in seconds, samples) for each piece."""
    starts = split_points(audio, sample_rate, max_seconds)
    bounds = [*starts[1:], audio.shape[0]]
    return [(s / sample_rate, audio[s:e]) for s, e in zip(starts, bounds, strict=True)]
