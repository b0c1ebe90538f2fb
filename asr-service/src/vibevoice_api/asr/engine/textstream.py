"""The transcript's own text, token by token, out of the model's JSON.

VibeVoice-ASR writes ``[{"Start": 0.0, "End": 7.56, "Speaker": 0, "Content": "..."}, ...]``. Clients of a
streamed transcription want the words as they are generated, never the JSON around them, and
``include[]=logprobs`` wants the log-probability of the tokens that wrote those words.
:class:`ContentScanner` reads the decoded text incrementally (a small JSON state machine: strings,
escapes split across tokens, surrogate pairs, nested values) and reports which characters of each
object's ``Content`` a piece of text produced, and when an object closes. :class:`PieceCollector` ties
that to tokens: every content piece keeps the ids and log-probability of the token(s) that wrote it, and
each parsed :class:`~.parsing.Segment` gets exactly the pieces whose text it holds.

Output that is not such an array (a derailed or random model) is text: the scanner decides from the
first character after the optional ``assistant`` role line, as the segment parser's fallback does, and
then passes the text through with control-token markup blanked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CONTENT_KEYS = ("Content", "content", "text")
ROLE = "assistant"
MARKUP = re.compile(r"<\|[a-zA-Z0-9_]+\|>")  # the segment parser's fallback blanks exactly these
_MARKUP_START = re.compile(r"<(?:\|[a-zA-Z0-9_]*\|?)?$")  # text that may still become markup
MAX_MARKUP = 72
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class TextPiece:
    """Transcript text written by one generation step (or a few, for a character split across tokens)."""

    text: str
    logprob: float | None  # natural log of the probability of those tokens together; None: not measured
    token_ids: tuple[int, ...] = ()


# Events returned by ContentScanner.feed: ("content", object index, text) and ("close", object index).
Event = tuple


class ContentScanner:
    """Incremental reader of the model's output: which transcript characters each piece of text adds."""

    def __init__(self) -> None:
        self.mode: str | None = None  # None until decided, then "json" or "raw"
        self._pre = ""
        self._hold = ""  # raw mode: a tail that may still become control-token markup
        self._state = "start"
        self._obj = -1
        self._key = ""
        self._content = False
        self._string_target = ""  # "key" | "value"
        self._esc: str | None = None  # None, "" (after a backslash), or "u" + hex digits so far
        self._high: str | None = None  # a high surrogate waiting for its low half
        self._nest = 0
        self._nest_str = False
        self._nest_esc = False
        self._done = False

    # ------------------------------------------------------------------ entry point

    def feed(self, text: str) -> list[Event]:
        if self.mode is None:
            self._pre += text
            rest = self._decide()
            if self.mode is None:
                return []
            text = rest
        if self.mode == "raw":
            return self._raw(text)
        return self._json(text)

    def _decide(self) -> str:
        """Pick the mode once the first meaningful character is in; the text from there on."""
        buf = self._pre
        if _MARKUP_START.search(buf) and len(buf) - buf.rfind("<") < MAX_MARKUP:
            return ""  # wait: the tail may be a control token
        cleaned = MARKUP.sub(" ", buf).lstrip()
        if not cleaned or (len(cleaned) < len(ROLE) and ROLE.startswith(cleaned)):
            return ""
        if cleaned.startswith(ROLE):
            cleaned = cleaned[len(ROLE) :].lstrip()
            if not cleaned:
                return ""
        self._pre = ""
        if cleaned[0] == "[":
            self.mode = "json"
            return buf[buf.find("[") :]
        self.mode = "raw"
        return cleaned

    # ------------------------------------------------------------------ raw text

    def _raw(self, text: str) -> list[Event]:
        buf = self._hold + text
        m = _MARKUP_START.search(buf)
        cut = m.start() if m and len(buf) - m.start() < MAX_MARKUP else len(buf)
        self._hold = buf[cut:]
        out = MARKUP.sub(" ", buf[:cut])
        return [("content", 0, out)] if out else []

    def flush(self) -> list[Event]:
        """At the end of generation: text held back because it might have been markup."""
        if self.mode == "raw" and self._hold:
            out, self._hold = self._hold, ""
            return [("content", 0, out)]
        return []

    # ------------------------------------------------------------------ JSON

    def _json(self, text: str) -> list[Event]:
        events: list[Event] = []
        out: list[str] = []

        def emit() -> None:
            if out:
                events.append(("content", self._obj, "".join(out)))
                out.clear()

        for ch in text:
            if self._done:
                break
            st = self._state
            if st == "start":
                if ch == "[":
                    self._state = "array"
            elif st == "array":
                if ch == "{":
                    self._obj += 1
                    self._state = "key?"
                elif ch == "]":
                    self._done = True
            elif st == "key?":
                if ch == '"':
                    self._key, self._string_target, self._state = "", "key", "string"
                elif ch == "}":
                    self._close(events, emit)
            elif st == "colon":
                if ch == ":":
                    self._state = "value?"
            elif st == "value?":
                if ch == '"':
                    self._content = self._key in CONTENT_KEYS
                    self._string_target, self._state = "value", "string"
                elif ch in "{[":
                    self._nest, self._nest_str, self._nest_esc, self._state = 1, False, False, "nested"
                elif ch == "}":
                    self._close(events, emit)
                elif not ch.isspace():
                    self._state = "scalar"
            elif st == "scalar" or st == "after":
                if ch == ",":
                    self._state = "key?"
                elif ch == "}":
                    self._close(events, emit)
            elif st == "nested":
                self._skip_nested(ch)
            elif st == "string":
                decoded = self._string_char(ch)
                if decoded is None:  # the closing quote
                    if self._high is not None:
                        self._put(self._high, out)
                        self._high = None
                    self._state = "colon" if self._string_target == "key" else "after"
                    continue
                for c in decoded:
                    self._put(c, out)
        emit()
        return events

    def _close(self, events: list[Event], emit) -> None:
        emit()
        self._state = "array"
        events.append(("close", self._obj))

    def _put(self, c: str, out: list[str]) -> None:
        if self._string_target == "key":
            self._key += c
        elif self._content:
            out.append(c)

    def _string_char(self, ch: str) -> str | None:
        """The characters that ``ch`` completes inside a string ("" while an escape is open); None at its end."""
        if self._esc is None:
            if ch == "\\":
                self._esc = ""
                return ""
            if ch == '"':
                return None
            return self._pair(ch)
        if self._esc == "":
            if ch == "u":
                self._esc = "u"
                return ""
            self._esc = None
            return self._pair(_ESCAPES.get(ch, ch))
        self._esc += ch  # "u" + hex digits
        if len(self._esc) < 5:
            return ""
        digits, self._esc = self._esc[1:], None
        try:
            return self._pair(chr(int(digits, 16)))
        except ValueError:
            return self._pair("\\u" + digits)

    def _pair(self, c: str) -> str:
        """Join a UTF-16 surrogate pair written as two escapes; a lone half passes as it is (like json)."""
        if self._high is not None:
            high, self._high = self._high, None
            if "\udc00" <= c <= "\udfff":
                return chr(0x10000 + ((ord(high) - 0xD800) << 10) + (ord(c) - 0xDC00))
            return high + self._pair(c)
        if "\ud800" <= c <= "\udbff" and len(c) == 1:
            self._high = c
            return ""
        return c

    def _skip_nested(self, ch: str) -> None:
        if self._nest_str:
            if self._nest_esc:
                self._nest_esc = False
            elif ch == "\\":
                self._nest_esc = True
            elif ch == '"':
                self._nest_str = False
        elif ch == '"':
            self._nest_str = True
        elif ch in "{[":
            self._nest += 1
        elif ch in "}]":
            self._nest -= 1
            if self._nest == 0:
                self._state = "after"


@dataclass(frozen=True)
class Closed:
    """An object of the array closed: its content as written, with the pieces that wrote it."""

    text: str
    pieces: tuple[TextPiece, ...]


class PieceCollector:
    """Per transcription row: the content pieces of each object, handed over when the object closes.

    ``prefix`` is text the row already continues from (a loop-recovery retry): read, never reported.
    """

    def __init__(self, prefix: str = "") -> None:
        self.scanner = ContentScanner()
        if prefix:
            self.scanner.feed(prefix)
        self._open: dict[int, list[TextPiece]] = {}
        self._raw: list[TextPiece] = []

    def feed(self, text: str, logprob: float | None, token_ids: tuple[int, ...] = ()) -> list[TextPiece | Closed]:
        """What ``text`` (one generation step) adds, in order: transcript pieces and closed objects."""
        return self._events(self.scanner.feed(text), logprob, token_ids)

    def flush(self) -> list[TextPiece | Closed]:
        return self._events(self.scanner.flush(), None, ())

    def _events(
        self, events: list[Event], logprob: float | None, token_ids: tuple[int, ...]
    ) -> list[TextPiece | Closed]:
        out: list[TextPiece | Closed] = []
        counted = False
        for ev in events:
            if ev[0] == "close":
                pieces = tuple(self._open.pop(ev[1], []))
                out.append(Closed("".join(p.text for p in pieces), pieces))
                continue
            _, obj, text = ev
            # A token's log-probability is counted once, with the first piece it writes.
            piece = TextPiece(text, 0.0 if counted and logprob is not None else logprob, token_ids)
            counted = True
            if self.scanner.mode == "raw":
                self._raw.append(piece)
            else:
                self._open.setdefault(obj, []).append(piece)
            out.append(piece)
        return out

    def fallback(self, text: str) -> tuple[TextPiece, ...]:
        """Pieces of the parser's fallback segment (the whole output as text, stripped); when they do not
        add up to ``text`` (never seen in practice), one piece without a log-probability."""
        trimmed = _strip_pieces([p for p in self._raw if p.text])
        if trimmed and "".join(p.text for p in trimmed) == text:
            return tuple(trimmed)
        return (TextPiece(text, None),)


def attach(items: list[TextPiece | Closed], segments: list) -> list[tuple[str, object]]:
    """Interleave a step's pieces with the segments the parser completed on the same text.

    Returns ``("text", TextPiece)`` and ``("seg", (segment, pieces))`` in the order they happened; a segment
    is paired with the closed object holding its text (an object the parser dropped, such as an exact
    repeat, has no segment), and a segment no object matches gets one piece without a log-probability.
    """
    pending = list(segments)
    out: list[tuple[str, object]] = []
    for item in items:
        if isinstance(item, TextPiece):
            out.append(("text", item))
        elif pending and pending[0].text == item.text:
            out.append(("seg", (pending.pop(0), item.pieces)))
    for seg in pending:
        out.append(("seg", (seg, (TextPiece(seg.text, None),))))
    return out


def _strip_pieces(pieces: list[TextPiece]) -> list[TextPiece]:
    out = list(pieces)
    while out and not out[0].text.lstrip():
        out.pop(0)
    while out and not out[-1].text.rstrip():
        out.pop()
    if out:
        out[0] = TextPiece(out[0].text.lstrip(), out[0].logprob, out[0].token_ids)
        out[-1] = TextPiece(out[-1].text.rstrip(), out[-1].logprob, out[-1].token_ids)
    return out
