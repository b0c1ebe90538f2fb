"""Our VibeVoice-Realtime engine on a tiny random checkpoint written in the official layout."""

from __future__ import annotations

import asyncio
import json
import pickle
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vibevoice_api.tts.engine import EngineConfig, ModelLoadError, TTSEngine, UnknownVoiceError, VoicePresetError
from vibevoice_api.tts.engine.model import checkpoint_key, module_key
from vibevoice_api.tts.engine.tiny import write_tiny_realtime_model, write_tiny_voice_presets
from vibevoice_api.tts.engine.voices import UnsafePresetError, load_pt, load_safetensors, save_safetensors

TEXT = "Hello there. This is a test."


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tts")
    model = write_tiny_realtime_model(root / "VibeVoice-Realtime-0.5B")
    write_tiny_voice_presets(model, root / "voices" / "streaming_model")
    return root


def make(models: Path, **kw) -> TTSEngine:
    opts = {"device": "cpu", "latents_per_token": 1.0, "min_latents": 12, **kw}
    cfg = EngineConfig(
        model_dir=models / "VibeVoice-Realtime-0.5B", voices_dir=models / "voices" / "streaming_model", **opts
    )
    return TTSEngine.load(cfg)


@pytest.fixture(scope="module")
def engine(models):
    eng = make(models)
    yield eng
    eng.close()


def test_key_mapping_round_trips(engine):
    for name in engine.loaded.model.state_dict():
        if name.endswith("inv_freq"):
            continue
        assert module_key(checkpoint_key(name)) == name
    # Official names of the decoder as Microsoft's modules spell them.
    assert (
        checkpoint_key("acoustic_decoder.stem.conv.conv.weight")
        == "model.acoustic_tokenizer.decoder.upsample_layers.0.0.conv.conv.weight"
    )
    assert (
        checkpoint_key("acoustic_decoder.conv_layers.0.stage.0.mixer.conv.weight")
        == "model.acoustic_tokenizer.decoder.stages.1.0.mixer.conv.conv.conv.weight"
    )
    assert module_key("model.tts_language_model.embed_tokens.weight") is None


def test_seeded_synthesis_is_repeatable(engine):
    a = engine.synthesize(TEXT, "en-Carter_man", seed=1)
    b = engine.synthesize(TEXT, "en-Carter_man", seed=1)
    c = engine.synthesize(TEXT, "en-Carter_man", seed=2)
    assert a.dtype == np.float32 and a.size % 3200 == 0 and a.size > 0 and np.isfinite(a).all()
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_stream_chunks_concatenate_to_synthesis(engine):
    async def collect():
        return [c async for c in engine.stream(TEXT, "en-Carter_man", seed=5)]

    chunks = asyncio.run(collect())
    assert len(chunks) >= 2
    assert all(c.size <= 6 * 3200 for c in chunks)
    whole = np.concatenate(chunks)
    assert np.array_equal(whole, engine.synthesize(TEXT, "en-Carter_man", seed=5))


def test_voice_names(engine):
    assert engine.resolve_voice("carter") == "en-Carter_man"
    assert engine.resolve_voice("EN-carter_MAN") == "en-Carter_man"
    assert engine.resolve_voice("Samuel") == "in-Samuel_man"
    for bad in ("../en-Carter_man", "/etc/passwd", "en-Carter_man\x00", "..", "%2e%2e%2fetc", "nobody"):
        with pytest.raises(UnknownVoiceError) as e:
            engine.resolve_voice(bad)
        assert "en-Carter_man" in e.value.message


def test_long_text_is_split_at_sentences(models):
    eng = make(models, max_piece_tokens=24)
    try:
        text = " ".join(f"Sentence number {i} is here." for i in range(6))
        pieces = eng.split(text)
        assert len(pieces) > 1 and all(len(p) <= 24 for p in pieces)
        decoded = [eng.loaded.tokenizer.decode(p).strip() for p in pieces]
        assert all(d.endswith(".") for d in decoded)

        async def collect():
            return [c async for c in eng.stream(text, "en-Carter_man", seed=0)]

        assert len(asyncio.run(collect())) >= len(pieces)
    finally:
        eng.close()


def test_safetensors_preset_gives_identical_audio(engine, models, tmp_path):
    preset = load_pt(models / "voices" / "streaming_model" / "en-Carter_man.pt")
    out = tmp_path / "voices"
    out.mkdir()
    save_safetensors(preset, out / "en-Carter_man.safetensors")
    again = load_safetensors(out / "en-Carter_man.safetensors")
    for s in preset.streams:
        assert all(torch.equal(a, b) for a, b in zip(preset.streams[s].keys, again.streams[s].keys, strict=True))
    cfg = EngineConfig(
        model_dir=models / "VibeVoice-Realtime-0.5B",
        voices_dir=out,
        device="cpu",
        latents_per_token=1.0,
        min_latents=12,
    )
    eng2 = TTSEngine(cfg, engine.loaded)
    try:
        assert np.array_equal(
            eng2.synthesize(TEXT, "en-Carter_man", seed=3), engine.synthesize(TEXT, "en-Carter_man", seed=3)
        )
    finally:
        eng2.close()


class _Evil:
    def __reduce__(self):
        return (subprocess.call, (["touch", "/tmp/vibevoice-pwned"],))


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"lm": _Evil()}, protocol=2))
    with pytest.raises(UnsafePresetError, match="refused"):
        load_pt(path)
    assert not Path("/tmp/vibevoice-pwned").exists()
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"lm": 1}))
    with pytest.raises(UnsafePresetError):
        load_pt(legacy)


def test_bad_preset_is_a_voice_error_not_a_crash(models, tmp_path):
    voices = tmp_path / "voices"
    shutil.copytree(models / "voices" / "streaming_model", voices)
    (voices / "en-Broken_man.pt").write_bytes(b"PK\x03\x04garbage")
    eng = TTSEngine.load(EngineConfig(model_dir=models / "VibeVoice-Realtime-0.5B", voices_dir=voices, device="cpu"))
    try:
        with pytest.raises(VoicePresetError) as e:
            eng.preset("en-Broken_man")
        assert e.value.status_code == 400 and e.value.param == "voice"
    finally:
        eng.close()


@pytest.mark.parametrize(
    "damage", ["no_config", "bad_json", "wrong_type", "no_weights", "truncated", "no_tokenizer", "missing_key"]
)
def test_damaged_model_folder_errors_name_the_problem(models, tmp_path, damage):
    d = tmp_path / "VibeVoice-Realtime-0.5B"
    shutil.copytree(models / "VibeVoice-Realtime-0.5B", d)
    expect = {
        "no_config": "config.json",
        "bad_json": "not valid JSON",
        "wrong_type": "model_type",
        "no_weights": "model.safetensors",
        "truncated": "safetensors",
        "no_tokenizer": "tokenizer",
        "missing_key": "lacks",
    }[damage]
    if damage == "no_config":
        (d / "config.json").unlink()
    elif damage == "bad_json":
        (d / "config.json").write_text("{nope")
    elif damage == "wrong_type":
        cfg = json.loads((d / "config.json").read_text())
        cfg["model_type"] = "vibevoice"
        (d / "config.json").write_text(json.dumps(cfg))
    elif damage == "no_weights":
        (d / "model.safetensors").unlink()
    elif damage == "truncated":
        data = (d / "model.safetensors").read_bytes()
        (d / "model.safetensors").write_bytes(data[: len(data) // 3])
    elif damage == "no_tokenizer":
        shutil.rmtree(d / "tokenizer")
    elif damage == "missing_key":
        from safetensors.torch import load_file, save_file

        state = load_file(str(d / "model.safetensors"))
        state.pop("tts_eos_classifier.fc2.bias")
        save_file(state, str(d / "model.safetensors"))
    with pytest.raises(ModelLoadError, match=expect):
        TTSEngine.load(EngineConfig(model_dir=d, device="cpu"))


def test_cuda_requested_without_gpu_is_clear(models):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        TTSEngine.load(EngineConfig(model_dir=models / "VibeVoice-Realtime-0.5B", device="cuda:0"))


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=st.text(min_size=1, max_size=6000))
def test_any_text_tokenizes_and_splits_within_limits(engine, text):
    """Every Unicode class, control characters, SSML-looking markup, 4096+ characters: never an exception."""
    pieces = engine.split(text)
    assert pieces and all(len(p) <= engine.cfg.max_piece_tokens for p in pieces)
    assert sum(len(p) for p in pieces) >= 1  # the text itself or at least its closing newline is spoken


def test_markup_and_control_characters_are_spoken_as_text(engine):
    text = '<speak><prosody rate="x-fast">Hi\x00\x07 there</prosody></speak> \u202e\u200b😀 ' + "Long. " * 800
    assert len(text) > 4096
    audio = engine.synthesize(text[:300], "en-Carter_man", seed=0)
    assert audio.size > 0 and np.isfinite(audio).all()
    assert len(engine.split(text)) >= 1
