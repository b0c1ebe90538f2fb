"""Streamed transcript text: deltas that add up to exactly the final ``text``, and their logprobs.

The final transcript is built by :mod:`vibevoice_api.shared.transcripts`: each segment's text cleaned
(control characters blanked, blank lines folded, ends stripped), newlines read as spaces, segments joined
with one space. :class:`DeltaBuilder` applies the same rules to text arriving a token at a time: blanks
are held until the next visible character shows they are inside a segment (so a segment's trailing blanks
are never sent), the space between segments goes in front of the next segment's first character, and a
segment's text is checked against its final form when it completes (any part not streamed yet is sent
then). ``"".join(deltas) == text``, and the logprob entries' tokens join to the same text: each entry is
one generation step's share of the text, with that step's log-probability (a step that wrote only blanks
adds its log-probability to the next entry, whose text carries those blanks).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from vibevoice_api.shared.transcripts import clean_text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u2028\u2029]")


def _blank(ch: str) -> bool:
    return ch.isspace() or bool(_CONTROL.match(ch))


def _fold(run: str) -> str:
    """A run of blanks inside a segment as the final text has it."""
    run = _CONTROL.sub(" ", run.replace("\r\n", "\n").replace("\r", "\n"))
    if run.count("\n") >= 2:
        run = run[: run.index("\n")] + "\n" + run[run.rindex("\n") + 1 :]
    return run.replace("\n", " ")


def segment_text(raw: str) -> str:
    """A segment's raw text as it appears inside the final transcript."""
    return clean_text(raw).replace("\n", " ")


@dataclass
class LogprobEntry:
    token: str
    logprob: float
    token_ids: tuple[int, ...] = ()

    def wire(self) -> dict[str, object]:
        """OpenAI's shape: ``{"token", "logprob", "bytes"}``."""
        return {"token": self.token, "logprob": round(self.logprob, 6), "bytes": list(self.token.encode("utf-8"))}


@dataclass
class Delta:
    text: str
    logprobs: list[LogprobEntry] = field(default_factory=list)


class DeltaBuilder:
    """Feeds raw pieces of segment text; returns what to send. One builder per transcript."""

    def __init__(self) -> None:
        self.text = ""  # everything sent so far
        self._seg = ""  # this segment's text as sent (no leading separator)
        self._pending = ""  # blanks not sent yet
        self._carry: float | None = None  # log-probability of steps whose text is still pending
        self._carry_ids: tuple[int, ...] = ()
        self.consistent = True  # False once a completed segment disagreed with what was streamed

    def piece(self, raw: str, logprob: float | None = None, token_ids: tuple[int, ...] = ()) -> Delta:
        """Text of the current segment produced by one generation step."""
        out = []
        for ch in raw:
            if _blank(ch):
                self._pending += ch
                continue
            if self._seg or out:
                out.append(_fold(self._pending))
            elif self.text:
                out.append(" ")  # between segments
            self._pending = ""
            out.append(ch)
        delta = "".join(out)
        lp = None if logprob is None else logprob + (self._carry or 0.0)
        ids = self._carry_ids + tuple(token_ids)
        if not delta:
            self._carry, self._carry_ids = lp, ids
            return Delta("")
        self._carry, self._carry_ids = None, ()
        self._seg += delta.lstrip(" ") if not self._seg else delta
        self.text += delta
        entries = [LogprobEntry(delta, lp, ids)] if lp is not None else []
        return Delta(delta, entries)

    def end_segment(self, raw: str) -> Delta:
        """The segment completed with final raw text ``raw``: send whatever of it was not streamed."""
        final = segment_text(raw)
        sent, self._seg, self._pending = self._seg, "", ""
        self._carry, self._carry_ids = None, ()
        if not final.startswith(sent):
            self.consistent = False
            return Delta("")
        rest = final[len(sent) :]
        if not rest:
            return Delta("")
        delta = (" " if not sent and self.text else "") + rest
        self.text += delta
        return Delta(delta)

    def segment(self, pieces: Iterable[tuple[str, float | None, tuple[int, ...]]], raw: str) -> list[Delta]:
        """A whole segment at once (its pieces, then its end): the non-streamed path."""
        out = [d for p in pieces if (d := self.piece(*p)).text]
        end = self.end_segment(raw)
        if end.text:
            out.append(end)
        return out
