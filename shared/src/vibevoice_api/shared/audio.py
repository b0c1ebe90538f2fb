"""Audio in and out, on PyAV (FFmpeg's libraries).

Decoding: any container/codec FFmpeg reads (wav, mp3, m4a/aac, ogg/opus, flac, webm, mp4 with
an audio track) or headerless PCM, to mono float32 at the rate a model wants. Frames are read
from disk and resampled one at a time into a buffer sized from the container's duration, so a
60-minute upload is never held in memory twice.

Encoding: float PCM to the six OpenAI speech formats, whole or incrementally (a
:class:`StreamingEncoder` turns chunks into playable container bytes as they arrive), and a
pitch-preserving tempo change (FFmpeg's ``atempo``) for the ``speed`` parameter.
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO, Any

import av
import av.error
import numpy as np

from .errors import InvalidRequestError
from .formats import SPEECH_FORMATS


class AudioDecodeError(InvalidRequestError):
    """The upload is not audio we can read (400, param ``file``)."""

    def __init__(self, message: str, code: str = "invalid_audio") -> None:
        super().__init__(message, param="file", code=code)


@dataclass(frozen=True)
class RawPCM:
    """How to read a headerless upload (no container to tell us)."""

    sample_rate: int = 24000
    channels: int = 1
    sample_format: str = "s16le"


_RAW_TYPES = re.compile(r"^audio/(pcm|l16|raw|x-raw)\b", re.I)


def raw_pcm_from_content_type(content_type_value: str | None) -> RawPCM | None:
    """``audio/pcm;rate=16000;channels=1`` (and audio/l16) → RawPCM; anything else → None."""
    if not content_type_value or not _RAW_TYPES.match(content_type_value.strip()):
        return None
    params = dict(
        (k.strip().lower(), v.strip()) for k, _, v in (p.partition("=") for p in content_type_value.split(";")[1:])
    )
    try:
        rate = int(params.get("rate", 24000))
        channels = int(params.get("channels", 1))
    except ValueError as exc:
        raise AudioDecodeError(f"Invalid PCM parameters in content type {content_type_value!r}.") from exc
    fmt = (
        "s16be"
        if content_type_value.lower().startswith("audio/l16") and "endian=little" not in content_type_value.lower()
        else "s16le"
    )
    if not (1000 <= rate <= 384_000) or not (1 <= channels <= 16):
        raise AudioDecodeError(f"Unsupported PCM parameters rate={rate} channels={channels}.")
    return RawPCM(rate, channels, fmt)


Source = str | os.PathLike[str] | bytes | IO[bytes]


def _open_input(source: Source, raw: RawPCM | None) -> av.container.InputContainer:
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    kwargs: dict[str, Any] = {"mode": "r", "metadata_errors": "ignore"}
    if raw is not None:
        kwargs["format"] = raw.sample_format
        kwargs["options"] = {
            "sample_rate": str(raw.sample_rate),
            "ch_layout": "stereo" if raw.channels == 2 else f"{raw.channels}c" if raw.channels > 2 else "mono",
        }
    return av.open(source, **kwargs)


def decode_audio(
    source: Source,
    sample_rate: int = 24000,
    *,
    raw: RawPCM | None = None,
    max_seconds: float | None = None,
) -> np.ndarray:
    """Decode ``source`` to mono float32 at ``sample_rate``.

    Raises :class:`AudioDecodeError` (an OpenAI 400) for anything that is not decodable audio,
    has no audio track, holds no samples, or is longer than ``max_seconds``.
    """
    try:
        container = _open_input(source, raw)
    except (av.error.FFmpegError, ValueError, OSError) as exc:
        raise AudioDecodeError(
            "Could not read the audio file: the format was not recognised or the data is corrupt "
            f"({_short(exc)}). Supported: wav, mp3, m4a/aac, ogg/opus, flac, webm, mp4, raw PCM (audio/pcm)."
        ) from exc
    try:
        with container:
            stream = next((s for s in container.streams if s.type == "audio"), None)
            if stream is None:
                raise AudioDecodeError("The file has no audio track.", code="no_audio_track")
            estimate = _estimated_seconds(container, stream)
            buf = _Growable(
                int(min(estimate, max_seconds or estimate) * sample_rate) + sample_rate
                if estimate
                else sample_rate * 30
            )
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            limit = int(max_seconds * sample_rate) if max_seconds else None
            stream.thread_type = "AUTO"
            for frame in _frames(container, stream):
                for out in resampler.resample(frame):
                    buf.append(out.to_ndarray().reshape(-1))
                if limit is not None and buf.size > limit:
                    raise AudioDecodeError(
                        f"Audio is longer than the maximum of {max_seconds:.0f} seconds.", code="audio_too_long"
                    )
            for out in resampler.resample(None):
                buf.append(out.to_ndarray().reshape(-1))
    except AudioDecodeError:
        raise
    except (av.error.FFmpegError, ValueError, OSError, MemoryError) as exc:
        raise AudioDecodeError(f"The audio data is corrupt or truncated ({_short(exc)}).") from exc
    samples = buf.result()
    if limit is not None and samples.size > limit:
        raise AudioDecodeError(f"Audio is longer than the maximum of {max_seconds:.0f} seconds.", code="audio_too_long")
    if samples.size == 0:
        raise AudioDecodeError("The audio file contains no samples.", code="empty_audio")
    if not np.isfinite(samples).all():
        np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
    return samples


def _frames(container: av.container.InputContainer, stream: Any) -> Iterator[av.AudioFrame]:
    errors = 0
    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.error.InvalidDataError:
            # A damaged packet in a long recording should not lose the whole file.
            errors += 1
            if errors > 50:
                raise


def _estimated_seconds(container: av.container.InputContainer, stream: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        secs = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        secs = container.duration / 1_000_000
    else:
        return 0.0
    return secs if math.isfinite(secs) and 0 < secs < 48 * 3600 else 0.0


class _Growable:
    """A float32 buffer that grows geometrically: one copy of the audio, not a list plus a concatenation."""

    def __init__(self, capacity: int) -> None:
        self._data = np.empty(max(1024, capacity), dtype=np.float32)
        self.size = 0

    def append(self, chunk: np.ndarray) -> None:
        need = self.size + chunk.size
        if need > self._data.size:
            grown = np.empty(max(need, int(self._data.size * 1.5)), dtype=np.float32)
            grown[: self.size] = self._data[: self.size]
            self._data = grown
        self._data[self.size : need] = chunk
        self.size = need

    def result(self) -> np.ndarray:
        if self._data.size - self.size > 1024 * 1024:
            return self._data[: self.size].copy()
        return self._data[: self.size]


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) < 200 else text[:200] + "…"


# --------------------------------------------------------------------------------------------
# Encoding


def to_pcm16(samples: np.ndarray) -> bytes:
    """Float [-1, 1] → little-endian signed 16-bit bytes (NaN → 0, clipped)."""
    clean = np.nan_to_num(np.asarray(samples, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return (np.clip(clean, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


class _Sink:
    """A write-only, non-seekable file object: muxers then stream instead of seeking back."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class StreamingEncoder:
    """Turn float32 mono chunks into container bytes as they arrive.

    ``feed`` returns whatever bytes the muxer has produced so far (possibly empty); ``close``
    flushes the encoder and writes the trailer. The concatenation of all returned bytes is a
    complete, playable file in the requested format.
    """

    def __init__(self, fmt: str, sample_rate: int = 24000) -> None:
        if fmt not in SPEECH_FORMATS:
            raise ValueError(f"unknown output format {fmt!r}")
        self.fmt = fmt
        self.sample_rate = sample_rate
        self._closed = False
        self._pts = 0
        if fmt == "pcm":
            return
        spec = SPEECH_FORMATS[fmt]
        self._sink = _Sink()
        self._container = av.open(self._sink, mode="w", format=spec.container, options=dict(spec.muxer_options))
        self._stream = self._container.add_stream(spec.codec, rate=sample_rate, layout="mono")
        if spec.bit_rate:
            self._stream.bit_rate = spec.bit_rate
        cc = self._stream.codec_context
        self._resampler = av.AudioResampler(
            format=cc.format.name, layout="mono", rate=sample_rate, frame_size=cc.frame_size or None
        )
        self._time_base = Fraction(1, sample_rate)

    def feed(self, samples: np.ndarray) -> bytes:
        if self._closed:
            raise RuntimeError("encoder is closed")
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self.fmt == "pcm":
            return to_pcm16(samples)
        if samples.size == 0:
            return self._sink.drain()
        clean = np.clip(np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
        frame = av.AudioFrame.from_ndarray(clean.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = self._time_base
        self._pts += clean.size
        self._encode(self._resampler.resample(frame))
        return self._sink.drain()

    def _encode(self, frames: Iterable[av.AudioFrame | None]) -> None:
        for f in frames:
            for packet in self._stream.encode(f):
                self._container.mux(packet)

    def close(self) -> bytes:
        if self._closed:
            return b""
        self._closed = True
        if self.fmt == "pcm":
            return b""
        self._encode(self._resampler.resample(None))
        self._encode([None])
        self._container.close()
        return self._sink.drain()

    def abort(self) -> None:
        """Free FFmpeg resources without producing a trailer (client went away)."""
        if self._closed:
            return
        self._closed = True
        if self.fmt != "pcm":
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - best effort on an abandoned stream
                pass


def encode_audio(samples: np.ndarray, fmt: str, sample_rate: int = 24000) -> bytes:
    """Encode a whole waveform. WAV gets exact RIFF sizes (the streaming WAV header cannot)."""
    if fmt == "wav":
        bio = io.BytesIO()
        with av.open(bio, mode="w", format="wav") as container:
            stream = container.add_stream("pcm_s16le", rate=sample_rate, layout="mono")
            pcm = np.frombuffer(to_pcm16(samples), dtype="<i2").reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
            frame.sample_rate = sample_rate
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        return bio.getvalue()
    enc = StreamingEncoder(fmt, sample_rate)
    return enc.feed(samples) + enc.close()


# --------------------------------------------------------------------------------------------
# Tempo


def _atempo_chain(speed: float) -> list[float]:
    """atempo takes 0.5..100 per instance; chain instances for slower speeds."""
    factors = []
    while speed < 0.5:
        factors.append(0.5)
        speed /= 0.5
    factors.append(speed)
    return factors


class StreamingTempo:
    """Pitch-preserving speed change on a stream of float32 mono chunks (FFmpeg atempo)."""

    def __init__(self, speed: float, sample_rate: int = 24000) -> None:
        if not (0.25 <= speed <= 4.0):
            raise ValueError("speed must be within 0.25..4.0")
        self.speed = speed
        self.sample_rate = sample_rate
        self._identity = abs(speed - 1.0) < 1e-6
        self._pts = 0
        if self._identity:
            return
        self._graph = av.filter.Graph()
        src = self._graph.add_abuffer(
            format="flt", layout="mono", sample_rate=sample_rate, time_base=Fraction(1, sample_rate)
        )
        prev = src
        for factor in _atempo_chain(speed):
            node = self._graph.add("atempo", f"{factor:.6f}")
            prev.link_to(node)
            prev = node
        sink = self._graph.add("abuffersink")
        prev.link_to(sink)
        self._graph.configure()

    def _pull(self) -> np.ndarray:
        out = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            out.append(frame.to_ndarray().reshape(-1))
        return np.concatenate(out).astype(np.float32, copy=False) if out else np.zeros(0, dtype=np.float32)

    def feed(self, samples: np.ndarray) -> np.ndarray:
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        if self._identity or samples.size == 0:
            return samples
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples.reshape(1, -1)), format="flt", layout="mono")
        frame.sample_rate = self.sample_rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.sample_rate)
        self._pts += samples.size
        self._graph.push(frame)
        return self._pull()

    def close(self) -> np.ndarray:
        if self._identity:
            return np.zeros(0, dtype=np.float32)
        self._graph.push(None)
        return self._pull()


def change_speed(samples: np.ndarray, speed: float, sample_rate: int = 24000) -> np.ndarray:
    tempo = StreamingTempo(speed, sample_rate)
    head = tempo.feed(samples)
    return np.concatenate([head, tempo.close()])
