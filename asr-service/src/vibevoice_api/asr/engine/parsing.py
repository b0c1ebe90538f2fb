"""Turn the model's JSON text into segments, incrementally.

VibeVoice-ASR writes ``[{"Start": 0.0, "End": 7.56, "Speaker": 0, "Content": "..."}, ...]`` (after an
``assistant`` role line). :class:`SegmentParser` is fed text as tokens are decoded and hands out each
segment as soon as its object closes, which is what makes streaming transcription possible. Output
that is not such an array (random weights, a derailed model) falls back to one segment over the
whole audio with the text as written.
"""

from __future__ import annotations

import json
import re

from vibevoice_api.shared.transcripts import Seg

_DECODER = json.JSONDecoder()
_SPECIAL = re.compile(r"<\|[a-zA-Z0-9_]+\|>")
_ARRAY = re.compile(r"\[")  # where the segments begin
_MEANINGFUL = re.compile(r"[{\]]")  # between objects only these mean anything (see SegmentParser._skip)


# The one segment type between the engine and the HTTP layer (start, end, text, speaker, pieces: the
# generation steps that wrote ``text``, see :mod:`.textstream`, filled in by the engine).
Segment = Seg


def _num(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().rstrip("s"))
        except ValueError:
            return None
    return None


def segment_from(obj: object) -> Segment | None:
    if not isinstance(obj, dict):
        return None
    content = obj.get("Content", obj.get("content", obj.get("text")))
    if not isinstance(content, str):
        return None
    start = _num(obj.get("Start", obj.get("start")))
    end = _num(obj.get("End", obj.get("end")))
    spk = obj.get("Speaker", obj.get("speaker"))
    speaker = int(spk) if isinstance(spk, (int, float)) and not isinstance(spk, bool) else None
    if isinstance(spk, str) and spk.strip().isdigit():
        speaker = int(spk.strip())
    start = start if start is not None else 0.0
    return Segment(start=start, end=end if end is not None else start, speaker=speaker, text=content)


class SegmentParser:
    """Incremental parser; ``feed`` returns the segments completed by the new text."""

    def __init__(self) -> None:
        self.text = ""
        self._pos: int | None = None  # index just after '[' once the array has started
        self._done = False
        self._waiting = False  # the current object did not parse yet: only a new '}' can complete it
        # Text before this index was read and holds nothing to act on: no '[' before the array starts, no '{' or
        # ']' after ``_pos`` once it has. Each character is searched once, not once per token.
        self._noise_to = 0
        self.segments: list[Segment] = []

    def feed(self, piece: str) -> list[Segment]:
        self.text += piece
        if self._done:
            return []
        if self._waiting and "}" not in piece:
            # An object ends with '}': without one, parsing it again from its start would fail again (and
            # re-reading a long unfinished object on every token made a garbage answer quadratic).
            return []
        self._waiting = False
        if self._pos is None:
            start = _ARRAY.search(self.text, self._noise_to)
            if start is None:
                self._noise_to = len(self.text)
                return []
            self._pos = start.end()
        out = []
        while True:
            j = self._skip(max(self._pos, self._noise_to))
            if j >= len(self.text):
                self._noise_to = j
                break
            if self.text[j] == "]":
                self._done = True
                break
            try:
                obj, end = _DECODER.raw_decode(self.text, j)
            except json.JSONDecodeError:
                self._waiting = True  # the object is not complete yet
                break
            self._pos = end
            seg = segment_from(obj)
            if seg is not None and (not self.segments or seg != self.segments[-1]):
                # (an exact copy of the previous segment is a decoding loop, never speech)
                self.segments.append(seg)
                out.append(seg)
        return out

    def _skip(self, i: int) -> int:
        # Between objects only '{' (next segment) and ']' (the end) mean anything; a continuation after a
        # loop recovery may repeat a stray '[' or '}', and such noise must not stall the parser.
        m = _MEANINGFUL.search(self.text, i)
        return m.start() if m else len(self.text)

    def rewind(self, length: int) -> None:
        """Forget text after ``length`` characters, but never a segment already handed out."""
        keep = max(length, self._pos or 0) if self.segments else length
        if keep < len(self.text):
            self.text = self.text[:keep]
            self._done = self._waiting = False
            self._noise_to = min(self._noise_to, keep)
            if self._pos is not None and self._pos > keep:
                self._pos = None
                self._noise_to = 0

    def restart_from(self, text: str) -> None:
        """After :meth:`rewind_to_last_segment`: continue parsing after ``text`` (a cleaned copy of it)."""
        self.text = text
        self._done = self._waiting = False
        self._noise_to = 0
        self._pos = len(text) if self.segments else None

    def rewind_to_last_segment(self) -> None:
        """Back to just after the last complete segment (or to nothing), where a retry continues."""
        self.rewind(self._pos if self.segments and self._pos is not None else 0)

    def finish(self, duration: float) -> list[Segment]:
        """Segments for the whole output; the fallback when the model wrote no parseable array."""
        if self.segments:
            return list(self.segments)
        raw = _SPECIAL.sub(" ", self.text)
        raw = re.sub(r"^\s*assistant\s*", "", raw).strip()
        if not raw:
            return []
        return [Segment(start=0.0, end=duration, speaker=None, text=raw)]
