"""Which languages a transcript is in, for OpenAI's ``languages`` response field.

VibeVoice-ASR writes text without naming its language, so the language is identified from the text:
py3langid (BSD-3, langid.py's model: naive Bayes over byte n-grams, 97 languages, a 4.5 MB numpy file
in the wheel, no pickle). Each segment votes for its language with its length; with ``languages[]``
candidates, each segment picks the most likely of them. Languages holding at least a tenth of the text
are reported, most text first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from vibevoice_api.shared.languages import LANGUAGES

from .once import loaded_once

MIN_SHARE = 0.1
MIN_CHARS = 3
NOT_LANGUAGE = "zxx"  # langid's "no linguistic content"


@loaded_once
def identifier() -> Any:
    """The process's identifier, loaded on first use (about a second)."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def segment_language(text: str, candidates: Sequence[str] = ()) -> str | None:
    """The language of one piece of text (one of ``candidates`` when given); None when it is not language."""
    if len(text.strip()) < MIN_CHARS:
        return None
    ranked = identifier().rank(text)
    if candidates:
        allowed = set(candidates)
        return next((code for code, _ in ranked if code in allowed), candidates[0])
    code = ranked[0][0] if ranked else None
    return code if code in LANGUAGES and code != NOT_LANGUAGE else None


def detect_languages(texts: Sequence[str], candidates: Sequence[str] = ()) -> list[str]:
    """ISO-639-1 codes of the languages of ``texts`` (segments), most text first."""
    weight: dict[str, int] = {}
    for text in texts:
        code = segment_language(text, candidates)
        if code is not None:
            weight[code] = weight.get(code, 0) + len(text)
    total = sum(weight.values())
    if not total:
        return []
    ranked = sorted(weight.items(), key=lambda kv: -kv[1])
    return [code for code, w in ranked if w >= MIN_SHARE * total]
