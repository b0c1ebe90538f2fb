"""Transcript formatters: fixed segments in, byte-exact subtitles and OpenAI-parseable JSON out."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.audio import TranscriptionDiarized, TranscriptionVerbose
from vibevoice_api.shared import transcripts as tx


class _Step:
    """A generation step as the engine reports it (text, log-probability, token ids)."""

    def __init__(self, text: str, logprob: float, token_ids: tuple[int, ...]) -> None:
        self.text, self.logprob, self.token_ids = text, logprob, token_ids


def _written(segs):
    """The segments as the engine hands them over: with the two steps that wrote each one's text."""
    out = []
    for s in segs:
        half = len(s.text) // 2
        steps = (_Step(s.text[:half], -0.2, (1,)), _Step(s.text[half:], -0.3, (2,)))
        out.append(tx.Seg(s.start, s.end, s.text, s.speaker, steps))
    return out


SEGS = [
    tx.Seg(0.0, 7.56, "Hello and welcome.", 0),
    tx.Seg(7.56, 12.2, "Thanks, glad to be here.", 1),
    tx.Seg(3725.004, 3731.5, "An hour later.", 0),
]


def test_srt_exact():
    assert tx.to_srt(SEGS) == (
        "1\n00:00:00,000 --> 00:00:07,560\nHello and welcome.\n\n"
        "2\n00:00:07,560 --> 00:00:12,200\nThanks, glad to be here.\n\n"
        "3\n01:02:05,004 --> 01:02:11,500\nAn hour later.\n"
    )


def test_srt_with_speakers():
    out = tx.to_srt(SEGS, speakers=True)
    assert "[Speaker A] Hello and welcome." in out
    assert "[Speaker B] Thanks, glad to be here." in out
    assert "3\n01:02:05,004 --> 01:02:11,500\n[Speaker A] An hour later.\n" in out


def test_vtt_exact():
    assert tx.to_vtt(SEGS) == (
        "WEBVTT\n\n"
        "00:00:00.000 --> 00:00:07.560\nHello and welcome.\n\n"
        "00:00:07.560 --> 00:00:12.200\nThanks, glad to be here.\n\n"
        "01:02:05.004 --> 01:02:11.500\nAn hour later.\n"
    )
    assert "<v Speaker B>Thanks, glad to be here.</v>" in tx.to_vtt(SEGS, speakers=True)


def test_vtt_escapes_markup_and_arrows():
    out = tx.to_vtt([tx.Seg(0, 1, "a <b> & c --> d")])
    assert out.endswith("00:00:00.000 --> 00:00:01.000\na &lt;b&gt; &amp; c --&gt; d\n")


def test_text_and_json():
    assert tx.to_text(SEGS) == "Hello and welcome. Thanks, glad to be here. An hour later.\n"
    body = tx.to_json(SEGS, 3731.5).model_dump(exclude_none=True)
    assert body == {
        "text": "Hello and welcome. Thanks, glad to be here. An hour later.",
        "usage": {"type": "duration", "seconds": 3731.5},
    }


def test_verbose_json_parses_as_openai_type():
    v = tx.to_verbose(_written(SEGS), duration=3731.5, language="en", temperature=0.0, no_speech=[0.01, 0.02, 0.9])
    parsed = TranscriptionVerbose.model_validate(tx.verbose_body(v))
    assert [s.no_speech_prob for s in parsed.segments] == [0.01, 0.02, 0.9]
    assert parsed.segments[0].tokens == [1, 2] and parsed.segments[0].avg_logprob == -0.25
    assert parsed.language == "english" and parsed.duration == 3731.5
    assert [s.id for s in parsed.segments] == [0, 1, 2]
    assert parsed.segments[1].start == 7.56 and parsed.segments[1].end == 12.2
    assert parsed.segments[0].model_extra["speaker"] == "A"
    assert parsed.words is None
    assert v.task == "transcribe"


def test_verbose_words_are_within_their_segment():
    v = tx.to_verbose(SEGS[:1], duration=8, language=None, words=True)
    words = v.words
    assert [w.word for w in words] == ["Hello", "and", "welcome."]
    assert words[0].start == 0.0 and abs(words[-1].end - 7.56) < 1e-6
    assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(words))
    assert v.language == "unknown"


def test_diarized_parses_as_openai_type():
    d = tx.to_diarized(SEGS, duration=3731.5)
    parsed = TranscriptionDiarized.model_validate(d.model_dump())
    assert [s.speaker for s in parsed.segments] == ["A", "B", "A"]
    assert parsed.segments[0].type == "transcript.text.segment"
    assert parsed.text.startswith("Hello and welcome.")


def test_normalize_cleans_times_and_text():
    segs = tx.normalize(
        [tx.Seg(-3, float("nan"), "  a\x00b\x07  "), tx.Seg(5, 2, "back\n\n\nwards"), tx.Seg(1, 2, "   ")], duration=4.0
    )
    assert segs == [tx.Seg(0.0, 0.0, "a b", None), tx.Seg(4.0, 4.0, "back\nwards", None)]


def test_speaker_labels_beyond_z():
    mapping: dict[int, str] = {}
    labels = [tx.speaker_label(i, mapping) for i in range(30)]
    assert labels[:3] == ["A", "B", "C"] and labels[25] == "Z" and labels[26] == "AA" and labels[29] == "AD"


SRT_CUE = re.compile(r"^(\d+)\n(\d{2,}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2,}):(\d{2}):(\d{2}),(\d{3})\n(.+)$", re.S)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(allow_nan=True, allow_infinity=True),
            st.floats(allow_nan=True, allow_infinity=True),
            st.text(),
            st.one_of(st.none(), st.integers(0, 40)),
        ),
        max_size=12,
    ),
    st.one_of(st.none(), st.floats(0, 1e6)),
)
def test_formatters_never_break_on_any_input(raw, duration):
    segs = tx.normalize([tx.Seg(a, b, t, s) for a, b, t, s in raw], duration)
    srt = tx.to_srt(segs, speakers=True)
    blocks = [b for b in srt.split("\n\n") if b]
    assert len(blocks) == len(segs)
    for i, block in enumerate(blocks, 1):
        m = SRT_CUE.match(block.rstrip("\n"))
        assert m and int(m.group(1)) == i
        assert "\n\n" not in m.group(10)
    vtt = tx.to_vtt(segs, speakers=True)
    assert vtt.startswith("WEBVTT\n")
    assert vtt.count(" --> ") == len(segs)
    TranscriptionVerbose.model_validate(
        tx.verbose_body(
            tx.to_verbose(
                _written(segs), duration=duration or 0, language=None, words=True, no_speech=[0.5] * len(segs)
            )
        )
    )
    TranscriptionDiarized.model_validate(tx.to_diarized(segs, duration=duration or 0).model_dump())
