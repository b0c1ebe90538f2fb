"""OpenAI model names, old and new, are recognised by pattern; anything else is not."""

from __future__ import annotations

import pytest
from vibevoice_api.shared.model_names import ModelNames, matches, parse_patterns

NAMES = ModelNames()


@pytest.mark.parametrize(
    "name",
    [
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-transcribe",
        "gpt-4o-transcribe-diarize",
        "GPT-Transcribe",
        " whisper-large-v3 ",
    ],
)
def test_transcription_names(name):
    assert NAMES.kind_of(name) == "asr"


@pytest.mark.parametrize(
    "name", ["tts-1", "tts-1-hd", "gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15", "gpt-tts", "TTS-1"]
)
def test_speech_names(name):
    assert NAMES.kind_of(name) == "tts"


@pytest.mark.parametrize(
    "name",
    [
        "gpt-realtime",
        "gpt-realtime-2.1",
        "gpt-realtime-2.1-mini",
        "gpt-4o-realtime-preview",
        "gpt-4o-mini-realtime-preview-2024-12-17",
    ],
)
def test_realtime_names(name):
    assert NAMES.kind_of(name) == "realtime"


@pytest.mark.parametrize("name", ["gpt-4o", "gpt-5", "dall-e-3", "whisper", "tts", "", "my-tts-model", "realtime"])
def test_other_names_are_not_ours(name):
    assert NAMES.kind_of(name) is None


def test_patterns_are_configurable():
    narrow = ModelNames({"asr": "whisper-1", "tts": ["tts-1", "tts-1-hd"]})
    assert narrow.kind_of("whisper-1") == "asr"
    assert narrow.kind_of("gpt-transcribe") is None  # not configured any more
    assert narrow.kind_of("tts-1-hd") == "tts"
    assert narrow.kind_of("gpt-realtime") is None
    wide = ModelNames({"asr": "*-stt, whisper-*"})
    assert wide.kind_of("acme-stt") == "asr"
    assert wide.is_kind("whisper-2", "asr", "tts")
    assert not wide.is_kind("whisper-2", "tts")


def test_parse_patterns_rejects_nonsense():
    assert parse_patterns(" A-* , ,b ") == ("a-*", "b")
    with pytest.raises(ValueError):
        parse_patterns("x" * 200)
    with pytest.raises(ValueError):
        ModelNames({"video": "sora-*"})
    assert not matches("   ", ("*",))
