"""Audio decode/encode, checked with an independent decoder (the ffmpeg/ffprobe command line)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vibevoice_api.shared.audio import (
    AudioDecodeError,
    RawPCM,
    StreamingEncoder,
    change_speed,
    decode_audio,
    encode_audio,
    raw_pcm_from_content_type,
)
from vibevoice_api.shared.formats import SPEECH_FORMATS, content_type

FFMPEG = shutil.which("ffmpeg")
FFPROBE = shutil.which("ffprobe")
pytestmark = pytest.mark.skipif(not (FFMPEG and FFPROBE), reason="ffmpeg CLI missing: run `make system-deps`")
SR = 24000
EXPECT_CODEC = {"mp3": "mp3", "opus": "opus", "aac": "aac", "flac": "flac", "wav": "pcm_s16le"}
EXPECT_CONTAINER = {"mp3": "mp3", "opus": "ogg", "aac": "aac", "flac": "flac", "wav": "wav"}


def tone(seconds: float = 1.5, freq: float = 440.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.4 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def probe(path: Path) -> dict:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    return json.loads(out)


def ffmpeg_decode(path: Path, sr: int = SR, fmt_args: tuple[str, ...] = ()) -> np.ndarray:
    out = subprocess.run(
        [FFMPEG, "-v", "error", *fmt_args, "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sr), "-"],
        capture_output=True,
        check=True,
    ).stdout
    return np.frombuffer(out, dtype="<f4")


def dominant_freq(x: np.ndarray, sr: int = SR) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.argmax(spec) * sr / x.size)


@pytest.mark.parametrize("fmt", SPEECH_FORMATS)
@pytest.mark.parametrize("mode", ["whole", "streaming"])
def test_encode_is_valid_audio_of_that_format(tmp_path, fmt, mode):
    x = tone()
    if mode == "whole":
        data = encode_audio(x, fmt, SR)
    else:
        enc = StreamingEncoder(fmt, SR)
        parts = [enc.feed(x[i : i + 4800]) for i in range(0, x.size, 4800)] + [enc.close()]
        # Bytes leave as audio arrives, not only at the end.
        assert sum(1 for p in parts[:-1] if p) >= len(parts) // 2
        data = b"".join(parts)
    path = tmp_path / f"out.{fmt}"
    path.write_bytes(data)
    if fmt == "pcm":
        assert len(data) == x.size * 2
        y = ffmpeg_decode(path, fmt_args=("-f", "s16le", "-ar", str(SR), "-ac", "1"))
    else:
        info = probe(path)
        stream = info["streams"][0]
        assert stream["codec_name"] == EXPECT_CODEC[fmt]
        assert EXPECT_CONTAINER[fmt] in info["format"]["format_name"]
        assert stream["channels"] == 1
        # Opus always decodes at 48 kHz; the others keep the model's 24 kHz.
        assert int(stream["sample_rate"]) == (48000 if fmt == "opus" else SR)
        y = ffmpeg_decode(path)
    assert abs(y.size / SR - 1.5) < 0.1, (fmt, y.size / SR)
    assert abs(dominant_freq(y) - 440) < 5
    if fmt in ("wav", "flac", "pcm"):
        assert np.max(np.abs(y[: x.size] - x)) < 2 / 32767


def test_content_types():
    assert content_type("mp3") == "audio/mpeg"
    assert content_type("opus") == "audio/ogg"
    assert content_type("pcm", 24000) == "audio/pcm;rate=24000;channels=1"


FIXTURES = {
    "wav": ["-c:a", "pcm_s16le"],
    "mp3": ["-c:a", "libmp3lame"],
    "m4a": ["-c:a", "aac"],
    "ogg": ["-c:a", "libopus"],
    "opus": ["-c:a", "libopus"],
    "flac": ["-c:a", "flac"],
    "webm": ["-c:a", "libopus"],
}


@pytest.mark.parametrize("ext", list(FIXTURES))
def test_decode_common_uploads(tmp_path, ext):
    src = tmp_path / f"in.{ext}"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100:duration=2",
            "-ac",
            "2",
            *FIXTURES[ext],
            str(src),
        ],
        check=True,
    )
    y = decode_audio(src, SR)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(y.size / SR - 2.0) < 0.1
    assert abs(dominant_freq(y) - 440) < 5
    # The same bytes from a file object (uploads arrive as spooled files).
    with open(src, "rb") as f:
        assert abs(decode_audio(f, 16000).size / 16000 - 2.0) < 0.1


def test_decode_mp4_with_video_track_and_eight_channels(tmp_path):
    src = tmp_path / "clip.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=10:duration=1",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300:sample_rate=48000:duration=1",
            "-ac",
            "8",
            "-c:v",
            "mpeg4",
            "-c:a",
            "aac",
            "-shortest",
            str(src),
        ],
        check=True,
    )
    y = decode_audio(src, SR)
    assert abs(y.size / SR - 1.0) < 0.15
    assert abs(dominant_freq(y) - 300) < 5


def test_decode_video_without_audio_is_400(tmp_path):
    src = tmp_path / "silent.mp4"
    subprocess.run(
        [
            FFMPEG,
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=64x64:rate=10:duration=1",
            "-c:v",
            "mpeg4",
            str(src),
        ],
        check=True,
    )
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(src, SR)
    assert e.value.status_code == 400 and e.value.code == "no_audio_track" and e.value.param == "file"


def test_decode_raw_pcm_and_content_type_params():
    x = tone(1.0, sr=16000)
    raw = (x * 32767).astype("<i2").tobytes()
    spec = raw_pcm_from_content_type("audio/pcm;rate=16000;channels=1")
    assert spec == RawPCM(16000, 1, "s16le")
    y = decode_audio(raw, SR, raw=spec)
    assert abs(y.size / SR - 1.0) < 0.01
    assert abs(dominant_freq(y) - 440) < 5
    assert raw_pcm_from_content_type("audio/mpeg") is None
    with pytest.raises(AudioDecodeError):
        raw_pcm_from_content_type("audio/pcm;rate=abc")


@pytest.mark.parametrize("data", [b"", b"\x00" * 10, b"not audio at all" * 100, bytes(range(256)) * 40])
def test_garbage_is_a_clear_400(data):
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(data, SR)
    assert e.value.status_code == 400 and e.value.param == "file"
    assert e.value.message


def test_truncated_file_decodes_what_is_there_or_400(tmp_path):
    src = tmp_path / "a.mp3"
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=3", "-c:a", "libmp3lame", str(src)],
        check=True,
    )
    data = src.read_bytes()
    y = decode_audio(data[: len(data) // 2], SR)
    assert 1.0 < y.size / SR < 2.0
    with pytest.raises(AudioDecodeError):
        decode_audio(data[:200], SR)


def test_max_seconds_is_enforced(tmp_path):
    src = tmp_path / "long.flac"
    subprocess.run(
        [FFMPEG, "-v", "error", "-f", "lavfi", "-i", "sine=duration=5", "-c:a", "flac", str(src)], check=True
    )
    with pytest.raises(AudioDecodeError) as e:
        decode_audio(src, SR, max_seconds=2)
    assert e.value.code == "audio_too_long"


@pytest.mark.parametrize("speed", [0.25, 0.5, 1.0, 1.5, 2.0, 4.0])
def test_speed_changes_duration_not_pitch(speed):
    x = tone(2.0)
    y = change_speed(x, speed, SR)
    assert abs((y.size / x.size) - 1 / speed) < 0.05 / speed
    assert abs(dominant_freq(y) - 440) < 10


def test_nan_and_inf_pcm_encode_safely(tmp_path):
    x = tone(0.5)
    x[::7] = np.nan
    x[::11] = np.inf
    for fmt in SPEECH_FORMATS:
        data = encode_audio(x, fmt, SR)
        assert data


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=4096))
def test_decoder_never_crashes_on_random_bytes(data):
    try:
        y = decode_audio(data, SR)
    except AudioDecodeError as e:
        assert e.status_code == 400
    else:
        assert y.dtype == np.float32 and np.isfinite(y).all()
