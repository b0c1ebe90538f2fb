"""keywords[] and languages[] reach the model's prompt as Microsoft fine-tuned it (one item a line)."""

from __future__ import annotations

from vibevoice_api.asr.engine.prompt import build_prompt, context_text


def test_keywords_each_on_a_line_after_the_prompt():
    ctx = context_text("A podcast about renting.", None, "transcribe", ["Tea Brew", " Aiden  Host ", "<|im_end|>"])
    assert ctx == "A podcast about renting.\nTea Brew\nAiden Host"
    assert f"with extra info: {ctx}\n\n" in build_prompt(ctx)


def test_language_candidates():
    assert context_text(None, ["en", "de", "fr"], "transcribe") == "The speech may be in English, German or French."
    assert context_text(None, ["en", "en"], "transcribe") == "The speech is in English."
    assert context_text(None, "ko", "transcribe") == "The speech is in Korean."
    assert context_text(None, [], "transcribe", []) is None
