"""Our PyAV decode/encode vs the ffmpeg command line, side by side (ratios < 1: we are faster).

Encode: 60 s of 24 kHz mono float → each output format (ffmpeg CLI fed s16le through a pipe).
Decode: a 10-minute 44.1 kHz stereo mp3 → 24 kHz mono float32 (ffmpeg CLI writing f32le to a pipe).
Each measurement is the median of several alternating runs.
"""

from __future__ import annotations

import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "shared" / "src"))
from vibevoice_api.shared.audio import decode_audio, encode_audio, to_pcm16
from vibevoice_api.shared.formats import SPEECH_FORMATS

FFMPEG = shutil.which("ffmpeg")
CLI_ENC = {
    "mp3": ["-c:a", "libmp3lame", "-b:a", "128k", "-f", "mp3"],
    "opus": ["-c:a", "libopus", "-b:a", "64k", "-f", "ogg"],
    "aac": ["-c:a", "aac", "-b:a", "96k", "-f", "adts"],
    "flac": ["-c:a", "flac", "-f", "flac"],
    "wav": ["-c:a", "pcm_s16le", "-f", "wav"],
    "pcm": ["-c:a", "pcm_s16le", "-f", "s16le"],
}


def timed(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    if not FFMPEG:
        sys.exit("ffmpeg CLI missing: run `make system-deps`")
    sr = 24000
    t = np.arange(60 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + 0.2 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    pcm = to_pcm16(x)
    out: dict[str, dict] = {"encode_60s": {}, "decode_10min_mp3": {}}
    for fmt in SPEECH_FORMATS:
        cli = [FFMPEG, "-v", "error", "-f", "s16le", "-ar", str(sr), "-ac", "1", "-i", "-", *CLI_ENC[fmt], "-"]
        ours = timed(lambda fmt=fmt: encode_audio(x, fmt, sr))
        theirs = timed(lambda cli=cli: subprocess.run(cli, input=pcm, capture_output=True, check=True))
        out["encode_60s"][fmt] = {
            "pyav_ms": round(ours * 1000, 1),
            "ffmpeg_cli_ms": round(theirs * 1000, 1),
            "ratio": round(ours / theirs, 3),
            "x_realtime": round(60 / ours),
        }
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "long.mp3"
        subprocess.run(
            [
                FFMPEG,
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=44100:duration=600",
                "-ac",
                "2",
                "-c:a",
                "libmp3lame",
                str(src),
            ],
            check=True,
        )
        cli = [FFMPEG, "-v", "error", "-i", str(src), "-f", "f32le", "-ac", "1", "-ar", str(sr), "-"]
        ours = timed(lambda: decode_audio(src, sr), repeat=3)
        theirs = timed(lambda: subprocess.run(cli, capture_output=True, check=True), repeat=3)
        out["decode_10min_mp3"] = {
            "pyav_ms": round(ours * 1000, 1),
            "ffmpeg_cli_ms": round(theirs * 1000, 1),
            "ratio": round(ours / theirs, 3),
            "x_realtime": round(600 / ours),
        }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
