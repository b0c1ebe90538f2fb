"""Repetition-loop recovery on the vLLM backend: a tiny model that repeats one word at any temperature, served by
a real vLLM server. Every pass loops, is stopped where the loop is found (vLLM's request aborted), retried
from its last segment at temperature 0.2, 0.3, 0.4, and finally cut to one turn of the loop: the same outcome,
counted the same way, as on the transformers backend."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import service_env
from tests.support import BIN, free_port, running
from tests.vllm.conftest import VLLMServer, write_model

pytestmark = pytest.mark.timeout(900)
WORD = " text"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("loop-model") / "VibeVoice-ASR", favour=WORD)


@pytest.fixture(scope="module")
def services(vllm_python, model_dir, tmp_path_factory):
    """The same model behind both backends: {"hf": url, "vllm": url}."""
    logs = tmp_path_factory.mktemp("loop-logs")
    server = VLLMServer(vllm_python, model_dir, logs)
    server.start()
    ports = {"hf": free_port(), "vllm": free_port()}
    extra = {"hf": {}, "vllm": {"VIBEVOICE_ASR_BACKEND": "vllm", "VIBEVOICE_ASR_VLLM_URL": server.url}}

    def asr(name: str):
        return running(
            [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(ports[name])],
            service_env(model_dir.parent, **extra[name]),
            logs / f"asr-{name}.log",
            f"http://127.0.0.1:{ports[name]}/ready",
            timeout=300,
        )

    try:
        with asr("hf"), asr("vllm"):
            yield {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    finally:
        server.stop()


def _loops(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics", timeout=10).text
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^vibevoice_asr_repetition_loops_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    }


def test_a_loop_no_retry_escapes_is_cut_to_one_turn_on_both_backends(services, speech_wav):
    results = {}
    for backend, url in services.items():
        before = _loops(url)
        whole = httpx.post(
            url + "/v1/audio/transcriptions",
            files={"file": ("a.wav", speech_wav.read_bytes())},
            data={"model": "vibevoice-asr", "response_format": "verbose_json"},
            timeout=300,
        )
        streamed = httpx.post(
            url + "/v1/audio/transcriptions",
            files={"file": ("a.wav", speech_wav.read_bytes())},
            data={"model": "vibevoice-asr", "stream": "true"},
            timeout=300,
        )
        after = _loops(url)
        assert whole.status_code == 200 and streamed.status_code == 200
        # 2 requests x (3 retries + 1 cut)
        assert after["retried"] - before["retried"] == 6 and after["cut"] - before["cut"] == 2
        results[backend] = (whole.json()["text"], streamed.text.splitlines()[-2])
        assert whole.json()["text"] == WORD.strip()
    assert results["vllm"] == results["hf"]
