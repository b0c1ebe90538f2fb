"""Memory-aware batching: a batch carries at most a budget of padded audio seconds, derived from GPU memory."""

from __future__ import annotations

import asyncio
import itertools
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from vibevoice_api.asr.engine import ASREngine, EngineConfig
from vibevoice_api.asr.engine import runtime as asr_runtime
from vibevoice_api.asr.engine.memory import GIB, audio_budget_seconds, fits, limits_table, padded_seconds
from vibevoice_api.asr.engine.tiny import write_tiny_asr_model

from tests.support import REPO

SR = 24000


def noise(seconds: float, seed: int) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    d = write_tiny_asr_model(tmp_path_factory.mktemp("budget") / "VibeVoice-ASR", layout="hf")
    eng = ASREngine.load(
        EngineConfig(
            model_dir=d,
            device="cpu",
            min_new_tokens=8,
            max_batch_size=4,
            max_batch_wait_ms=1500,
            batch_audio_seconds=10.0,
            longform_overlap_seconds=2.0,
        )
    )
    batches: list[list[float]] = []
    real = eng._generate

    def recording(batch, *args, **kwargs):
        batches.append([round(j.duration, 3) for j in batch])
        return real(batch, *args, **kwargs)

    eng._generate = recording
    eng.batches = batches
    yield eng
    eng.close()


def test_requests_are_batched_within_the_audio_budget(engine):
    engine.batches.clear()

    async def go():
        return await asyncio.gather(*(engine.transcribe(noise(4.0, i)) for i in range(4)))

    results = asyncio.run(go())
    assert all(results)  # every request transcribed
    assert sorted(d for b in engine.batches for d in b) == [4.0] * 4
    assert all(padded_seconds(b) <= 10.0 for b in engine.batches), engine.batches
    assert max(len(b) for b in engine.batches) == 2  # 2 x 4 s fit in 10 s, 3 x 4 s do not


def test_a_short_request_joins_but_a_long_one_waits_for_the_next_batch(engine):
    engine.batches.clear()

    async def go():
        return await asyncio.gather(
            engine.transcribe(noise(3.0, 5)), engine.transcribe(noise(2.0, 6)), engine.transcribe(noise(6.0, 7))
        )

    assert all(asyncio.run(go()))
    assert all(padded_seconds(b) <= 10.0 for b in engine.batches), engine.batches
    assert sorted(d for b in engine.batches for d in b) == [2.0, 3.0, 6.0]


def test_a_long_upload_is_cut_into_pieces_no_longer_than_the_budget(engine):
    engine.batches.clear()
    segments = asyncio.run(engine.transcribe(noise(25.0, 8)))
    assert segments and segments[-1].end <= 25.0 + 1e-6
    rows = [d for b in engine.batches for d in b]
    assert len(rows) >= 3 and max(rows) <= 10.0
    assert all(padded_seconds(b) <= 10.0 for b in engine.batches)
    assert engine.limits == {"batch_audio_seconds": 10.0, "max_batch_size": 4, "single_pass_seconds": 10.0}


def test_the_budget_fit_rule():
    assert fits([], 50.0, 10.0, 4)  # a row alone always goes (pieces are cut to the budget beforehand)
    assert fits([4.0], 4.0, 10.0, 4) and not fits([4.0, 4.0], 4.0, 10.0, 4)
    assert not fits([1.0], 6.0, 10.0, 4)  # padding: two rows of 6 s cost 12 s
    assert fits([1.0, 1.0, 1.0], 1.0, None, 4) and not fits([1.0] * 4, 1.0, None, 4)  # no budget: count only


def test_the_default_budget_follows_the_free_gpu_memory(monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (40 * GIB, 80 * GIB))
    loaded = SimpleNamespace(device=torch.device("cuda", 0))
    assert asr_runtime._derived_budget(loaded) == audio_budget_seconds(40 * GIB)
    assert asr_runtime._derived_budget(SimpleNamespace(device=torch.device("cpu"))) is None
    sizes = [audio_budget_seconds(g * GIB) for g in (4, 8, 24, 48, 80)]
    assert sizes == sorted(sizes) and sizes[0] >= 30.0
    # 60 minutes in one pass needs about 12 GB on top of the model (user reports: 22 GB loaded, 34 GB at 60 min)
    assert audio_budget_seconds(16 * GIB) >= 3600 and audio_budget_seconds(12 * GIB) < 3600


def test_deploy_readme_documents_the_limits_the_code_computes():
    text = (REPO / "deploy" / "README.md").read_text()
    lines = text.splitlines()
    start = lines.index(limits_table()[0])  # the table's header row
    table = list(itertools.takewhile(lambda line: line.startswith("|"), lines[start:]))
    assert table == limits_table()


@pytest.mark.parametrize(("env", "expected"), [("", None), ("600", 600.0)])
def test_the_budget_setting_is_auto_when_unset_or_empty(env, expected, monkeypatch):
    from vibevoice_api.asr.settings import ASRSettings

    monkeypatch.setenv("VIBEVOICE_ASR_BATCH_AUDIO_SECONDS", env)
    assert ASRSettings().asr_batch_audio_seconds == expected
