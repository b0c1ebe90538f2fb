"""Transcript segments → every OpenAI transcription response format.

Input is a list of :class:`Seg` (seconds, an optional integer speaker id from the model, text).
Output is byte-exact SRT/WebVTT and OpenAI-shaped JSON. Speakers are labelled the way OpenAI's
diarized models label them: ``A``, ``B``, … in order of the model's speaker ids.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

from .languages import language_name
from .schemas import (
    DiarizedSegment,
    TranscriptionDiarized,
    TranscriptionJSON,
    TranscriptionSegment,
    TranscriptionVerbose,
    TranscriptionWord,
    UsageDuration,
)


@dataclass(frozen=True)
class Seg:
    start: float
    end: float
    text: str
    speaker: int | None = None


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def clean_text(text: str) -> str:
    """Drop control characters (they break subtitle parsers); keep single newlines."""
    text = _CONTROL.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _BLANK_LINES.sub("\n", text).strip()


MAX_SECONDS = 1e7  # ~115 days: anything larger is a model glitch, not a timestamp


def _finite(x: float) -> float:
    """A usable timestamp: finite, non-negative, bounded."""
    return min(float(x), MAX_SECONDS) if isinstance(x, (int, float)) and math.isfinite(x) and x > 0 else 0.0


def normalize(segments: Sequence[Seg], duration: float | None = None) -> list[Seg]:
    """Clamp times into [0, duration], make end ≥ start, clean text, drop empty segments."""
    out = []
    dur = _finite(duration) if duration is not None else None
    for s in segments:
        start, end = _finite(s.start), _finite(s.end)
        if dur:
            start, end = min(start, dur), min(end, dur)
        end = max(end, start)
        text = clean_text(s.text)
        if text:
            out.append(Seg(start, end, text, s.speaker))
    return out


def speaker_label(speaker: int | None, mapping: dict[int, str]) -> str:
    """Model speaker ids → A, B, …, Z, AA, AB, … in order of first appearance."""
    if speaker is None:
        speaker = -1
    if speaker not in mapping:
        n = len(mapping)
        label = ""
        while True:
            label = chr(ord("A") + n % 26) + label
            n = n // 26 - 1
            if n < 0:
                break
        mapping[speaker] = label
    return mapping[speaker]


def _labels(segments: Sequence[Seg]) -> list[str | None]:
    if all(s.speaker is None for s in segments):
        return [None] * len(segments)
    mapping: dict[int, str] = {}
    return [speaker_label(s.speaker, mapping) for s in segments]


def full_text(segments: Sequence[Seg]) -> str:
    return " ".join(s.text.replace("\n", " ") for s in segments).strip()


def _ms(t: float) -> tuple[int, int, int, int]:
    total = int(round(_finite(t) * 1000))
    h, rem = divmod(total, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return h, m, s, ms


def srt_time(t: float) -> str:
    h, m, s, ms = _ms(t)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def vtt_time(t: float) -> str:
    h, m, s, ms = _ms(t)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def to_text(segments: Sequence[Seg]) -> str:
    return full_text(segments) + "\n"


def to_srt(segments: Sequence[Seg], *, speakers: bool = False) -> str:
    blocks = []
    labels = _labels(segments)
    for i, (s, label) in enumerate(zip(segments, labels, strict=True), 1):
        text = s.text
        if speakers and label is not None:
            text = f"[Speaker {label}] {text}"
        blocks.append(f"{i}\n{srt_time(s.start)} --> {srt_time(s.end)}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("-->", "--&gt;")


def to_vtt(segments: Sequence[Seg], *, speakers: bool = False) -> str:
    parts = ["WEBVTT\n"]
    labels = _labels(segments)
    for s, label in zip(segments, labels, strict=True):
        text = _vtt_escape(s.text)
        if speakers and label is not None:
            text = f"<v Speaker {label}>{text}</v>"
        parts.append(f"{vtt_time(s.start)} --> {vtt_time(s.end)}\n{text}\n")
    return "\n".join(parts)


def _compression_ratio(text: str) -> float:
    raw = text.encode("utf-8")
    return round(len(raw) / len(zlib.compress(raw)), 4) if raw else 0.0


def approximate_words(segments: Sequence[Seg]) -> list[TranscriptionWord]:
    """Word times spread over each segment in proportion to word length.

    VibeVoice-ASR times segments, not words; this approximation is documented in the README and
    flagged with the ``x-vibevoice-word-timestamps: approximate`` response header.
    """
    words: list[TranscriptionWord] = []
    for s in segments:
        tokens = s.text.split()
        if not tokens:
            continue
        weights = [max(1, len(t)) for t in tokens]
        total = sum(weights)
        t = s.start
        span = s.end - s.start
        for tok, w in zip(tokens, weights, strict=True):
            end = t + span * w / total
            words.append(TranscriptionWord(word=tok, start=round(t, 3), end=round(end, 3)))
            t = end
    return words


def to_json(segments: Sequence[Seg], duration: float) -> TranscriptionJSON:
    return TranscriptionJSON(text=full_text(segments), usage=UsageDuration(seconds=round(duration, 3)))


def to_verbose(
    segments: Sequence[Seg],
    *,
    duration: float,
    language: str | None,
    task: str = "transcribe",
    temperature: float = 0.0,
    words: bool = False,
    include_segments: bool = True,
) -> TranscriptionVerbose:
    labels = _labels(segments)
    segs = [
        TranscriptionSegment(
            id=i,
            seek=int(s.start * 100),
            start=round(s.start, 3),
            end=round(s.end, 3),
            text=s.text,
            tokens=[],
            temperature=temperature,
            avg_logprob=0.0,
            compression_ratio=_compression_ratio(s.text),
            no_speech_prob=0.0,
            speaker=label,
        )
        for i, (s, label) in enumerate(zip(segments, labels, strict=True))
    ]
    return TranscriptionVerbose(
        task="translate" if task == "translate" else "transcribe",
        language="english" if task == "translate" else language_name(language),
        duration=round(duration, 3),
        text=full_text(segments),
        segments=segs if include_segments else [],
        words=approximate_words(segments) if words else None,
        usage=UsageDuration(seconds=round(duration, 3)),
    )


def to_diarized(segments: Sequence[Seg], *, duration: float) -> TranscriptionDiarized:
    mapping: dict[int, str] = {}
    segs = [
        DiarizedSegment(
            id=f"seg_{i}",
            start=round(s.start, 3),
            end=round(s.end, 3),
            text=s.text,
            speaker=speaker_label(s.speaker, mapping),
        )
        for i, s in enumerate(segments)
    ]
    return TranscriptionDiarized(
        duration=round(duration, 3),
        text=full_text(segments),
        segments=segs,
        usage=UsageDuration(seconds=round(duration, 3)),
    )
