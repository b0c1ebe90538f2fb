"""Transcript segments → every OpenAI transcription response format.

Input is a list of :class:`Seg` (seconds, an optional integer speaker id from the model, text).
Output is byte-exact SRT/WebVTT and OpenAI-shaped JSON. Speakers are labelled the way OpenAI's
diarized models label them: ``A``, ``B``, … in order of first appearance; speakers matched to a known
speaker (``names``: model speaker id → name) carry that name instead, and the letters go to the others.
A segment may carry the generation steps that wrote its text (``pieces``: objects with ``text``,
``logprob`` and ``token_ids``), from which verbose_json takes ``tokens`` and ``avg_logprob``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .languages import language_name
from .schemas import (
    DiarizedSegment,
    TranscriptionDiarized,
    TranscriptionJSON,
    TranscriptionSegment,
    TranscriptionVerbose,
    TranscriptionWord,
    UsageDuration,
    UsageTokens,
)

Names = Mapping[Any, str]


@dataclass(frozen=True)
class Seg:
    start: float
    end: float
    text: str
    speaker: int | None = None
    pieces: tuple = field(default=(), compare=False, repr=False)


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
            out.append(Seg(start, end, text, s.speaker, s.pieces))
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


def labels(segments: Sequence[Seg], names: Names | None = None, *, always: bool = False) -> list[str | None]:
    """Each segment's speaker: its known name, else a letter (``A``, ``B``, … over the unnamed speakers).

    Without speaker ids and names, ``None`` for every segment unless ``always`` (diarized_json labels all)."""
    names = names or {}
    if not always and not names and all(s.speaker is None for s in segments):
        return [None] * len(segments)
    mapping: dict[int, str] = {}
    return [names[s.speaker] if s.speaker in names else speaker_label(s.speaker, mapping) for s in segments]


_labels = labels


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


def to_srt(segments: Sequence[Seg], *, speakers: bool = False, names: Names | None = None) -> str:
    """SRT; cues start with ``[Speaker X]`` when ``speakers`` or when known speakers were named."""
    blocks = []
    speakers = speakers or bool(names)
    for i, (s, label) in enumerate(zip(segments, labels(segments, names), strict=True), 1):
        text = s.text
        if speakers and label is not None:
            text = f"[{label}] {text}" if s.speaker in (names or {}) else f"[Speaker {label}] {text}"
        blocks.append(f"{i}\n{srt_time(s.start)} --> {srt_time(s.end)}\n{text}\n")
    return "\n".join(blocks)


def _vtt_escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("-->", "--&gt;")


def to_vtt(segments: Sequence[Seg], *, speakers: bool = False, names: Names | None = None) -> str:
    """WebVTT; cues carry a ``<v>`` voice span when ``speakers`` or when known speakers were named."""
    parts = ["WEBVTT\n"]
    speakers = speakers or bool(names)
    for s, label in zip(segments, labels(segments, names), strict=True):
        text = _vtt_escape(s.text)
        if speakers and label is not None:
            voice = _vtt_escape(label if s.speaker in (names or {}) else f"Speaker {label}")
            text = f"<v {voice}>{text}</v>"
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


def segment_tokens(seg: Seg) -> tuple[list[int], float | None]:
    """The token ids that wrote ``seg`` and their mean log-probability (None when not measured)."""
    ids = [i for p in seg.pieces for i in p.token_ids]
    lps = [p.logprob for p in seg.pieces]
    if not ids or any(lp is None for lp in lps):
        return ids, None
    return ids, round(sum(lps) / len(ids), 6)


def duration_usage(duration: float) -> UsageDuration:
    return UsageDuration(seconds=round(duration, 3))


def to_json(
    segments: Sequence[Seg],
    duration: float,
    *,
    languages: Sequence[str] | None = None,
    logprobs: Sequence[Mapping[str, Any]] | None = None,
    usage: UsageDuration | UsageTokens | None = None,
) -> TranscriptionJSON:
    return TranscriptionJSON(
        text=full_text(segments),
        languages=[{"code": c} for c in languages] if languages is not None else None,
        logprobs=list(logprobs) if logprobs is not None else None,
        usage=usage or duration_usage(duration),
    )


def to_verbose(
    segments: Sequence[Seg],
    *,
    duration: float,
    language: str | None,
    task: str = "transcribe",
    temperature: float = 0.0,
    words: bool = False,
    include_segments: bool = True,
    names: Names | None = None,
    usage: UsageDuration | UsageTokens | None = None,
    no_speech: Sequence[float] | None = None,
) -> TranscriptionVerbose:
    """verbose_json. ``no_speech``: each segment's measured no-speech probability (null where not given)."""
    segs = []
    for i, (s, label) in enumerate(zip(segments, labels(segments, names), strict=True)):
        ids, avg = segment_tokens(s)
        segs.append(
            TranscriptionSegment(
                id=i,
                seek=int(s.start * 100),
                start=round(s.start, 3),
                end=round(s.end, 3),
                text=s.text,
                tokens=ids,
                temperature=temperature,
                avg_logprob=avg,
                compression_ratio=_compression_ratio(s.text),
                no_speech_prob=no_speech[i] if no_speech is not None else None,
                speaker=label,
            )
        )
    return TranscriptionVerbose(
        task="translate" if task == "translate" else "transcribe",
        language="english" if task == "translate" else language_name(language),
        duration=round(duration, 3),
        text=full_text(segments),
        segments=segs if include_segments else [],
        words=approximate_words(segments) if words else None,
        usage=usage or duration_usage(duration),
    )


def verbose_body(v: TranscriptionVerbose) -> dict[str, Any]:
    """verbose_json as sent: absent ``words``/``speaker`` left out, unmeasured scores as explicit nulls."""
    body = v.model_dump()
    if body.get("words") is None:
        body.pop("words", None)
    for seg in body.get("segments", []):
        if seg.get("speaker") is None:
            seg.pop("speaker", None)
    return body


def to_diarized(
    segments: Sequence[Seg],
    *,
    duration: float,
    names: Names | None = None,
    usage: UsageDuration | UsageTokens | None = None,
) -> TranscriptionDiarized:
    segs = [
        DiarizedSegment(
            id=f"seg_{i}",
            start=round(s.start, 3),
            end=round(s.end, 3),
            text=s.text,
            speaker=label or "A",
        )
        for i, (s, label) in enumerate(zip(segments, labels(segments, names, always=True), strict=True))
    ]
    return TranscriptionDiarized(
        duration=round(duration, 3),
        text=full_text(segments),
        segments=segs,
        usage=usage or duration_usage(duration),
    )
