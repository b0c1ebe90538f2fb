"""The model's JSON becomes transcript text token by token: never its syntax, always the final text."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from vibevoice_api.asr.deltas import DeltaBuilder
from vibevoice_api.asr.engine.parsing import SegmentParser
from vibevoice_api.asr.engine.textstream import ContentScanner, PieceCollector, attach
from vibevoice_api.shared import transcripts as tx

OUTPUT = (
    '<|im_start|>assistant\n[{"Start": 0.0, "End": 2.5, "Speaker": 0, "Content": "Hello, \\"world\\"."}, '
    '{"Start": 2.5, "End": 4.0, "Speaker": 1, "Content": "Caf\\u00e9 \\ud83d\\ude00 ok\\nbye"}]'
)


def chunks(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


def run(pieces: list[str]):
    """What the engine does per token (pieces, then segments in order); then what the route sends."""
    collector, parser, builder = PieceCollector(), SegmentParser(), DeltaBuilder()
    deltas, segments = [], []
    for i, text in enumerate(pieces):
        items = collector.feed(text, -0.5, (i,))
        for kind, value in attach(items, parser.feed(text)):
            if kind == "text":
                deltas.append(builder.piece(value.text, value.logprob, value.token_ids))
            else:
                segments.append(value)
                deltas.append(builder.end_segment(value[0].text))
    for p in collector.flush():
        deltas.append(builder.piece(p.text, p.logprob, p.token_ids))
    if not segments:
        for seg in parser.finish(10.0):
            segments.append((seg, collector.fallback(seg.text)))
            deltas.append(builder.end_segment(seg.text))
    return deltas, segments, builder


def final_text(segments) -> str:
    return tx.full_text(tx.normalize([tx.Seg(s.start, s.end, s.text, s.speaker) for s, _ in segments]))


def test_content_only_escapes_and_surrogates_decoded():
    scanner = ContentScanner()
    events = [e for ch in OUTPUT for e in scanner.feed(ch)]
    content = {}
    for e in events:
        if e[0] == "content":
            content[e[1]] = content.get(e[1], "") + e[2]
    assert content == {0: 'Hello, "world".', 1: "Café 😀 ok\nbye"}
    assert [e[1] for e in events if e[0] == "close"] == [0, 1]
    assert scanner.mode == "json"


def test_token_deltas_add_up_to_the_text_and_carry_logprobs():
    deltas, segments, builder = run(chunks(OUTPUT, list(range(0, len(OUTPUT), 3))))
    text = final_text(segments)
    assert text == 'Hello, "world". Café 😀 ok bye'
    sent = [d for d in deltas if d.text]
    assert "".join(d.text for d in sent) == text
    assert len(sent) > len(segments) * 3  # word by word, not segment by segment
    assert not any(c in d.text for d in sent for c in '{}[]:"') or '"world"' in text
    tokens = [e for d in sent for e in d.logprobs]
    assert "".join(e.token for e in tokens) == text
    assert all(e.logprob <= 0 for e in tokens)
    # Every piece of every segment came from the tokens that wrote it.
    for seg, pieces in segments:
        assert "".join(p.text for p in pieces) == seg.text
        assert all(p.logprob is not None for p in pieces)
    assert builder.consistent


def test_output_that_is_not_json_streams_as_text():
    raw = "<|im_start|>assistant\n  some words <|box_start|> and more\n\n\nend  "
    deltas, segments, builder = run(chunks(raw, [5, 9, 13, 20, 22, 30, 41, 50, 55]))
    text = final_text(segments)
    assert text == "some words   and more end"  # markup is blanked, not removed
    assert "".join(d.text for d in deltas) == text
    ((seg, pieces),) = segments
    assert "".join(p.text for p in pieces) == seg.text
    assert builder.consistent


def test_retry_prefix_is_read_not_reported():
    prefix = '<|im_start|>assistant\n[{"Start": 0, "End": 1, "Speaker": 0, "Content": "kept"}, '
    collector = PieceCollector(prefix)
    items = collector.feed('{"Start": 1, "End": 2, "Speaker": 0, "Content": "new"}', -1.0, (7,))
    assert [(type(i).__name__, i.text) for i in items] == [("TextPiece", "new"), ("Closed", "new")]


segment_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), max_codepoint=0x1FFFF), min_size=0, max_size=30
)


@settings(max_examples=150, deadline=None)
@given(
    contents=st.lists(segment_text, min_size=1, max_size=5),
    ascii_only=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
)
def test_any_transcript_any_tokenisation(contents, ascii_only, cuts):
    objs = [{"Start": i, "End": i + 1, "Speaker": i % 2, "Content": c} for i, c in enumerate(contents)]
    output = "assistant\n" + json.dumps(objs, ensure_ascii=ascii_only)
    deltas, segments, builder = run(chunks(output, cuts))
    text = final_text(segments)
    assert "".join(d.text for d in deltas) == text
    assert builder.consistent
    streamed = [e for d in deltas for e in d.logprobs]
    assert "".join(e.token for e in streamed) == text


@settings(max_examples=150, deadline=None)
@given(
    words=st.lists(
        st.sampled_from(
            ["<|im_start|>", "<|box_start|>", "assistant", " ", "\n", "\t", "<", "|", ">", "a", "é", "\x01"]
        )
        | st.text(alphabet=st.characters(blacklist_characters="[{", blacklist_categories=("Cs",)), max_size=4),
        max_size=30,
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=40),
)
def test_any_output_that_is_not_json(words, cuts):
    output = "".join(words)
    deltas, segments, builder = run(chunks(output, cuts))
    assert "".join(d.text for d in deltas) == final_text(segments)
    assert builder.consistent
