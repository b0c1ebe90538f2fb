"""Input audio formats of the Realtime API and the small conversions a session needs (pure numpy)."""

from __future__ import annotations

import io
import wave
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class InputFormat:
    """``audio/pcm`` is 16-bit little-endian at 24 kHz; G.711 ``audio/pcmu`` / ``audio/pcma`` are 8 kHz."""

    type: str
    rate: int
    bytes_per_sample: int

    def decode(self, data: bytes) -> np.ndarray:
        """Bytes of this format → int16 samples at ``rate``."""
        if self.type == "audio/pcm":
            return np.frombuffer(data, dtype="<i2").astype(np.int16)
        table = _ULAW if self.type == "audio/pcmu" else _ALAW
        return table[np.frombuffer(data, dtype=np.uint8)]


FORMATS = {
    "audio/pcm": InputFormat("audio/pcm", 24000, 2),
    "audio/pcmu": InputFormat("audio/pcmu", 8000, 1),
    "audio/pcma": InputFormat("audio/pcma", 8000, 1),
}
#: The beta API's names for the same formats.
LEGACY_FORMATS = {"pcm16": "audio/pcm", "g711_ulaw": "audio/pcmu", "g711_alaw": "audio/pcma"}


def _ulaw_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(u & 0x80, -magnitude, magnitude).astype(np.int16)


def _alaw_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


_ULAW = _ulaw_table()
_ALAW = _alaw_table()


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """int16 mono samples as a WAV file (what the ASR service is sent)."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


def to_vad_rate(samples: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    """float32 samples at a rate silero-vad takes (8 or 16 kHz): 24 kHz is resampled to 16 kHz."""
    x = samples.astype(np.float32) / 32768.0
    if rate in (8000, 16000):
        return x, rate
    n_out = int(round(x.shape[0] * 16000 / rate))
    if n_out == 0:
        return np.zeros(0, np.float32), 16000
    pos = np.arange(n_out, dtype=np.float64) * (rate / 16000)
    return np.interp(pos, np.arange(x.shape[0]), x).astype(np.float32), 16000


class SampleBuffer:
    """Input audio not yet committed: int16 chunks addressed by absolute sample index (no re-copying)."""

    def __init__(self) -> None:
        self.chunks: list[np.ndarray] = []
        self.start = 0  # absolute index of the first held sample
        self.end = 0  # absolute index after the last sample

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, samples: np.ndarray) -> None:
        if samples.size:
            self.chunks.append(samples)
            self.end += samples.size

    def slice(self, a: int, b: int) -> np.ndarray:
        """Samples [a, b) clipped to what is held."""
        a, b = max(a, self.start), min(b, self.end)
        if b <= a:
            return np.zeros(0, np.int16)
        out, pos = [], self.start
        for c in self.chunks:
            lo, hi = max(a, pos), min(b, pos + c.size)
            if lo < hi:
                out.append(c[lo - pos : hi - pos])
            pos += c.size
            if pos >= b:
                break
        return np.concatenate(out)

    def drop_before(self, index: int) -> None:
        """Forget samples before ``index``."""
        index = min(max(index, self.start), self.end)
        while self.chunks and self.start + self.chunks[0].size <= index:
            self.start += self.chunks.pop(0).size
        if self.chunks and index > self.start:
            self.chunks[0] = self.chunks[0][index - self.start :].copy()
            self.start = index

    def clear(self) -> None:
        self.chunks = []
        self.start = self.end
