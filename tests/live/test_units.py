"""The pure parts of the live service: turn segmentation, G.711, the sample buffer, session parsing, answers."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from vibevoice_api.live.audio import FORMATS, SampleBuffer, to_vad_rate
from vibevoice_api.live.names import TRANSCRIPTION_MODEL_PATTERNS, voice_known
from vibevoice_api.live.protocol import (
    ProtocolError,
    SessionConfig,
    answer_of,
    apply_update,
    pick_tool,
    say_this,
    sentence_groups,
)
from vibevoice_api.live.vad import FRAME_MS, Segmenter, Started, Stopped, VADConfig


def run(seg: Segmenter, probs: list[float]) -> list[object]:
    out = []
    for i, p in enumerate(probs):
        d = seg.feed(p, i * FRAME_MS)
        if d is not None:
            out.append(d)
    return out


def test_segmenter_starts_on_speech_and_stops_after_the_silence():
    seg = Segmenter(VADConfig(threshold=0.5, silence_duration_ms=320))
    probs = [0.1] * 5 + [0.9] * 10 + [0.1] * 9 + [0.1] * 3
    assert run(seg, probs) == [Started(5 * FRAME_MS), Stopped(15 * FRAME_MS)]


def test_segmenter_hysteresis_keeps_quiet_word_tails_in_the_turn():
    seg = Segmenter(VADConfig(threshold=0.5, silence_duration_ms=96))
    # 0.4 is under the start threshold but above threshold-0.15: speech goes on.
    probs = [0.9] * 3 + [0.4] * 20 + [0.2] * 3
    assert run(seg, probs) == [Started(0), Stopped(23 * FRAME_MS)]


def test_segmenter_short_pauses_do_not_end_the_turn():
    seg = Segmenter(VADConfig(threshold=0.5, silence_duration_ms=500))
    probs = ([0.9] * 5 + [0.0] * 10) * 3 + [0.0] * 20
    decisions = run(seg, probs)
    assert decisions == [Started(0), Stopped(35 * FRAME_MS)]  # the silence after the last word


def ffmpeg(args: list[str], data: bytes) -> bytes:
    return subprocess.run(["ffmpeg", "-v", "error", *args], input=data, capture_output=True, check=True).stdout


@pytest.mark.parametrize(("fmt", "codec"), [("audio/pcmu", "mulaw"), ("audio/pcma", "alaw")])
def test_g711_decoding_matches_ffmpeg(fmt, codec):
    every_code = bytes(range(256))
    ours = FORMATS[fmt].decode(every_code)
    theirs = np.frombuffer(
        ffmpeg(["-f", codec, "-ar", "8000", "-ac", "1", "-i", "-", "-f", "s16le", "-"], every_code), "<i2"
    )
    assert np.array_equal(ours, theirs)


def test_pcm_is_little_endian_16_bit():
    assert FORMATS["audio/pcm"].decode(b"\x01\x00\xff\xff").tolist() == [1, -1]
    assert FORMATS["audio/pcm"].rate == 24000 and FORMATS["audio/pcmu"].rate == 8000


def test_resampling_for_the_vad_keeps_a_tone():
    t = np.arange(768) / 24000
    tone = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)
    x, rate = to_vad_rate(tone, 24000)
    assert rate == 16000 and x.size == 512
    ref = np.sin(2 * np.pi * 440 * np.arange(512) / 16000) * 10000 / 32768
    assert np.max(np.abs(x - ref)) < 0.01


def test_sample_buffer_slices_across_chunks_and_forgets():
    b = SampleBuffer()
    for start in range(0, 30, 10):
        b.append(np.arange(start, start + 10, dtype=np.int16))
    assert b.slice(5, 25).tolist() == list(range(5, 25))
    b.drop_before(12)
    assert len(b) == 18 and b.start == 12
    assert b.slice(0, 15).tolist() == [12, 13, 14]
    b.clear()
    assert len(b) == 0 and b.start == b.end == 30
    b.append(np.array([7], np.int16))
    assert b.slice(30, 31).tolist() == [7]


def patterns():
    return list(TRANSCRIPTION_MODEL_PATTERNS)


def test_session_update_ga_shape():
    cfg = SessionConfig(type="transcription", model="vibevoice-asr")
    new = apply_update(
        cfg,
        {
            "type": "transcription",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcmu"},
                    "transcription": {"model": "gpt-transcribe", "language": "en-US", "prompt": " names "},
                    "turn_detection": {"type": "server_vad", "threshold": 0.6, "idle_timeout_ms": 5000},
                }
            },
            "include": ["item.input_audio_transcription.logprobs"],
        },
        transcription_patterns=patterns(),
    )
    assert new.input_format.type == "audio/pcmu" and new.language == "en" and new.prompt == "names"
    assert new.vad is not None and new.vad.threshold == 0.6 and new.vad.silence_duration_ms == 500
    assert new.vad.idle_timeout_ms == 5000
    # Absent turn_detection keeps it; null turns it off.
    kept = apply_update(new, {"audio": {"input": {}}}, transcription_patterns=patterns())
    assert kept.vad == new.vad
    off = apply_update(new, {"audio": {"input": {"turn_detection": None}}}, transcription_patterns=patterns())
    assert off.vad is None


def test_session_update_legacy_shape():
    cfg = SessionConfig(type="realtime", model="gpt-realtime")
    new = apply_update(
        cfg,
        {
            "input_audio_format": "g711_alaw",
            "input_audio_transcription": {"model": "whisper-1"},
            "turn_detection": None,
        },
        transcription_patterns=patterns(),
        legacy_transcription=True,
    )
    assert new.type == "transcription" and new.input_format.type == "audio/pcma" and new.vad is None


@pytest.mark.parametrize(
    ("session", "param"),
    [
        ({"audio": {"input": {"transcription": {"model": "llama"}}}}, "session.audio.input.transcription.model"),
        ({"audio": {"input": {"turn_detection": {"threshold": -1}}}}, "session.audio.input.turn_detection.threshold"),
        ({"audio": {"output": {"speed": 9}}}, "session.audio.output.speed"),
        ({"include": ["item.something_else"]}, "session.include"),
        ({"type": "translation"}, "session.type"),
    ],
)  # fmt: skip
def test_session_update_refusals_name_the_field(session, param):
    with pytest.raises(ProtocolError) as exc:
        apply_update(SessionConfig(type="realtime", model="m"), session, transcription_patterns=patterns())
    assert exc.value.param == param


def test_answers_without_an_llm():
    assert say_this("Say this briefly in the user's language: I am working on it.") == "I am working on it."
    assert say_this("Be concise.") is None
    assert answer_of('{"status": "completed", "answer": "Yes."}') == ("completed", "Yes.")
    assert answer_of('{"status": "failed", "answer": ""}') == ("failed", "")
    assert answer_of("plain text") == ("completed", "plain text")
    tool = {"type": "function", "name": "lookup", "parameters": {"properties": {"q": {"type": "string"}}}}
    chat = {
        "type": "function",
        "name": "generate_chat_completion",
        "parameters": {"properties": {"request": {"type": "string"}}},
    }
    assert pick_tool([tool, chat], "auto") == ("generate_chat_completion", "request")
    assert pick_tool([tool], "auto") == ("lookup", "q")
    assert pick_tool([tool, chat], "none") is None
    assert pick_tool([tool, chat], {"type": "function", "name": "lookup"}) == ("lookup", "q")
    two = {
        "type": "function",
        "name": "two",
        "parameters": {"properties": {"a": {"type": "string"}, "b": {"type": "string"}}},
    }
    assert pick_tool([two], "auto") is None


def test_sentence_groups_start_with_one_sentence_and_respect_the_size():
    text = "First one. " + " ".join(f"Sentence {i} is here." for i in range(20))
    pieces = sentence_groups(text, 80)
    assert pieces[0] == "First one."
    assert all(len(p) <= 80 for p in pieces)
    assert " ".join(pieces) == text.strip()
    long_word_run = "word " * 100
    assert all(len(p) <= 40 for p in sentence_groups(long_word_run, 40))


def test_voice_names():
    presets = [("en-Carter_man", "Carter"), ("de-Anna_woman", "Anna")]
    assert voice_known("marin", presets) and voice_known("Carter", presets) and voice_known("en-carter_man", presets)
    assert voice_known("anna", presets) and not voice_known("bob", presets) and not voice_known("", presets)
