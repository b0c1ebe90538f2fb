"""Out of memory and broken GPUs, as a client of the ASR service sees them.

The tiny model runs on the CPU; its ``generate`` is wrapped to raise what CUDA raises
(``torch.OutOfMemoryError``, ``torch.AcceleratorError``) where a real GPU would.
"""

from __future__ import annotations

import gc
import io
import threading
import wave
import weakref

import httpx
import numpy as np
import openai
import pytest
import torch
from vibevoice_api.asr.app import build_app
from vibevoice_api.asr.engine import ASREngine, EngineConfig
from vibevoice_api.asr.engine.tiny import write_tiny_asr_model
from vibevoice_api.asr.settings import ASRSettings

from tests.support import ThreadServer, assert_openai_error

SR = 24000
LONG_SAMPLES = 4 * SR  # requests longer than this "do not fit" on our pretend GPU


def wav(seconds: float, seed: int) -> bytes:
    pcm = (0.1 * np.random.default_rng(seed).standard_normal(int(seconds * SR)) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SR)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_tiny_asr_model(tmp_path_factory.mktemp("faults") / "VibeVoice-ASR", layout="hf")


@pytest.fixture
def service(model_dir):
    """The ASR service on a fresh engine that batches two requests together."""
    engine = ASREngine.load(
        EngineConfig(model_dir=model_dir, device="cpu", min_new_tokens=16, max_batch_size=2, max_batch_wait_ms=3000)
    )
    settings = ASRSettings(model_dir=model_dir.parent, warmup=False, auto_download=False)
    server = ThreadServer(build_app(settings, engine=engine)).start()
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=120)
    yield engine, server, client
    server.stop()
    engine.close()


def transcribe_together(client, audios: list[bytes]) -> list[object]:
    """Send the uploads at once (they land in one batch); each result is a transcript or the raised error."""
    results: list[object] = [None] * len(audios)

    def send(i: int) -> None:
        try:
            results[i] = client.audio.transcriptions.create(model="whisper-1", file=(f"{i}.wav", audios[i]))
        except openai.APIStatusError as exc:
            results[i] = exc

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(audios))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return results


def test_out_of_memory_in_a_batch_heals_and_the_request_that_cannot_fit_is_told_what_to_lower(service):
    engine, server, client = service
    model = engine.loaded.model
    real_generate = model.generate
    calls: list[dict] = []
    refs: list[weakref.ref] = []  # the tensors of every failed call

    def generate(**kwargs):
        gc.collect()  # only what is still referenced survives this
        calls.append({"rows": kwargs["input_ids"].shape[0], "alive": sum(r() is not None for r in refs)})
        if kwargs["input_ids"].shape[0] > 1 or kwargs["input_values"].shape[-1] > LONG_SAMPLES:
            cache = torch.zeros(4096)  # what a real generate holds when the allocator gives up (KV cache etc.)
            refs.extend(weakref.ref(t) for t in (cache, kwargs["input_ids"], kwargs["input_values"]))
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real_generate(**kwargs)

    model.generate = generate
    try:
        short, long = transcribe_together(client, [wav(1.5, 1), wav(6.0, 2)])
    finally:
        del model.generate

    assert [c["rows"] for c in calls] == [2, 1, 1]  # the batch, then each request alone, once
    assert all(c["alive"] == 0 for c in calls[1:]), calls  # nothing of a failed call outlives it into a retry
    assert isinstance(short, openai.types.audio.Transcription) and short.text
    assert isinstance(long, openai.APIStatusError)
    assert long.status_code == 413
    err = assert_openai_error(long.response.json(), "invalid_request_error")
    assert err["code"] == "gpu_out_of_memory" and err["param"] == "file"
    assert "shorter audio" in err["message"] and "VIBEVOICE_ASR_MAX_SINGLE_PASS_SECONDS" in err["message"]

    ready = httpx.get(server.url + "/ready")
    assert ready.status_code == 200 and ready.json()["state"] == "ready"
    again = client.audio.transcriptions.create(model="whisper-1", file=("again.wav", wav(1.0, 3)))
    assert again.text


def test_a_fatal_cuda_error_turns_ready_to_503_with_the_reason(service):
    engine, server, client = service
    ready = httpx.get(server.url + "/ready").json()
    assert ready["runtime"]["attention"] == "sdpa" and ready["runtime"]["device"] == "cpu"

    def broken(**kwargs):
        raise torch.AcceleratorError("CUDA error: device-side assert triggered")

    engine.loaded.model.generate = broken
    first, second = transcribe_together(client, [wav(1.0, 4), wav(1.2, 5)])
    for failed in (first, second):
        assert isinstance(failed, openai.APIStatusError) and failed.status_code == 503
        assert assert_openai_error(failed.response.json())["code"] == "engine_failed"

    r = httpx.get(server.url + "/ready")
    assert r.status_code == 503
    body = r.json()
    assert body["state"] == "failed" and "device-side assert" in body["error"] and "restart" in body["error"]

    with pytest.raises(openai.APIStatusError) as later:  # nothing more reaches the broken GPU
        client.audio.transcriptions.create(model="whisper-1", file=("later.wav", wav(1.0, 6)))
    assert later.value.status_code == 503


def test_a_broken_gpu_stops_the_process_after_ready_reported_it():
    """/ready says why first; then the process stops itself so Kubernetes / Compose start a fresh one."""
    from vibevoice_api.shared.lifecycle import ModelHolder

    class Engine:
        fatal_error = None
        on_fatal = None

    stopped = threading.Event()
    holder = ModelHolder("vibevoice-asr", fatal_exit_seconds=0.2, terminate=stopped.set)
    engine = Engine()
    holder.start(lambda: engine)
    assert holder.wait(10) and holder.readiness()[0]
    assert engine.on_fatal is not None  # the holder listens for the engine's fatal errors

    engine.fatal_error = "a non-recoverable CUDA error broke this process (device-side assert)"
    engine.on_fatal(engine.fatal_error)
    ok, details = holder.readiness()
    assert not ok and details["state"] == "failed" and "device-side assert" in details["error"]
    assert stopped.wait(10)
