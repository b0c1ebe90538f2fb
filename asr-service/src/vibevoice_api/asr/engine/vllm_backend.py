"""Generation on a stock vLLM server (its Transformers backend serving the transformers-layout checkpoint).

Every row is one streamed ``/v1/chat/completions`` request: the prompt we build ourselves, split around the
audio placeholder, with the audio as an exact float32 WAV (vLLM's chat template for it, shipped in
``deploy/vllm/``, writes the messages out verbatim). Tokens come back as ids with their log-probabilities
(``return_tokens_as_token_ids``). A row the engine stops (client gone, repetition loop, budget) has its
HTTP stream closed, which makes vLLM abort the request and free its sequence slot at once.

vLLM batches the rows of all requests continuously, so the engine runs many rows at once here
(``workers``), one per call. A server that is down or restarting is a 503 with Retry-After, one that
says it is overloaded a 429.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import struct
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from vibevoice_api.shared.errors import APIError, InvalidRequestError, RateLimitError, ServiceUnavailableError

from .backend import GenerationRequest, TokenSink
from .prompt import AUDIO

log = logging.getLogger("vibevoice_api.asr.vllm")
AUDIO_HOP = 3200  # samples per audio token
POLL_SECONDS = 0.05  # how often a row waiting on vLLM checks whether it must stop


def wav_float32(audio: np.ndarray, sample_rate: int) -> bytes:
    """Mono IEEE-float WAV: the samples reach vLLM bit for bit (no 16-bit rounding)."""
    data = np.asarray(audio, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, sample_rate, sample_rate * 4, 4, 32)
    return b"".join(
        [
            b"RIFF",
            struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)),
            b"WAVE",
            b"fmt ",
            struct.pack("<I", len(fmt)),
            fmt,
            b"data",
            struct.pack("<I", len(data)),
            data,
        ]
    )


def chat_body(req: GenerationRequest, model: str, sample_rate: int, eos_ids: set[int]) -> dict[str, Any]:
    """The chat-completions request for one row."""
    before, sep, after = req.prompt.partition(AUDIO)
    if not sep:
        raise ValueError("the prompt has no audio placeholder")
    audio = base64.b64encode(wav_float32(req.audio, sample_rate)).decode()
    content = [
        {"type": "text", "text": before},
        {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}},
        {"type": "text", "text": after},
    ]
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": req.max_new_tokens,
        "temperature": req.temperature,
        "stream": True,
        "logprobs": True,
        "return_tokens_as_token_ids": True,
        "add_generation_prompt": False,
        "skip_special_tokens": False,
        "stop_token_ids": sorted(eos_ids),
    }
    if req.temperature > 0 and req.top_p:
        body["top_p"] = req.top_p
    if req.seed is not None:
        body["seed"] = req.seed
    return body


def _retry_after(response: httpx.Response, default: float) -> float:
    try:
        return max(1.0, float(response.headers.get("retry-after", default)))
    except ValueError:
        return default


def upstream_error(status: int, message: str, retry_after: float = 5) -> APIError:
    """What a client sees when vLLM answers ``status``."""
    if status == 429:
        return RateLimitError(f"The vLLM server is overloaded: {message}", retry_after=retry_after)
    if status == 400:
        # e.g. audio longer than the server's --max-model-len allows
        return InvalidRequestError(f"The vLLM server refused the audio: {message}", param="file", code="vllm_rejected")
    return ServiceUnavailableError(
        f"The vLLM server could not generate ({status}): {message}", code="backend_unavailable", retry_after=retry_after
    )


def unreachable(url: str, exc: BaseException) -> ServiceUnavailableError:
    return ServiceUnavailableError(
        f"The vLLM server at {url} is not reachable ({type(exc).__name__}); retry shortly.",
        code="backend_unavailable",
        retry_after=5,
    )


class VLLMBackend:
    name = "vllm"
    rows_per_call = 1

    def __init__(
        self,
        url: str,
        model: str,
        tokenizer: Any,
        eos_ids: set[int],
        *,
        sample_rate: int = 24000,
        workers: int = 32,
        api_key: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.model = model
        self.tokenizer = tokenizer
        self.eos_ids = eos_ids
        self.sample_rate = sample_rate
        self.workers = workers
        self.stats = {"requests": 0, "aborted": 0}
        self.max_model_len: int | None = None
        headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._timeout = httpx.Timeout(None, connect=connect_timeout)  # prefill of an hour of audio takes a while
        self._headers = headers
        # One event loop thread carries every stream; the engine's worker threads wait on it.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="vllm-client", daemon=True)
        self._thread.start()
        self._client: httpx.AsyncClient = self._call(self._make_client())

    async def _make_client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(max_connections=self.workers + 4, max_keepalive_connections=self.workers + 4)
        return httpx.AsyncClient(timeout=self._timeout, headers=self._headers, limits=limits)

    def _call(self, coro: Any, timeout: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # ---------------------------------------------------------------- health

    def health(self, timeout: float = 2.0) -> tuple[bool, str]:
        """Whether the vLLM server answers ``/health`` (and why not)."""
        try:
            r = self._call(self._client.get(f"{self.url}/health", timeout=timeout), timeout + 1)
        except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
            return False, f"unreachable ({type(exc).__name__})"
        return (r.status_code == 200), f"HTTP {r.status_code}"

    def served_models(self) -> dict[str, int | None]:
        """Model name → its context length (``--max-model-len``), as the server lists them."""
        r = self._call(self._client.get(f"{self.url}/v1/models", timeout=5), 6)
        r.raise_for_status()
        return {m["id"]: m.get("max_model_len") for m in r.json().get("data", [])}

    def wait_ready(self, deadline_seconds: float | None = None, stop: threading.Event | None = None) -> None:
        """Block until the server is healthy and serves the model (checked once, by name)."""
        started = time.monotonic()
        last = ""
        while True:
            ok, why = self.health()
            if ok:
                break
            if why != last:
                log.info("waiting for the vLLM server at %s: %s", self.url, why)
                last = why
            if deadline_seconds is not None and time.monotonic() - started > deadline_seconds:
                raise TimeoutError(f"the vLLM server at {self.url} was not ready after {deadline_seconds:.0f} s")
            if stop is not None and stop.wait(1.0):
                raise RuntimeError("stopped while waiting for vLLM")
            if stop is None:
                time.sleep(1.0)
        served = self.served_models()
        if self.model not in served:
            if len(served) != 1:
                raise RuntimeError(f"the vLLM server at {self.url} serves {sorted(served)}, not {self.model!r}")
            only = next(iter(served))
            log.warning("the vLLM server serves %r, not %r: using it", only, self.model)
            self.model = only
        self.max_model_len = served[self.model]
        log.info("vLLM server at %s ready, serving %s (context %s)", self.url, self.model, self.max_model_len)

    # ---------------------------------------------------------------- generation

    def generate(self, rows: Sequence[GenerationRequest], sink: TokenSink) -> None:
        async def run_all() -> None:
            await asyncio.gather(*(self._row(i, r, sink) for i, r in enumerate(rows)))

        self._call(run_all())

    async def _row(self, row: int, req: GenerationRequest, sink: TokenSink) -> None:
        body = chat_body(req, self.model, self.sample_rate, self.eos_ids)
        if self.max_model_len:
            # The server refuses max_tokens beyond its context: past that point our own budget check stops the row.
            prompt = len(self.tokenizer.encode(req.prompt, add_special_tokens=False))
            prompt += -(-req.audio.shape[0] // AUDIO_HOP)
            if prompt >= self.max_model_len:
                raise InvalidRequestError(
                    f"This audio needs about {prompt} tokens of context; the vLLM server allows {self.max_model_len} "
                    "(its --max-model-len). Send shorter audio, or lower VIBEVOICE_ASR_MAX_SINGLE_PASS_SECONDS.",
                    param="file",
                    code="audio_too_long",
                )
            if prompt + req.max_new_tokens + 8 > self.max_model_len:
                body.pop("max_tokens")
        stream = asyncio.ensure_future(self._stream(row, body, sink))
        try:
            while True:
                done, _ = await asyncio.wait({stream}, timeout=POLL_SECONDS)
                if done:
                    tokens = stream.result()  # raises what the stream raised
                    if tokens is not None:
                        self._closed(f"after {tokens} tokens")
                    return
                if sink.stopped(row):  # e.g. the client left during a long prefill
                    stream.cancel()  # closes the connection: vLLM aborts the request
                    with contextlib.suppress(asyncio.CancelledError):
                        await stream
                    self._closed("while waiting for vLLM")
                    return
        finally:
            if not stream.done():
                stream.cancel()

    def _closed(self, when: str) -> None:
        self.stats["aborted"] += 1
        log.info("row stopped %s: vLLM request closed", when)

    async def _stream(self, row: int, body: dict[str, Any], sink: TokenSink) -> int | None:
        """Feed the row's tokens to ``sink``; the tokens taken if the row was stopped (None: vLLM ended it)."""
        self.stats["requests"] += 1
        sink_tokens = 0
        try:
            # A client of its own per generation: leaving it closes its connection for certain (no pool keeps it
            # open), and a closed connection is how vLLM learns to abort the request.
            async with (
                httpx.AsyncClient(timeout=self._timeout, headers=self._headers) as client,
                client.stream("POST", f"{self.url}/v1/chat/completions", json=body) as r,
            ):
                if r.status_code != 200:
                    await r.aread()
                    raise upstream_error(r.status_code, _message(r), _retry_after(r, 5))
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return None
                    chunk = json.loads(data)
                    if "error" in chunk:  # vLLM reports a failure inside the stream
                        err = chunk["error"]
                        raise upstream_error(int(err.get("code") or 500), str(err.get("message", err)))
                    for choice in chunk.get("choices") or []:
                        for item in (choice.get("logprobs") or {}).get("content") or []:
                            token = item["token"]
                            sink.token(row, int(token.rsplit(":", 1)[1]), item.get("logprob"))
                            sink_tokens += 1
                        if sink.stopped(row):
                            return sink_tokens  # leaving closes the stream: vLLM aborts the rest
        except httpx.TransportError as exc:
            raise unreachable(self.url, exc) from exc
        return None

    def close(self) -> None:
        try:
            self._call(self._client.aclose(), 5)
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


def _message(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return r.text[:300] or r.reason_phrase
    err = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(err, dict):
        return str(err.get("message", err))[:300]
    return str(err)[:300]


def connect(
    model_dir: Path,
    url: str,
    model: str,
    *,
    workers: int = 32,
    api_key: str | None = None,
    wait_seconds: float | None = None,
) -> VLLMBackend:
    """A backend for the vLLM server at ``url``, once it is ready: tokens are decoded here with the
    checkpoint's own tokenizer (either layout), the end-of-turn ids come from its generation config."""
    from transformers import AutoTokenizer

    from .convert import find_tokenizer
    from .errors import ModelLoadError
    from .transformers_backend import eos_ids

    tok_dir = find_tokenizer(Path(model_dir))
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"Could not load the tokenizer from {tok_dir}: {exc}") from exc
    gen_file = Path(model_dir) / "generation_config.json"
    gen_eos = json.loads(gen_file.read_text()).get("eos_token_id") if gen_file.is_file() else None
    backend = VLLMBackend(url, model, tokenizer, eos_ids(tokenizer, gen_eos), workers=workers, api_key=api_key)
    try:
        backend.wait_ready(wait_seconds)
    except BaseException:
        backend.close()
        raise
    return backend
