"""Detect a decoder stuck in a repetition loop.

Greedy decoding of a long, hard stretch of audio can fall into repeating one phrase forever (users have
seen an hour of meeting end in "Yes. Yes. Yes. ..."). Microsoft's own serving code recovers by
truncating to the last complete segment and sampling again at a slightly higher temperature; the
engine does the same, and this module decides when a row is looping: its newest tokens are one block
repeated back to back, long enough that real speech would not produce it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_PERIOD = 100  # tokens in the repeated block; a whole looping segment fits
MIN_REPEATS = 10
MIN_SPAN = 40  # tokens: "No. No. No." is speech, forty of them in a row is a loop


def repeating_tail(
    tokens: Sequence[int], max_period: int = MAX_PERIOD, min_repeats: int = MIN_REPEATS, min_span: int = MIN_SPAN
) -> tuple[int, int] | None:
    """``(start, period)`` if ``tokens`` ends in a loop: ``tokens[start:]`` repeats its first ``period``
    tokens back to back (and ``start`` is as early as that holds); otherwise ``None``."""
    n = len(tokens)
    if n < min_span:
        return None
    window = np.asarray(tokens[-min(n, max(min_span, min_repeats * max_period) + max_period) :], dtype=np.int64)
    w = window.shape[0]
    # Only periods whose previous turn ended in the same token can be loops: find them in one pass.
    before = window[-1 - min(max_period, w - 1) : -1][::-1]
    for period in (np.flatnonzero(before == window[-1]) + 1).tolist():
        span = max(min_span, min_repeats * period)
        if span > w:
            break
        tail = window[-span:]
        if not np.array_equal(tail[period:], tail[:-period]):
            continue
        start = n - span
        while start > 0 and tokens[start - 1] == tokens[start - 1 + period]:
            start -= 1
        return start, period
    return None
