"""Split audio longer than one model pass at its quietest moments, and stitch the pieces back together.

VibeVoice-ASR reads up to 60 minutes in one pass, but a smaller GPU runs out of memory sooner (users
report 24 GB failing at ~50 minutes): the single-pass limit is a setting. Cuts are made at the
lowest-energy 50 ms frame within the second half of each window, so words are rarely split; with
:class:`Silences` (a client's ``chunking_strategy`` of type ``server_vad``, scored by a voice activity
detector) a cut goes into the longest silence of at least ``silence_duration_ms`` there instead,
``prefix_padding_ms`` before the speech that follows it.

The model numbers speakers afresh in every pass, so each piece after the first also re-reads the last
``overlap`` seconds before its cut. In that shared stretch both passes have labelled the same voices:
:class:`SpeakerStitcher` matches each new piece's speakers to the earlier ids by how long their segments
coincide there, and gives speakers never heard in the overlap new ids. Segments are owned by the piece
whose own part contains their midpoint, so nothing is said twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .parsing import Segment

FRAME_SECONDS = 0.05


@dataclass(frozen=True)
class Silences:
    """Where no speech was heard, one flag per 50 ms frame, and how long a silence must be to cut in it."""

    quiet: np.ndarray  # bool per FRAME_SECONDS frame
    min_frames: int  # silence_duration_ms in frames (at least 1)
    padding_frames: int = 0  # prefix_padding_ms in frames: the cut lies this far before speech resumes

    def cut(self, lo: int, hi: int) -> int | None:
        """The frame to cut at within ``[lo, hi)``: in the longest long-enough silence; None if there is none."""
        q = self.quiet[lo:hi].astype(np.int8)
        if not q.any():
            return None
        edges = np.flatnonzero(np.diff(np.concatenate([[0], q, [0]])))
        starts, ends = edges[0::2], edges[1::2]
        lengths = ends - starts
        best = int(np.argmax(lengths))
        if lengths[best] < max(1, self.min_frames):
            return None
        return lo + max(int(starts[best]), int(ends[best]) - self.padding_frames)


@dataclass(frozen=True)
class Piece:
    offset: float  # where this piece's audio starts on the recording's timeline (seconds)
    owned_from: float  # where its own part starts; before that it re-reads the previous piece's end
    samples: np.ndarray


def split_points(
    audio: np.ndarray,
    sample_rate: int,
    max_seconds: float,
    search_fraction: float = 0.5,
    silences: Silences | None = None,
) -> list[int]:
    """Sample offsets where pieces start (always begins with 0)."""
    n = audio.shape[0]
    limit = int(max_seconds * sample_rate)
    if n <= limit:
        return [0]
    frame = max(1, int(FRAME_SECONDS * sample_rate))
    usable = (n // frame) * frame
    energy = np.sqrt(np.mean(audio[:usable].reshape(-1, frame).astype(np.float64) ** 2, axis=1))
    starts = [0]
    pos = 0
    while n - pos > limit:
        hi = pos + limit
        lo = pos + int(limit * (1 - search_fraction))
        f_lo, f_hi = lo // frame, min(hi // frame, energy.shape[0])
        quiet = silences.cut(f_lo, f_hi) if silences is not None and f_hi > f_lo else None
        if quiet is not None:
            cut = quiet * frame
        else:
            cut = (f_lo + int(np.argmin(energy[f_lo:f_hi]))) * frame + frame // 2 if f_hi > f_lo else hi
        cut = min(max(cut, pos + 1), hi)
        starts.append(cut)
        pos = cut
    return starts


def pieces(
    audio: np.ndarray,
    sample_rate: int,
    max_seconds: float,
    overlap_seconds: float = 0.0,
    silences: Silences | None = None,
) -> list[Piece]:
    """The pieces to transcribe; none is longer than ``max_seconds`` including its overlap.

    The overlap is capped at a quarter of ``max_seconds`` so that most of every pass is new audio.
    """
    if audio.shape[0] <= int(max_seconds * sample_rate):
        return [Piece(0.0, 0.0, audio)]
    overlap = int(min(max(overlap_seconds, 0.0), max_seconds / 4) * sample_rate)
    starts = split_points(audio, sample_rate, max_seconds - overlap / sample_rate, silences=silences)
    bounds = [*starts[1:], audio.shape[0]]
    out = []
    for s, e in zip(starts, bounds, strict=True):
        begin = max(0, s - overlap)
        out.append(Piece(begin / sample_rate, s / sample_rate, audio[begin:e]))
    return out


class SpeakerStitcher:
    """Turns the segments of consecutive pieces (in order, already on the global timeline) into one
    transcript with one set of speaker ids. Works incrementally, so streamed segments can be relabelled
    as soon as the overlap that decides a piece's mapping has been transcribed."""

    def __init__(self) -> None:
        self._previous: list[Segment] = []  # the last piece's output, global ids
        self._current: list[Segment] = []
        self._held: list[Segment] = []  # this piece's segments inside the overlap, until the mapping is known
        self._mapping: dict[int, int] = {}
        self._used: set[int] = set()
        self._window = (0.0, 0.0)
        self._decided = True

    def start_piece(self, piece: Piece) -> None:
        self._previous = self._current or self._previous
        self._current = []
        self._held = []
        self._mapping = {}
        self._window = (piece.offset, piece.owned_from)
        self._decided = piece.owned_from <= piece.offset  # the first piece keeps the model's own ids

    def feed(self, seg: Segment) -> list[Segment]:
        """Segments ready to hand out after ``seg`` (possibly none, possibly several held back)."""
        if not self._decided:
            if seg.start < self._window[1]:
                self._held.append(seg)
                return []
            return [*self._decide(), *self._take(seg)]
        return self._take(seg)

    def finish_piece(self) -> list[Segment]:
        return self._decide() if not self._decided else []

    def _decide(self) -> list[Segment]:
        self._decided = True
        self._mapping = _match_speakers(self._previous, self._held, self._window)
        out: list[Segment] = []
        for seg in self._held:
            out.extend(self._take(seg))
        self._held = []
        return out

    def _take(self, seg: Segment) -> list[Segment]:
        start, owned = self._window
        if owned > start:
            if (seg.start + seg.end) / 2 < owned:
                return []  # the previous piece already said this
            seg = replace(seg, start=max(seg.start, owned))
        if seg.speaker is not None:
            if owned <= start:
                self._mapping.setdefault(seg.speaker, seg.speaker)
            elif seg.speaker not in self._mapping:
                self._mapping[seg.speaker] = max(self._used, default=-1) + 1
            seg = replace(seg, speaker=self._mapping[seg.speaker])
            self._used.add(seg.speaker)
        self._current.append(seg)
        return [seg]


def _match_speakers(before: list[Segment], after: list[Segment], window: tuple[float, float]) -> dict[int, int]:
    """Local speaker of the new piece → global id, one to one, by time spoken together in ``window``."""
    lo, hi = window
    votes: dict[tuple[int, int], float] = {}
    for b in after:
        if b.speaker is None:
            continue
        for a in before:
            if a.speaker is None:
                continue
            shared = min(a.end, b.end, hi) - max(a.start, b.start, lo)
            if shared > 0:
                votes[(b.speaker, a.speaker)] = votes.get((b.speaker, a.speaker), 0.0) + shared
    mapping: dict[int, int] = {}
    taken: set[int] = set()
    for (local, global_id), _ in sorted(votes.items(), key=lambda kv: -kv[1]):
        if local not in mapping and global_id not in taken:
            mapping[local] = global_id
            taken.add(global_id)
    return mapping


def stitch(parts: list[tuple[Piece, list[Segment]]]) -> list[Segment]:
    """Whole-transcript form of :class:`SpeakerStitcher` (segments already on the global timeline)."""
    stitcher = SpeakerStitcher()
    out: list[Segment] = []
    for piece, segs in parts:
        stitcher.start_piece(piece)
        for seg in segs:
            out.extend(stitcher.feed(seg))
        out.extend(stitcher.finish_piece())
    return out
