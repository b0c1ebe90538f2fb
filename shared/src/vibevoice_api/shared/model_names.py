"""Which OpenAI model names mean which of our models: patterns, not lists.

OpenAI keeps adding names (``gpt-transcribe``, ``gpt-4o-mini-tts-2025-12-15``, ``gpt-realtime-2.1-mini``,
...); clients send whatever their SDK defaults to. A name is matched against shell-style patterns
(``*`` any run of characters, ``?`` one character, ``[...]`` a set), case-insensitively, per kind of
model. The patterns are settings, so an operator can narrow them (or widen them) without a release.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence

#: kind → patterns. ``asr``: transcription names; ``tts``: speech names; ``realtime``: realtime session names.
DEFAULT_PATTERNS: dict[str, tuple[str, ...]] = {
    "asr": ("whisper-*", "gpt-*transcribe*"),
    "tts": ("tts-*", "gpt-*tts*"),
    "realtime": ("gpt-realtime*", "gpt-4o*-realtime*"),
}
KINDS = tuple(DEFAULT_PATTERNS)
MAX_PATTERN_CHARS = 128


def parse_patterns(value: str | Iterable[str]) -> tuple[str, ...]:
    """A comma-separated setting (or a list) → cleaned, lower-cased patterns; empty items dropped."""
    items = value.split(",") if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"a model-name pattern must be a string, not {type(item).__name__}")
        p = item.strip().lower()
        if not p:
            continue
        if len(p) > MAX_PATTERN_CHARS:
            raise ValueError(f"model-name pattern longer than {MAX_PATTERN_CHARS} characters: {p[:40]}...")
        out.append(p)
    return tuple(out)


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether ``name`` (any case, surrounding blanks ignored) matches one of ``patterns``."""
    n = name.strip().lower()
    return bool(n) and any(fnmatch.fnmatchcase(n, p.lower()) for p in patterns)


class ModelNames:
    """Classifies a requested model name into a kind (``asr``, ``tts``, ``realtime``) by pattern."""

    def __init__(self, patterns: Mapping[str, Iterable[str] | str] | None = None) -> None:
        source = DEFAULT_PATTERNS if patterns is None else patterns
        unknown = set(source) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown model kinds {sorted(unknown)}: use {', '.join(KINDS)}")
        self.patterns: dict[str, tuple[str, ...]] = {k: parse_patterns(source.get(k, ())) for k in KINDS}

    def kind_of(self, name: str | None) -> str | None:
        """The first kind (in ``asr``, ``tts``, ``realtime`` order) whose patterns match ``name``."""
        if not name:
            return None
        for kind in KINDS:
            if matches(name, self.patterns[kind]):
                return kind
        return None

    def is_kind(self, name: str | None, *kinds: str) -> bool:
        """Whether ``name`` matches the patterns of any of ``kinds``."""
        return bool(name) and any(matches(name, self.patterns[k]) for k in kinds)
