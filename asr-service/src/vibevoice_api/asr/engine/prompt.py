"""The text around the audio, exactly as VibeVoice-ASR was trained to read it.

We build it ourselves (instead of through a chat template) so that both checkpoint layouts, one of
which ships no template, give the model the same tokens. ``<|AUDIO_DURATION|>`` and the single audio
placeholder are expanded by transformers' processor (duration with two decimals, one placeholder per
3200 samples).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from vibevoice_api.shared.languages import language_name

# Control-token markup such as ``<|box_start|>`` (the audio placeholder) or ``<|im_end|>`` (end of turn).
# In user text it would add phantom audio slots or break out of the user turn: it is removed.
SPECIAL_MARKUP = re.compile(r"<\|[^<>|]{0,64}\|>")


def without_markup(text: str, sep: str = " ") -> str:
    """``text`` with control-token markup removed, also markup that removing other markup would join."""
    while True:
        cleaned = SPECIAL_MARKUP.sub(sep, text)
        if cleaned == text:
            return cleaned
        text = cleaned


SYSTEM = "You are a helpful assistant that transcribes audio input into text output in JSON format."
KEYS = "Start time, End time, Speaker ID, Content"
AUDIO = "<|object_ref_start|><|box_start|><|object_ref_end|>"


def context_text(
    prompt: str | None, language: str | Sequence[str] | None, task: str, keywords: Sequence[str] = ()
) -> str | None:
    """The free-text context, one item a line as the model was fine-tuned on (Microsoft joins a sample's
    ``customized_context`` list with newlines): the user's prompt, each hotword, a language hint (one
    language, or the candidates), a translation request."""
    parts = []
    prompt = without_markup(prompt or "").strip()
    if prompt:
        parts.append(prompt)
    parts.extend(w for w in (" ".join(without_markup(k).split()) for k in keywords) if w)
    langs = [language] if isinstance(language, str) else list(language or [])
    names = [language_name(code).title() for code in dict.fromkeys(langs)]
    if len(names) == 1:
        parts.append(f"The speech is in {names[0]}.")
    elif names:
        parts.append(f"The speech may be in {', '.join(names[:-1])} or {names[-1]}.")
    if task == "translate":
        parts.append("Translate the speech into English: write every Content value in English.")
    return "\n".join(parts) or None


def continuation(written: str) -> str:
    """The assistant turn a retry continues from: the model's own text, minus any control tokens it
    wrote inside it (which the processor would read as extra audio slots)."""
    body = without_markup(written, "")
    body = re.sub(r"^\s*assistant\s*", "", body)
    return f"<|im_start|>assistant\n{body}" if body.strip() else ""


def build_prompt(context: str | None) -> str:
    if context:
        ask = (
            f"This is a <|AUDIO_DURATION|> seconds audio, with extra info: {context}\n\n"
            f"Please transcribe it with these keys: {KEYS}"
        )
    else:
        ask = f"This is a <|AUDIO_DURATION|> seconds audio, please transcribe it with these keys: {KEYS}"
    return f"<|im_start|>system\n{SYSTEM}<|im_end|>\n<|im_start|>user\n{AUDIO}\n{ask}<|im_end|>\n"
