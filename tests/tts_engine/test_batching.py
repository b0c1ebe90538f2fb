"""Continuous batching: many listeners share one batch, and each hears what it would hear alone."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading

import httpx
import numpy as np
import pytest
import torch
from vibevoice_api.tts.engine import TTSEngine
from vibevoice_api.tts.engine.batch import Batch
from vibevoice_api.tts.engine.errors import EngineBusyError
from vibevoice_api.tts.engine.solver import BatchSolver
from websockets.sync.client import connect as ws_connect

from tests.conftest import service_env
from tests.support import BIN, assert_openai_error, free_port, running

from .test_engine import make, models  # noqa: F401 - the module-scoped tiny model fixture

TOLERANCE = 1e-4  # of full scale (audio is in [-1, 1])
# (text, voice, seed, cfg scale, steps): several voices, seeds, lengths and per-stream settings.
REQUESTS = [
    ("Hello there.", "en-Carter_man", 1, 1.5, 5),
    (
        "A longer sentence, spoken by someone else, with more words in it than the first one.",
        "en-Emma_woman",
        2,
        1.5,
        5,
    ),
    ("Guidance and steps differ here.", "en-Davis_man", 3, 2.5, 3),
    ("Four streams at once, each its own voice.", "in-Samuel_man", 4, 1.3, 8),
    ("Short.", "en-Carter_man", 5, 1.5, 5),
]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Single-threaded torch: deterministic kernels and no oversubscription of a shared machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def engine(models):  # noqa: F811
    eng = make(models, max_concurrency=8, max_queue=8)
    yield eng
    eng.close()


def alone(eng: TTSEngine, text: str, voice: str, seed: int, cfg: float, steps: int) -> np.ndarray:
    return eng.synthesize(text, voice, seed=seed, cfg_scale=cfg, steps=steps)


def assert_same_audio(batched: np.ndarray, solo: np.ndarray) -> None:
    assert batched.dtype == solo.dtype == np.float32
    assert batched.shape == solo.shape and solo.size > 0
    assert float(np.abs(batched - solo).max()) <= TOLERANCE


async def listen(eng: TTSEngine, text: str, voice: str, seed: int, cfg: float, steps: int) -> np.ndarray:
    chunks = [c async for c in eng.stream(text, voice, seed=seed, cfg_scale=cfg, steps=steps)]
    return np.concatenate(chunks)


async def until(eng: TTSEngine, active: int, waiting: int) -> None:
    """Wait until the engine has ``active`` requests in its batch and ``waiting`` queued (the bound is a hang guard)."""
    for _ in range(12000):
        s = eng.stats()
        if (s["active_streams"], s["queue_depth"]) == (active, waiting):
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"engine never reached {active} active / {waiting} waiting: {eng.stats()}")


def test_streams_in_one_batch_sound_as_alone(engine):
    solo = [alone(engine, *r) for r in REQUESTS]
    before = engine.stats()["steps"]

    async def together():
        return await asyncio.gather(*(listen(engine, *r) for r in REQUESTS))

    batched = asyncio.run(together())
    for b, s in zip(batched, solo, strict=True):
        assert_same_audio(b, s)
    sizes = [n for step, n in engine.step_sizes() if step > before]
    assert max(sizes) == len(REQUESTS)  # they really advanced together, not one after another


def test_streams_joining_midway_and_one_leaving_sound_as_alone(engine):
    first, *later = REQUESTS[:4]
    leaver = ("This listener hangs up after the first chunk of a long answer.", "en-Emma_woman", 9, 1.5, 5)
    solo = [alone(engine, *r) for r in (first, *later)]
    before = engine.stats()["steps"]

    async def scenario():
        results: dict[int, list[np.ndarray]] = {i: [] for i in range(4)}
        started = asyncio.Event()

        async def run(i, req):
            async for c in engine.stream(req[0], req[1], seed=req[2], cfg_scale=req[3], steps=req[4]):
                results[i].append(c)
                started.set()

        async def leave():
            gen = engine.stream(leaver[0], leaver[1], seed=leaver[2])
            await gen.__anext__()
            await gen.aclose()

        t0 = asyncio.create_task(run(0, first))
        await started.wait()  # the first stream is speaking: the others join a running batch
        await asyncio.gather(t0, leave(), *(run(i + 1, r) for i, r in enumerate(later)))
        return [np.concatenate(results[i]) for i in range(4)]

    batched = asyncio.run(scenario())
    for b, s in zip(batched, solo, strict=True):
        assert_same_audio(b, s)
    sizes = [n for step, n in engine.step_sizes() if step > before]
    assert sizes[0] == 1 and max(sizes) >= 3


def test_batch_rows_match_single_rows_exactly_enough_on_long_text(engine):
    """The batch core alone: a long utterance (many windows) with short ones joining and leaving."""
    long_text = " ".join(["Sentences keep coming, one after another, for a good while."] * 3)
    gen = torch.Generator
    solo_batch = Batch(engine.loaded, BatchSolver(engine.loaded.scheduler))
    ids = engine.tokenize(long_text)
    u = engine.utterance(ids, engine.preset("en-Carter_man"), 1.5, 5, gen().manual_seed(11))
    solo_batch.add(u)
    solo = []
    while len(solo_batch):
        for x in solo_batch.window():
            solo.append(x.take_audio())
    batch = Batch(engine.loaded, BatchSolver(engine.loaded.scheduler))
    main = engine.utterance(ids, engine.preset("en-Carter_man"), 1.5, 5, gen().manual_seed(11))
    batch.add(main)
    got, windows = [], 0
    while len(batch):
        if windows % 3 == 1:  # a short stream joins every third window
            batch.add(engine.utterance(engine.tokenize("Hi."), engine.preset("en-Emma_woman"), 1.5, 5, gen()))
        for x in batch.window():
            if x is main:
                got.append(x.take_audio())
        windows += 1
    assert_same_audio(np.concatenate(got), np.concatenate(solo))


def test_cancellation_frees_the_slot_at_the_next_step(models):  # noqa: F811
    eng = make(models, max_concurrency=2, max_queue=1, min_latents=3000)
    try:

        async def scenario():
            a = eng.stream("The first listener will leave.", "en-Carter_man", seed=0)
            b = eng.stream("The second listener stays a while.", "en-Emma_woman", seed=1)
            await a.__anext__()
            await b.__anext__()
            waiting = eng.stream("A third waits in the queue.", "en-Davis_man", seed=2)
            third = asyncio.ensure_future(waiting.__anext__())
            await until(eng, 2, 1)
            with pytest.raises(EngineBusyError):  # 2 speaking + 1 waiting: the 4th is refused
                await eng.stream("Busy?", "en-Carter_man").__anext__()
            await a.aclose()  # the client went away
            left_at = eng.stats()["steps"]
            await b.__anext__()
            await b.__anext__()
            first_of_third = await third  # the freed slot went to the waiting request
            await b.aclose()
            await waiting.aclose()
            return left_at, first_of_third

        left_at, first_of_third = asyncio.run(scenario())
        after = [(step, n) for step, n in eng.step_sizes() if step > left_at]
        # The step right after the client left no longer carries it.
        assert after and after[0][1] == 1
        assert first_of_third.size > 0
    finally:
        eng.close()


def test_queue_order_and_429_unchanged(models):  # noqa: F811
    eng = make(models, max_concurrency=1, max_queue=1)
    try:
        events: list[str] = []

        async def listen_as(name, text):
            async for _ in eng.stream(text, "en-Carter_man", seed=0):
                events.append(name)
            events.append(f"{name}-end")

        async def scenario():
            a = asyncio.create_task(listen_as("a", "First in line speaks first."))
            await until(eng, 1, 0)
            b = asyncio.create_task(listen_as("b", "Second waits its turn."))
            await until(eng, 1, 1)
            with pytest.raises(EngineBusyError) as e:
                await eng.stream("Third is refused.", "en-Carter_man").__anext__()
            await asyncio.gather(a, b)
            return e.value

        err = asyncio.run(scenario())
        assert err.status_code == 429
        assert events.index("a-end") < events.index("b")  # the batch limit holds: b waited for a
    finally:
        eng.close()


def test_seed_makes_streams_reproducible_and_default_is_random(engine):
    async def twice(seed):
        return await asyncio.gather(*(listen(engine, "Same seed.", "en-Carter_man", seed, 1.5, 5) for _ in range(2)))

    a, b = asyncio.run(twice(7))
    assert np.array_equal(a, b) or float(np.abs(a - b).max()) <= TOLERANCE
    c, d = asyncio.run(twice(None))
    assert float(np.abs(c - d).max()) > 1e-3


def test_compiled_step_sounds_as_eager(engine, models):  # noqa: F811
    """VIBEVOICE_TTS_COMPILE: the torch.compile'd diffusion head (dynamic batch) gives the eager audio."""
    compiled = make(models, compile=True, max_concurrency=4)
    try:
        requests = REQUESTS[:3]
        solo = [alone(engine, *r) for r in requests]

        async def together():
            return await asyncio.gather(*(listen(compiled, *r) for r in requests))

        for b, s in zip(asyncio.run(together()), solo, strict=True):
            assert_same_audio(b, s)
    finally:
        compiled.close()


# ---------------------------------------------------------------------------------------------
# Through the service: a realtime session and an SSE request share the batch.


def _batch_size_counts(url: str) -> tuple[float, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    le1 = re.search(r'^vibevoice_tts_batch_size_bucket\{le="1\.0"\} (\S+)$', text, re.M)
    count = re.search(r"^vibevoice_tts_batch_size_count (\S+)$", text, re.M)
    assert le1 and count, "batch size metric missing"
    return float(le1.group(1)), float(count.group(1))


@pytest.fixture(scope="module")
def service(tiny_models, tmp_path_factory):
    port = free_port()
    env = service_env(tiny_models, VIBEVOICE_TTS_MIN_LATENTS="120", OMP_NUM_THREADS="1")
    with running(
        [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path_factory.mktemp("tts") / "tts.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=240,
    ):
        yield f"http://127.0.0.1:{port}"


def test_realtime_session_and_sse_share_the_batch(service):
    url = service
    ws = ws_connect(url.replace("http", "ws") + "/v1/realtime?model=vibevoice-realtime", open_timeout=30)
    with ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "session.created"
        ws.send(
            json.dumps(
                {
                    "type": "response.create",
                    "response": {
                        "input": [{"type": "message", "content": [{"type": "input_text", "text": "Realtime talks."}]}]
                    },
                }
            )
        )
        while (ev := json.loads(ws.recv(timeout=60)))["type"] != "response.output_audio.delta":
            pass
        sse_audio = bytearray()
        sse_started = threading.Event()

        def sse():
            body = {"model": "vibevoice-realtime", "input": "And SSE too.", "voice": "emma", "stream_format": "sse"}
            with httpx.stream("POST", url + "/v1/audio/speech", json=body, timeout=120) as r:
                assert r.status_code == 200
                for line in r.iter_lines():
                    if line.startswith("data:"):
                        ev = json.loads(line[5:])
                        if ev["type"] == "speech.audio.delta":
                            sse_audio.extend(base64.b64decode(ev["audio"]))
                            sse_started.set()

        t = threading.Thread(target=sse)
        t.start()
        realtime_audio = 0
        while True:
            ev = json.loads(ws.recv(timeout=120))
            if ev["type"] == "response.output_audio.delta":
                realtime_audio += len(base64.b64decode(ev["delta"]))
            if ev["type"] == "response.done":
                assert ev["response"]["status"] == "completed"
                break
        t.join(timeout=120)
    assert sse_started.is_set() and len(sse_audio) > 0 and realtime_audio > 0
    single, steps = _batch_size_counts(url)
    assert steps > single  # some steps advanced the realtime and the SSE stream together
    text = httpx.get(url + "/metrics", timeout=10).text
    step_count = re.search(r"^vibevoice_tts_step_seconds_count (\S+)$", text, re.M)
    first_audio = re.search(r"^vibevoice_tts_engine_time_to_first_audio_seconds_count (\S+)$", text, re.M)
    assert step_count and float(step_count.group(1)) == steps  # one step time per step
    assert first_audio and float(first_audio.group(1)) >= 2
    assert re.search(r"^vibevoice_tts_batch_streams \S+$", text, re.M)


# ---------------------------------------------------------------------------------------------
# The seed extension over HTTP and on realtime sessions.


def _pcm(url: str, body: dict) -> np.ndarray:
    r = httpx.post(url + "/v1/audio/speech", json={**body, "response_format": "pcm"}, timeout=120)
    assert r.status_code == 200, r.text
    return np.frombuffer(r.content, dtype="<i2").astype(np.int32)


def _realtime_pcm(url: str, session: dict, response: dict) -> np.ndarray:
    ws_url = url.replace("http", "ws") + "/v1/realtime?model=vibevoice-realtime"
    with ws_connect(ws_url, open_timeout=30) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "session.created"
        ws.send(json.dumps({"type": "session.update", "session": session}))
        assert json.loads(ws.recv(timeout=30))["type"] == "session.updated"
        ws.send(json.dumps({"type": "response.create", "response": response}))
        audio = bytearray()
        while (ev := json.loads(ws.recv(timeout=120)))["type"] != "response.done":
            assert ev["type"] != "error", ev
            if ev["type"] == "response.output_audio.delta":
                audio.extend(base64.b64decode(ev["delta"]))
    return np.frombuffer(bytes(audio), dtype="<i2").astype(np.int32)


def test_seed_makes_http_and_realtime_speech_reproducible(service):
    body = {"model": "vibevoice-realtime", "input": "Seeded speech.", "voice": "carter", "seed": 1234}
    a, b = _pcm(service, body), _pcm(service, body)
    other = _pcm(service, {**body, "seed": 1235})
    assert a.size == b.size == other.size > 0
    assert int(np.abs(a - b).max()) <= 4  # 1e-4 of full scale is ~3 steps of 16-bit audio
    assert int(np.abs(a - other).max()) > 100
    said = {"type": "message", "content": [{"type": "input_text", "text": "Seeded speech."}]}
    rt = _realtime_pcm(service, {"voice": "carter", "seed": 1234}, {"input": [said]})
    assert rt.size == a.size and int(np.abs(rt - a).max()) <= 4  # the same seed speaks the same on both
    rt2 = _realtime_pcm(service, {"voice": "carter"}, {"input": [said], "seed": 1234})
    assert int(np.abs(rt2 - a).max()) <= 4


@pytest.mark.parametrize("seed", [-1, 2**63, "x", 1.5])
def test_bad_seed_is_a_clear_error(service, seed):
    r = httpx.post(service + "/v1/audio/speech", json={"input": "Hi.", "seed": seed}, timeout=60)
    assert r.status_code == 400
    err = assert_openai_error(r.json())
    assert err["param"] == "seed"


# ---------------------------------------------------------------------------------------------
# GPU failures: out of memory is retried alone, a broken GPU fails everyone and is reported.


def _failing_head(monkeypatch, eng: TTSEngine, when, exc: Exception) -> None:
    head = eng.loaded.model.prediction_head
    real = head.forward

    def forward(noisy, timesteps, condition):
        if when(noisy.shape[0] // 2):
            raise exc
        return real(noisy, timesteps, condition)

    monkeypatch.setattr(head, "forward", forward)


def test_out_of_memory_retries_unheard_streams_alone(models, monkeypatch):  # noqa: F811
    from vibevoice_api.shared.cuda_faults import GPUOutOfMemoryError

    eng = make(models, max_concurrency=2, max_queue=2)
    try:
        b_req = ("Joins the batch and is retried alone.", "en-Emma_woman", 21, 1.5, 5)
        solo_b = alone(eng, *b_req)
        fired = []
        _failing_head(
            monkeypatch,
            eng,
            lambda streams: streams > 1 and not fired and not fired.append(1),
            torch.OutOfMemoryError("CUDA out of memory."),
        )

        async def scenario():
            a = eng.stream("Already heard when the batch fails.", "en-Carter_man", seed=20)
            await a.__anext__()  # the first listener hears audio
            b = asyncio.ensure_future(listen(eng, *b_req))
            with pytest.raises(GPUOutOfMemoryError) as e:
                async for _ in a:
                    pass
            return e.value, await b

        err, got_b = asyncio.run(scenario())
        assert fired and err.status_code == 413 and err.code == "gpu_out_of_memory"
        assert_same_audio(got_b, solo_b)  # retried from its start, alone: the same audio
        assert eng.fatal_error is None
    finally:
        eng.close()


def test_fatal_cuda_error_fails_streams_and_refuses_new_ones(models, monkeypatch):  # noqa: F811
    from vibevoice_api.shared.cuda_faults import EngineFailedError

    eng = make(models)
    reasons: list[str] = []
    eng.on_fatal = reasons.append
    try:
        _failing_head(
            monkeypatch, eng, lambda streams: True, torch.AcceleratorError("CUDA error: device-side assert triggered")
        )

        async def scenario():
            with pytest.raises(EngineFailedError):
                await eng.stream("This will not work.", "en-Carter_man").__anext__()
            with pytest.raises(EngineFailedError) as e:
                await eng.stream("Nor this.", "en-Carter_man").__anext__()
            return e.value

        err = asyncio.run(scenario())
        assert err.status_code == 503
        assert eng.fatal_error and "device-side assert" in eng.fatal_error and reasons == [eng.fatal_error]
    finally:
        eng.close()
