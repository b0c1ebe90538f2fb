"""Real voices for the known-speaker tests: turns of the three hosts of Microsoft's toy0 podcast."""

from __future__ import annotations

import base64
import json
from functools import cache

import numpy as np
from vibevoice_api.shared.audio import decode_audio, encode_audio

from tests.support import REPO

DATA = REPO.parent / "shared" / "data" / "audio"
RATE = 16000


@cache
def podcast() -> tuple[np.ndarray, list[dict]]:
    audio = decode_audio(DATA / "toy0.mp3", RATE)
    return audio, json.loads((DATA / "toy0.json").read_text())["segments"]


def turn(speaker: int, nth: int, seconds: float, skip: float = 2.0) -> np.ndarray:
    """``seconds`` of the ``nth`` turn of ``speaker`` (0, 1, 2), starting ``skip`` seconds into it."""
    audio, segs = podcast()
    seg = [s for s in segs if s["speaker"] == speaker][nth]
    start = int((seg["start"] + skip) * RATE)
    return audio[start : start + int(seconds * RATE)]


def wav_bytes(samples: np.ndarray) -> bytes:
    return encode_audio(samples, "wav", RATE)


def data_url(samples: np.ndarray) -> str:
    return "data:audio/wav;base64," + base64.b64encode(wav_bytes(samples)).decode()
