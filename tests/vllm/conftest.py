"""A real vLLM server (stock vLLM, CPU build, its own cached venv under .cache/) for the vLLM backend tests."""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from deploy.local import vllm_server
from tests.support import free_port, stop_session, wait_http

MAX_MODEL_LEN = 32768  # the tiny model's own limit


@pytest.fixture(scope="session")
def vllm_python() -> Path:
    """vLLM's venv (installed on first use, then cached)."""
    return vllm_server.ensure_venv(gpu=False)


def write_model(target: Path, *, favour: str | None = None) -> Path:
    """A tiny VibeVoice-ASR (transformers layout, head dim 32) that never ends its answer by itself: its
    end-of-turn rows of the output layer are zero, so greedy decoding runs to the token budget we set, and a
    request lasts as long as a test needs. ``favour``: a word whose token always wins, at any temperature (a
    repetition loop that no retry escapes)."""
    from vibevoice_api.asr.engine.tiny import write_tiny_asr_model

    write_tiny_asr_model(target, layout="hf")
    from transformers import AutoConfig, AutoTokenizer

    cfg = AutoConfig.from_pretrained(target)
    text = cfg.text_config
    assert text.hidden_size // text.num_attention_heads >= 32, "vLLM's CPU attention needs head dims >= 32"
    tok = AutoTokenizer.from_pretrained(target)
    weights = load_file(str(target / "model.safetensors"))
    head = weights["language_model.lm_head.weight"]
    for t in ("<|im_end|>", "<|endoftext|>"):
        head[tok.convert_tokens_to_ids(t)] = 0.0
    if favour is not None:
        # Every token embedding carries +50 in dimension 0, which the residual stream keeps to the output
        # layer; only the favoured word's row reads it: that word wins by hundreds of logits, sampled or not.
        weights["language_model.model.embed_tokens.weight"][:, 0] = 50.0
        head.zero_()
        head[tok.encode(favour, add_special_tokens=False)[0], 0] = 50.0
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


class VLLMServer:
    """A vLLM OpenAI server process on a free port, restartable on the same port."""

    def __init__(self, python: Path, model_dir: Path, log_dir: Path) -> None:
        self.python = python
        self.model_dir = model_dir
        self.log_dir = log_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        log = open(self.log_dir / f"vllm-{self.starts}.log", "wb")  # noqa: SIM115 - the process writes it
        # Requests logged (ids only): the cancellation tests read vLLM's own word that a request was aborted.
        cmd = vllm_server.command(
            self.python,
            self.model_dir,
            port=self.port,
            max_model_len=MAX_MODEL_LEN,
            max_num_seqs=16,
            extra=["--enable-log-requests", "--max-log-len", "0"],
        )
        self.proc = subprocess.Popen(
            cmd, env=vllm_server.environment(threads=2), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_http(f"{self.url}/health", timeout=300, proc=self.proc)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"vLLM did not start: {exc}\n{self.log()[-4000:]}") from exc

    def log(self) -> str:
        return (self.log_dir / f"vllm-{self.starts}.log").read_text(errors="replace")

    def added(self) -> int:
        """Requests vLLM says it has taken (``--enable-log-requests``)."""
        return len(re.findall(r"Added request \S+\.", self.log()))

    def aborted(self) -> int:
        """Requests vLLM says it aborted because their client left."""
        return len(re.findall(r"Request \S+ aborted\.", self.log()))

    def stop(self) -> None:
        if self.proc is not None:
            stop_session(self.proc, 60)  # vLLM's engine core is a child process: the whole session goes
        self.proc = None

    def metric(self, name: str, **labels: str) -> float:
        """The sum of a Prometheus series of the server over the samples matching ``labels``."""
        text = httpx.get(f"{self.url}/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            m = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
            if m and all(f'{k}="{v}"' in m.group(1) for k, v in labels.items()):
                total += float(m.group(2))
        return total


@contextlib.contextmanager
def vllm_running(python: Path, model_dir: Path, log_dir: Path) -> Iterator[VLLMServer]:
    server = VLLMServer(python, model_dir, log_dir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def tone(seconds: float, freq: float, sr: int = 24000) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 1.5 * t))).astype(np.float32)


def wav_bytes(samples: np.ndarray, sr: int = 24000) -> bytes:
    import io
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return buf.getvalue()
