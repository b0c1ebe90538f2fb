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
    """The process's identifier, loaded on first use (about a second).

    Decompressed in memory: py3langid's own loader spools the model through a temporary file, which fails
    when the temporary folder is full (uploads then get a clean 507, but the model must still load)."""
    import io
    import lzma
    from array import array

    import numpy as np
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    def as_array(a: np.ndarray) -> array:
        out = array({2: "H", 4: "I", 8: "L"}[a.dtype.itemsize])
        out.frombytes(np.ascontiguousarray(a).tobytes())
        return out

    with lzma.open(MODEL_DIR / MODEL_FILE) as src, np.load(io.BytesIO(src.read()), allow_pickle=False) as data:
        return LanguageIdentifier(
            np.asarray(data["ptc"]),
            np.asarray(data["pc"]),
            data["classes"].tolist(),
            as_array(data["nextmove"]),
            data["out_feat"].tolist(),
            norm_probs=True,
            tk_row=as_array(data["nextmove_row"]),
        )


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
