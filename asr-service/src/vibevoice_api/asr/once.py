"""Process-wide side models (language identifier, voice activity detector, speaker encoder), loaded once."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def loaded_once(load: Callable[[], T]) -> Callable[[], T]:
    """``load`` wrapped so that the first call loads and every later call (any thread) gets the same object.

    Threads calling while it loads wait for that one load; a load that raises is tried again next call."""
    lock = threading.Lock()
    loaded: list[T] = []

    @functools.wraps(load)
    def get() -> T:
        with lock:
            if not loaded:
                loaded.append(load())
            return loaded[0]

    return get
