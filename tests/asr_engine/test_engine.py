"""The ASR engine on tiny VibeVoice-ASR checkpoints in both official layouts."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from vibevoice_api.asr.engine import ASREngine, EngineConfig, ModelLoadError, Segment
from vibevoice_api.asr.engine.convert import convert, convert_key, detect_layout
from vibevoice_api.asr.engine.errors import EngineBusyError
from vibevoice_api.asr.engine.longform import Piece, SpeakerStitcher, pieces, split_points, stitch
from vibevoice_api.asr.engine.parsing import SegmentParser
from vibevoice_api.asr.engine.prompt import build_prompt, context_text
from vibevoice_api.asr.engine.tiny import original_key, write_tiny_asr_model

SR = 24000


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("asr")
    return {lay: write_tiny_asr_model(root / lay / "VibeVoice-ASR", layout=lay) for lay in ("hf", "original")}


def tone(seconds: float, freq: float = 300.0) -> np.ndarray:
    return (0.1 * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


@pytest.fixture(scope="module")
def engines(layouts, tmp_path_factory):
    import os

    os.environ["VIBEVOICE_CONVERTED_DIR"] = str(tmp_path_factory.mktemp("converted"))
    out = {
        lay: ASREngine.load(EngineConfig(model_dir=p, device="cpu", min_new_tokens=24, max_batch_wait_ms=300))
        for lay, p in layouts.items()
    }
    yield out
    for e in out.values():
        e.close()


def test_layouts_detected_and_both_transcribe_identically(engines):
    assert engines["hf"].layout == "hf" and engines["original"].layout == "original"
    audio = tone(2.0)
    a = asyncio.run(engines["hf"].transcribe(audio))
    b = asyncio.run(engines["original"].transcribe(audio))
    assert a and a == b  # same random weights, written in two layouts, give the same transcript
    assert all(0 <= s.start <= s.end <= 2.0 + 1e-6 for s in a)


def test_one_time_conversion_matches_in_memory(layouts, engines, tmp_path):
    out = convert(layouts["original"], tmp_path / "converted")
    assert detect_layout(out) == "hf"
    # A processor can be built from the folder alone (what vLLM does with `vibevoice-asr convert` output).
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(str(out), local_files_only=True)
    assert processor.feature_extractor.sampling_rate == 24000
    eng = ASREngine.load(EngineConfig(model_dir=out, device="cpu", min_new_tokens=24))
    try:
        audio = tone(1.5, 500)
        assert asyncio.run(eng.transcribe(audio)) == asyncio.run(engines["hf"].transcribe(audio))
    finally:
        eng.close()


def test_a_merged_fine_tune_is_read_as_the_original_layout(layouts, engines, tmp_path):
    """Microsoft's finetuning-asr merges LoRA weights and saves its inference class: same keys and config,
    architectures ["VibeVoiceASRForConditionalGeneration"]. It loads and transcribes like the original."""
    src = tmp_path / "merged" / "VibeVoice-ASR"
    shutil.copytree(layouts["original"], src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["architectures"] = ["VibeVoiceASRForConditionalGeneration"]
    (src / "config.json").write_text(json.dumps(cfg))
    assert detect_layout(src) == "original"
    eng = ASREngine.load(EngineConfig(model_dir=src, device="cpu", min_new_tokens=24))
    try:
        audio = tone(1.5, 500)
        assert asyncio.run(eng.transcribe(audio)) == asyncio.run(engines["original"].transcribe(audio))
    finally:
        eng.close()


def test_key_renames_round_trip(layouts):
    from safetensors import safe_open

    with safe_open(str(layouts["hf"] / "model.safetensors"), "pt") as f:
        keys = list(f.keys())
    assert keys and all(convert_key(original_key(k)) == k for k in keys)
    assert convert_key("model.acoustic_tokenizer.decoder.head.conv.conv.weight") is None
    assert (
        convert_key("model.semantic_tokenizer.encoder.stages.2.0.mixer.conv.conv.conv.weight")
        == "semantic_tokenizer_encoder.conv_layers.1.stage.0.mixer.conv.weight"
    )


def test_batch_rows_match_solo_logits(engines):
    """Padded batching does not change a request's view: first-step logits equal its solo run."""
    lo = engines["hf"].loaded
    short, long_ = tone(1.0), tone(3.0, 440)
    batch = lo.processor(text=[build_prompt(None)] * 2, audio=[short, long_], return_tensors="pt", padding=True)
    solo = lo.processor(text=[build_prompt(None)], audio=[short], return_tensors="pt", padding=True)
    with torch.no_grad():
        lb = lo.model(**batch, sample=False).logits[0, -1]
        ls = lo.model(**solo, sample=False).logits[0, -1]
    assert torch.allclose(lb, ls, atol=1e-4)


def test_the_tiny_model_hears_its_audio(engines):
    """Audio embeddings as large as text embeddings, and different audio moves the next-token logits by
    as much as their own spread (default initialisation left the encoders' output near 1e-8)."""
    lo = engines["hf"].loaded
    noise = (0.1 * np.random.default_rng(0).standard_normal(2 * SR)).astype(np.float32)
    logits = []
    for audio in (tone(2.0), tone(2.0, 800), noise):
        inputs = lo.processor(text=[build_prompt(None)], audio=[audio], return_tensors="pt")
        with torch.no_grad():
            out = lo.model(**inputs, sample=False)
            text_scale = lo.model.get_input_embeddings()(inputs["input_ids"]).std()
        assert out.audio_hidden_states.std() > text_scale
        logits.append(out.logits[0, -1])
    for other in logits[1:]:
        assert (logits[0] - other).abs().max() > logits[0].std()


def test_concurrent_requests_share_a_batch(engines):
    eng = engines["hf"]
    sizes: list[int] = []
    eng.on_batch = sizes.append

    async def go():
        return await asyncio.gather(*(eng.transcribe(tone(1.0 + 0.5 * i)) for i in range(4)))

    results = asyncio.run(go())
    eng.on_batch = None
    assert len(results) == 4 and sum(sizes) == 4 and max(sizes) > 1


def test_stream_yields_then_ends(engines):
    async def go():
        return [s async for s in engines["hf"].transcribe_stream(tone(2.0))]

    segs = asyncio.run(go())
    assert segs and all(isinstance(s, Segment) for s in segs)


def test_cancelled_stream_stops_generation(layouts):
    """A client that leaves stops its generation at the next token: far fewer steps than its budget."""
    budget = 4000
    eng = ASREngine.load(EngineConfig(model_dir=layouts["hf"], device="cpu", min_new_tokens=budget))
    steps = []
    eng.loaded.model.get_output_embeddings().register_forward_hook(lambda *a: steps.append(1))
    try:

        async def go():
            gen = eng.transcribe_stream(tone(1.0))
            task = asyncio.ensure_future(gen.__anext__())
            while len(steps) < 3:  # generating (parsing never completes a segment on random weights)
                await asyncio.sleep(0.01)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await gen.aclose()
            while eng.stats()["batches"] < 1:  # the worker notices at the next token and frees itself
                await asyncio.sleep(0.05)

        asyncio.run(asyncio.wait_for(go(), timeout=600))  # the bound only guards against a hang
        assert len(steps) < budget // 10
    finally:
        eng.close()


def test_closing_stops_generation_in_flight_and_answers_with_a_503(layouts):
    """At shutdown (after the server's grace period) a generation still running stops at its next token and
    its caller hears a retryable 503, never a truncated transcript; a request still queued hears the same."""
    from vibevoice_api.shared.errors import ServiceUnavailableError

    budget = 4000
    eng = ASREngine.load(EngineConfig(model_dir=layouts["hf"], device="cpu", min_new_tokens=budget, max_batch_size=1))
    steps = []
    eng.loaded.model.get_output_embeddings().register_forward_hook(lambda *a: steps.append(1))

    async def go():
        running = asyncio.ensure_future(eng.transcribe(tone(1.0)))
        while len(steps) < 3:
            await asyncio.sleep(0.01)
        queued = asyncio.ensure_future(eng.transcribe(tone(1.0, 500)))
        await asyncio.sleep(0)
        await asyncio.to_thread(eng.close)
        return await asyncio.gather(running, queued, return_exceptions=True)

    results = asyncio.run(asyncio.wait_for(go(), timeout=600))  # the bound only guards against a hang
    assert len(steps) < budget // 10
    for r in results:
        assert isinstance(r, ServiceUnavailableError), r
        assert r.code == "shutting_down" and r.status_code == 503 and "Retry-After" in r.headers


def test_queue_full_is_busy(layouts):
    eng = ASREngine.load(
        EngineConfig(model_dir=layouts["hf"], device="cpu", max_queue=0, max_batch_size=1, min_new_tokens=200)
    )
    try:

        async def go():
            tasks = [asyncio.ensure_future(eng.transcribe(tone(1.0))) for _ in range(4)]
            return await asyncio.gather(*tasks, return_exceptions=True)

        results = asyncio.run(go())
        assert any(isinstance(r, EngineBusyError) for r in results)
        busy = next(r for r in results if isinstance(r, EngineBusyError))
        assert busy.status_code == 429 and "Retry-After" in busy.headers
    finally:
        eng.close()


def test_generation_budget_bounds_output(engines):
    eng = engines["hf"]
    assert eng._max_new_tokens(0.1) == 24 + int(12 * 0.1)
    assert eng._max_new_tokens(10 * 3600) == 32768


def test_parser_emits_segments_as_objects_close():
    p = SegmentParser()
    text = (
        'assistant\n[{"Start": 0.0, "End": 1.5, "Speaker": 0, "Content": "Hi there."}, '
        '{"Start": 1.5, "End": 3, "Speaker": 1, "Content": "Hello"}]'
    )
    out = []
    for i in range(0, len(text), 7):
        out.append(p.feed(text[i : i + 7]))
    flat = [s for chunk in out for s in chunk]
    assert flat == [
        Segment(start=0.0, end=1.5, speaker=0, text="Hi there."),
        Segment(start=1.5, end=3.0, speaker=1, text="Hello"),
    ]
    first_at = next(i for i, c in enumerate(out) if c)
    assert first_at < len(out) - 3  # the first segment came out long before the end


def test_parser_truncated_and_garbage():
    p = SegmentParser()
    p.feed('[{"Start": 0, "End": 2, "Speaker": 0, "Content": "done"}, {"Start": 2, "End": 4, "Spea')
    assert p.finish(5.0) == [Segment(start=0.0, end=2.0, speaker=0, text="done")]
    g = SegmentParser()
    g.feed("<|im_start|>assistant\nrandom words, no json")
    assert g.finish(3.0) == [Segment(start=0.0, end=3.0, speaker=None, text="random words, no json")]
    assert SegmentParser().finish(1.0) == []


def test_parser_reads_an_unfinished_object_once_per_closing_brace(monkeypatch):
    """A garbage answer that opens an object and never closes it costs one parse attempt per '}', not one per
    token (re-reading the object from its start on every token was quadratic in its length)."""
    from vibevoice_api.asr.engine import parsing

    calls = []
    real = parsing._DECODER

    class Counting:
        def raw_decode(self, text, idx):
            calls.append(idx)
            return real.raw_decode(text, idx)

    monkeypatch.setattr(parsing, "_DECODER", Counting())
    p = SegmentParser()
    p.feed('[{"Start": 0, "End": 1, "Speaker": 0, "Content": "one"}, {"Start": 1, "Content": "')
    before = len(calls)
    for _ in range(5000):
        assert p.feed("la ") == []
    assert len(calls) == before  # no '}' arrived: nothing to re-read
    p.feed(" {}} ")  # braces inside the unfinished string: one attempt, still unfinished
    assert len(calls) == before + 1
    out = p.feed('", "End": 2, "Speaker": 1}]')
    assert out == [Segment(start=1.0, end=2.0, speaker=1, text="la " * 5000 + " {}} ")]


def test_parser_reads_noise_between_objects_once(monkeypatch):
    """A garbage answer that never starts the array, or never opens an object in it, is searched once over,
    not from the same place again on every token."""
    from vibevoice_api.asr.engine import parsing

    scanned = []

    class Counting:
        def __init__(self, pattern):
            self.pattern = pattern

        def search(self, text, pos=0):
            scanned.append(len(text) - pos)
            return self.pattern.search(text, pos)

    monkeypatch.setattr(parsing, "_ARRAY", Counting(parsing._ARRAY))
    monkeypatch.setattr(parsing, "_MEANINGFUL", Counting(parsing._MEANINGFUL))
    segment = '{"Start": 0, "End": 1, "Speaker": 0, "Content": "x"}'
    for before, after in (("assistant\n", "[" + segment + "]"), ("assistant\n[ ", segment + "]")):
        scanned.clear()
        p = SegmentParser()
        p.feed(before)
        for _ in range(5000):
            assert p.feed("la, ") == []
        assert 0 < sum(scanned) <= len(p.text) + len(before)  # each character about once
        assert p.feed(after) == [Segment(start=0.0, end=1.0, speaker=0, text="x")]


def test_prompt_matches_training_format():
    plain = build_prompt(None)
    assert plain.startswith("<|im_start|>system\nYou are a helpful assistant that transcribes audio input into text")
    assert (
        "<|object_ref_start|><|box_start|><|object_ref_end|>\nThis is a <|AUDIO_DURATION|> seconds audio, please "
        "transcribe it with these keys: Start time, End time, Speaker ID, Content<|im_end|>\n" in plain
    )
    ctx = context_text("Names: Ana, Bo", "de", "translate")
    assert "with extra info: Names: Ana, Bo" in build_prompt(ctx) and "German" in ctx and "English" in ctx


def test_long_audio_split_at_silence():
    parts = [tone(2.4), np.zeros(int(0.6 * SR), np.float32)] * 4
    audio = np.concatenate(parts)
    starts = split_points(audio, SR, 4.0)
    assert starts[0] == 0 and len(starts) >= 3
    for s in starts[1:]:  # every cut lands in a pause
        assert np.abs(audio[max(0, s - 240) : s + 240]).max() < 1e-6
    ps = pieces(audio, SR, 4.0)
    assert sum(p.samples.shape[0] for p in ps) == audio.shape[0] and all(p.samples.shape[0] <= 4 * SR for p in ps)


def test_long_audio_pieces_reread_an_overlap():
    audio = np.concatenate([tone(2.4), np.zeros(int(0.6 * SR), np.float32)] * 6)
    ps = pieces(audio, SR, 4.0, overlap_seconds=0.75)
    assert len(ps) >= 3 and ps[0].offset == ps[0].owned_from == 0.0
    for prev, p in itertools.pairwise(ps):
        assert p.samples.shape[0] <= 4 * SR
        assert abs((p.owned_from - p.offset) - 0.75) < 1e-6  # re-reads the overlap before its cut
        assert abs(prev.offset + prev.samples.shape[0] / SR - p.owned_from) < 1e-6  # owned parts tile the audio
    assert abs(ps[-1].offset + ps[-1].samples.shape[0] / SR - audio.shape[0] / SR) < 1e-6
    # the overlap never exceeds a quarter of a pass
    assert all(p.owned_from - p.offset <= 1.0 + 1e-6 for p in pieces(audio, SR, 4.0, overlap_seconds=30))


def _seg(start, end, speaker, text=""):
    return Segment(start=float(start), end=float(end), speaker=speaker, text=text or f"{start}-{end}")


def test_speakers_stay_the_same_across_pieces():
    """Piece 2 numbers its speakers afresh (its 0 is piece 1's 1); the overlap 15-20 s maps them back."""
    p1, p2 = Piece(0.0, 0.0, np.zeros(1)), Piece(15.0, 20.0, np.zeros(1))
    first = [_seg(0, 8, 0), _seg(8, 14, 1), _seg(14, 17, 0), _seg(17, 20, 1)]
    second = [_seg(15, 17, 1, "dup a"), _seg(17, 20, 0, "dup b"), _seg(20, 26, 1), _seg(26, 30, 0), _seg(30, 33, 2)]
    out = stitch([(p1, first), (p2, second)])
    assert [(s.start, s.end, s.speaker) for s in out] == [
        (0, 8, 0),
        (8, 14, 1),
        (14, 17, 0),
        (17, 20, 1),  # piece 1 unchanged
        (20, 26, 0),
        (26, 30, 1),
        (30, 33, 2),  # piece 2 relabelled; its new voice gets a fresh id
    ]
    assert not any(s.text.startswith("dup") for s in out)  # the overlap is not said twice


def test_stitcher_streams_the_same_as_whole():
    p1, p2, p3 = Piece(0.0, 0.0, np.zeros(1)), Piece(8.0, 10.0, np.zeros(1)), Piece(18.0, 20.0, np.zeros(1))
    parts = [
        (p1, [_seg(0, 5, 0), _seg(5, 10, 1)]),
        (p2, [_seg(8, 10, 0), _seg(10, 15, 0), _seg(15, 20, 1)]),  # piece 2's 0 is speaker 1
        (p3, [_seg(19.5, 22, 3), _seg(22, 25, None), _seg(25, 28, 4)]),  # 19.5-22 straddles the cut: kept, clipped
    ]
    whole = stitch(parts)
    st, streamed, first_out = SpeakerStitcher(), [], []
    for piece, segs in parts:
        st.start_piece(piece)
        for seg in segs:
            got = st.feed(seg)
            streamed.extend(got)
            first_out.append(bool(got))
        streamed.extend(st.finish_piece())
    assert streamed == whole
    assert first_out[2] is False and first_out[3] is True  # held back only until the mapping is known
    assert [(s.start, s.speaker) for s in whole] == [(0, 0), (5, 1), (10, 1), (15, 2), (20, 2), (22, None), (25, 3)]


@pytest.mark.parametrize("damage", ["no_config", "unknown_arch", "no_weights", "missing_shard", "no_tokenizer"])
def test_damaged_folder_errors(layouts, tmp_path, damage):
    d = tmp_path / "VibeVoice-ASR"
    shutil.copytree(layouts["original"], d)
    expect = {
        "no_config": "config.json",
        "unknown_arch": "not VibeVoice-ASR",
        "no_weights": "safetensors",
        "missing_shard": "missing weight shard",
        "no_tokenizer": "Qwen2.5-7B",
    }[damage]
    if damage == "no_config":
        (d / "config.json").unlink()
    elif damage == "unknown_arch":
        cfg = json.loads((d / "config.json").read_text())
        cfg["architectures"] = ["VibeVoiceStreamingForConditionalGenerationInference"]
        (d / "config.json").write_text(json.dumps(cfg))
    elif damage == "no_weights":
        for f in d.glob("model*"):
            f.unlink()
    elif damage == "missing_shard":
        (d / "model-00002-of-00002.safetensors").unlink()
    elif damage == "no_tokenizer":
        shutil.rmtree(d / "tokenizer")
    with pytest.raises(ModelLoadError, match=expect):
        ASREngine.load(EngineConfig(model_dir=d, device="cpu"))
