"""The ASR engine: one model, worker threads, dynamic batching, streaming segments, cancellation.

Requests wait in a bounded queue. The worker takes the oldest, waits up to ``max_batch_wait_ms`` for
more with the same sampling settings (up to ``max_batch_size``), pads them into one ``generate``
call (left-padded prompts, per-request audio padding masks) and streams each row's text through its
own incremental JSON parser, so segments reach their client while the batch is still running. A
client that goes away sets a flag that a per-row stopping criterion reads at the next token.

Generation itself is a :class:`~.backend.GenerationBackend`: transformers in this process (one worker,
rows padded together) or a vLLM server (many workers, one row each; vLLM batches them continuously).

A row caught in a repetition loop (see :mod:`.loops`) is stopped at once and queued again from the end
of its last complete segment, sampled at temperature 0.2, then 0.3, 0.4 (``loop_retries``), as
Microsoft's serving code does; when the retries are spent its text is cut where the loop began.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
from vibevoice_api.shared import cuda_faults
from vibevoice_api.shared.errors import APIError, InternalError, InvalidRequestError, ServiceUnavailableError

from .backend import GenerationBackend, GenerationRequest, TokenStep, fill_duration
from .errors import EngineBusyError
from .longform import Piece, Silences, SpeakerStitcher, pieces, stitch
from .loops import repeating_tail
from .memory import audio_budget_seconds, fits
from .parsing import Segment, SegmentParser
from .prompt import build_prompt, context_text, continuation
from .textstream import PieceCollector, TextPiece, attach

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("vibevoice_api.asr.engine")
SAMPLE_RATE = 24000
RETRY_SEED = 20260


@dataclass
class EngineConfig:
    model_dir: Path
    device: str = "auto"
    dtype: str | None = None
    attn_implementation: str | None = "auto"
    max_batch_size: int = 4
    # Padded seconds of audio one generate call may carry (rows x longest row); None: derived from the GPU's
    # free memory after loading (no limit on the CPU). Split pieces of long uploads are never longer either.
    batch_audio_seconds: float | None = None
    max_batch_wait_ms: float = 50.0
    max_queue: int = 32
    max_single_pass_seconds: float = 3600.0
    longform_overlap_seconds: float = 30.0
    tokens_per_second: float = 12.0  # generation budget: enough for dense speech plus the JSON around it
    min_new_tokens: int = 256
    max_new_tokens: int = 32768
    loop_detection: bool = True
    loop_retries: int = 3


AUDIO_HOP = 3200  # samples per audio token (the processor's expansion of the audio placeholder)


def shutting_down() -> ServiceUnavailableError:
    """What a request still in the engine hears when the engine closes."""
    return ServiceUnavailableError(
        "The ASR service is shutting down; retry shortly.", code="shutting_down", retry_after=5
    )


@dataclass
class Usage:
    """Tokens one transcription read and wrote, over all its generate calls (pieces, retries)."""

    audio_tokens: int = 0
    text_tokens: int = 0
    output_tokens: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, audio: int, text: int, output: int) -> None:
        with self._lock:
            self.audio_tokens += audio
            self.text_tokens += text
            self.output_tokens += output


class TranscribeOptions(TypedDict, total=False):
    """How to transcribe one audio (all optional)."""

    prompt: str | None  # context for the model (hotwords, names)
    language: str | list[str] | None  # ISO-639-1 hint(s)
    temperature: float  # 0: greedy
    task: str  # transcribe | translate
    usage: Usage | None  # counts the tokens read and written, when given
    silences: Silences | None  # where long audio may be cut (see longform.Silences)


@dataclass(frozen=True)
class _Plan:
    context: str | None  # the model's context text
    parts: list[Piece]  # the audio's pieces (one when it fits a single pass)
    temperature: float
    usage: Usage | None


@dataclass(eq=False)
class _Job:
    audio: np.ndarray
    context: str | None
    temperature: float
    loop: asyncio.AbstractEventLoop
    events: asyncio.Queue
    cancelled: threading.Event = field(default_factory=threading.Event)
    parser: SegmentParser = field(default_factory=SegmentParser)
    top_p: float | None = None
    attempt: int = 0  # loop recoveries so far
    prefix: str = ""  # text already written (up to a complete segment) that a retry continues from
    prefix_tokens: int = 0
    tokens: list[TokenStep] = field(default_factory=list)  # this attempt's tokens with their log-probabilities
    collector: PieceCollector = field(default_factory=PieceCollector)  # transcript text per step (textstream)
    usage: Usage | None = None

    @property
    def duration(self) -> float:
        return self.audio.shape[0] / SAMPLE_RATE

    @property
    def sampling(self) -> tuple[float, float | None]:
        return self.temperature, self.top_p

    def emit(self, kind: str, payload: Any) -> None:
        with contextlib.suppress(RuntimeError):  # the caller's event loop is closed: nobody is waiting
            self.loop.call_soon_threadsafe(self.events.put_nowait, (kind, payload))


class _RowStreamer:
    """The backend's :class:`~.backend.TokenSink`: receives each row's new tokens, feeds the row's parser,
    watches for loops and for the row's own token budget, and tells the backend which rows must stop."""

    def __init__(
        self,
        jobs: list[_Job],
        tokenizer: Any,
        eos_ids: set[int],
        budgets: list[int],
        detect_loops: bool,
        closing: threading.Event,
    ) -> None:
        self.jobs = jobs
        self.closing = closing  # the engine is shutting down: every row stops
        self.tok = tokenizer
        self.eos = eos_ids
        self.budgets = budgets
        self.detect_loops = detect_loops
        self.pending: list[list[int]] = [[] for _ in jobs]
        self.pending_lp: list[float | None] = [0.0 for _ in jobs]
        self.ids: list[list[int]] = [[] for _ in jobs]
        self.finished = [False] * len(jobs)
        self.halted = [False] * len(jobs)
        self.looped: list[tuple[int, int] | None] = [None] * len(jobs)
        for job in jobs:
            job.tokens = []

    def stopped(self, row: int) -> bool:
        return self.halted[row] or self.jobs[row].cancelled.is_set() or self.closing.is_set()

    def token(self, row: int, tid: int, logprob: float | None) -> None:
        if self.finished[row]:
            return
        if tid in self.eos:
            self.finished[row] = True
            self._flush(row)
            return
        self.ids[row].append(tid)
        self.jobs[row].tokens.append(TokenStep(tid, logprob))
        lp = self.pending_lp[row]
        self.pending_lp[row] = None if lp is None or logprob is None else lp + logprob
        if len(self.ids[row]) >= self.budgets[row]:
            self.finished[row] = self.halted[row] = True
        if self.detect_loops and (found := repeating_tail(self.ids[row])) is not None:
            self.looped[row] = found
            self.finished[row] = self.halted[row] = True
            self.pending[row].clear()  # the loop's text is discarded below, not parsed
            return
        self.pending[row].append(tid)
        text = self.tok.decode(self.pending[row], skip_special_tokens=False)
        if text.endswith("\ufffd"):
            return  # a multi-byte character is split across tokens: wait for the rest
        self._deliver(row, text)

    def _deliver(self, row: int, text: str) -> None:
        """The text of the pending step(s): transcript pieces and completed segments, in order."""
        job = self.jobs[row]
        items = job.collector.feed(text, self.pending_lp[row], tuple(self.pending[row]))
        self.pending[row].clear()
        self.pending_lp[row] = 0.0
        for kind, value in attach(items, job.parser.feed(text)):
            if kind == "text":
                job.emit("text", value)
            else:
                seg, pieces = value
                job.emit("seg", replace(seg, pieces=pieces))

    def _flush(self, row: int) -> None:
        if self.pending[row]:
            self._deliver(row, self.tok.decode(self.pending[row], skip_special_tokens=False))
        for piece in self.jobs[row].collector.flush():
            if isinstance(piece, TextPiece):
                self.jobs[row].emit("text", piece)

    def end(self) -> None:
        for row in range(len(self.jobs)):
            self._flush(row)


class ASREngine:
    sample_rate = SAMPLE_RATE
    model_id = "vibevoice-asr"

    def __init__(self, cfg: EngineConfig, loaded: Any = None, backend: GenerationBackend | None = None) -> None:
        from .transformers_backend import TransformersBackend

        self.cfg = cfg
        self.loaded = loaded  # the in-process model (transformers backend only)
        self.backend = backend if backend is not None else TransformersBackend(loaded, cfg.max_batch_size)
        self.layout = loaded.layout if loaded is not None else self.backend.name
        self.on_batch: Callable[[int], None] | None = None
        self.on_loop: Callable[[bool], None] | None = None  # called with whether the loop is retried
        self._queue: collections.deque[_Job] = collections.deque()
        self._cond = threading.Condition()
        # Set by close(): workers stop taking batches, submissions are refused, generation in flight stops at its
        # next token.
        self._closing = threading.Event()
        self._stats = {
            "batches": 0,
            "requests": 0,
            "audio_seconds": 0.0,
            "busy_seconds": 0.0,
            "last_batch_size": 0,
            "loops_detected": 0,
            "loop_retries": 0,
        }
        self._eos = self.backend.eos_ids
        self._stats_lock = threading.Lock()
        self.fatal_error: str | None = None  # a broken GPU: /ready reports it and the service must restart
        self.on_fatal: Callable[[str], None] | None = None  # set by the lifecycle: stops the process for a restart
        self.audio_budget = cfg.batch_audio_seconds or _derived_budget(loaded)
        self.single_pass_seconds = min(cfg.max_single_pass_seconds, self.audio_budget or cfg.max_single_pass_seconds)
        self.limits = {
            "batch_audio_seconds": round(self.audio_budget, 1) if self.audio_budget else None,
            "max_batch_size": cfg.max_batch_size,
            "single_pass_seconds": round(self.single_pass_seconds, 1),
        }
        log.info(
            "batching: up to %d requests and %s padded seconds of audio per call (%s); single pass up to %.0f s",
            cfg.max_batch_size,
            f"{self.audio_budget:.0f}" if self.audio_budget else "unlimited",
            "set by VIBEVOICE_ASR_BATCH_AUDIO_SECONDS" if cfg.batch_audio_seconds else "from the free GPU memory",
            self.single_pass_seconds,
        )
        self._workers = [
            threading.Thread(target=self._work, name=f"asr-worker-{i}", daemon=True)
            for i in range(max(1, self.backend.workers))
        ]
        for worker in self._workers:
            worker.start()

    @classmethod
    def load(cls, cfg: EngineConfig) -> ASREngine:
        from .loader import load

        loaded = load(Path(cfg.model_dir), cfg.device, cfg.dtype, cfg.attn_implementation)
        return cls(cfg, loaded)

    # ---------------------------------------------------------------- public API

    def warmup(self) -> None:
        rng = np.random.default_rng(0)
        audio = (0.05 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
        self._generate([_Job(audio, None, 0.0, _NullLoop(), _NullQueue())], max_new_tokens=4)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            depth = len(self._queue)
        busy = self._stats["busy_seconds"]
        return {
            **self._stats,
            "queue_depth": depth,
            "rtf": busy / self._stats["audio_seconds"] if self._stats["audio_seconds"] else None,
        }

    def close(self) -> None:
        # By now the server has waited out its grace period: what is still generating has nobody to answer
        # (a vLLM row stopped this way closes its stream, and vLLM aborts it).
        with self._cond:
            self._closing.set()
            self._cond.notify_all()
        self._fail_queued(shutting_down())
        for worker in self._workers:
            if worker.is_alive() and threading.current_thread() is not worker:
                worker.join(timeout=30)
        self.backend.close()

    async def transcribe(self, audio: np.ndarray, **options: Unpack[TranscribeOptions]) -> list[Segment]:
        plan = self._plan(audio, options)
        parts = plan.parts
        # All pieces are submitted together: a long recording fills a batch by itself.
        results = await asyncio.gather(
            *(self._collect(p.samples, plan.context, plan.temperature, plan.usage) for p in parts)
        )
        if len(parts) == 1:
            return results[0]
        return stitch([(p, [_shift(s, p.offset) for s in segs]) for p, segs in zip(parts, results, strict=True)])

    async def transcribe_stream(
        self, audio: np.ndarray, *, text: bool = False, **options: Unpack[TranscribeOptions]
    ) -> AsyncIterator[Segment | TextPiece]:
        """Segments as they complete; with ``text``, also the transcript's text as each step writes it
        (:class:`~.textstream.TextPiece`, before the segment it belongs to). Audio split into pieces gives
        segments only: a piece's text in the overlap it re-reads is only known to be kept once its segment
        has its time. ``silences``: where long audio may be cut (see :class:`~.longform.Silences`)."""
        plan = self._plan(audio, options)
        # aclosing: a consumer that stops early (client gone) cancels the piece's job now, not at garbage collection.
        if len(plan.parts) == 1:
            async with contextlib.aclosing(
                self._run(audio, plan.context, plan.temperature, text=text, usage=plan.usage)
            ) as items:
                async for item in items:
                    yield item
            return
        stitcher = SpeakerStitcher()
        for piece in plan.parts:
            stitcher.start_piece(piece)
            async with contextlib.aclosing(
                self._run(piece.samples, plan.context, plan.temperature, usage=plan.usage)
            ) as segs:
                async for seg in segs:
                    for ready in stitcher.feed(_shift(seg, piece.offset)):
                        yield ready
            for ready in stitcher.finish_piece():
                yield ready

    # ---------------------------------------------------------------- request side

    def _plan(self, audio: np.ndarray, options: TranscribeOptions) -> _Plan:
        """Validate the audio; the model's context text, the pieces to transcribe, the sampling and usage."""
        if unknown := options.keys() - TranscribeOptions.__annotations__.keys():
            raise TypeError(f"unknown transcription options: {', '.join(sorted(unknown))}")
        self._check(audio)
        parts = pieces(
            audio,
            SAMPLE_RATE,
            self.single_pass_seconds,
            self.cfg.longform_overlap_seconds,
            silences=options.get("silences"),
        )
        context = context_text(options.get("prompt"), options.get("language"), options.get("task", "transcribe"))
        return _Plan(context, parts, options.get("temperature", 0.0), options.get("usage"))

    def _check(self, audio: np.ndarray) -> None:
        # The duration limit is the decoder's (shared.audio.decode_audio): it stops reading a long upload early.
        if audio.ndim != 1 or audio.shape[0] == 0:
            raise InvalidRequestError("The audio contains no samples.", param="file", code="empty_audio")

    def _submit(self, job: _Job) -> None:
        if self.fatal_error is not None:
            raise cuda_faults.EngineFailedError(self.fatal_error)
        with self._cond:
            if self._closing.is_set():
                raise shutting_down()
            if len(self._queue) >= self.cfg.max_queue + self.cfg.max_batch_size:
                raise EngineBusyError(len(self._queue))
            self._queue.append(job)
            self._cond.notify()

    async def _run(
        self,
        audio: np.ndarray,
        ctx: str | None,
        temperature: float,
        *,
        text: bool = False,
        usage: Usage | None = None,
    ) -> AsyncIterator[Segment | TextPiece]:
        """Segments of one piece as they complete (and its text pieces, with ``text``); the fallback segment
        at the end if none parsed."""
        job = _Job(
            np.ascontiguousarray(audio, dtype=np.float32), ctx, temperature, asyncio.get_running_loop(), asyncio.Queue()
        )
        job.usage = usage
        self._submit(job)
        seen = 0
        try:
            while True:
                kind, payload = await job.events.get()
                if kind == "seg":
                    seen += 1
                    yield payload
                elif kind == "text":
                    if text:
                        yield payload
                elif kind == "done":
                    if not seen:
                        for seg in payload:
                            yield seg
                    return
                else:
                    raise payload
        finally:
            job.cancelled.set()

    async def _collect(
        self, audio: np.ndarray, ctx: str | None, temperature: float, usage: Usage | None = None
    ) -> list[Segment]:
        return [seg async for seg in self._run(audio, ctx, temperature, usage=usage)]

    # ---------------------------------------------------------------- worker side

    def _take_batch(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._closing.is_set():
                self._cond.wait(timeout=1.0)
            if self._closing.is_set():
                return None
            first = self._queue.popleft()
            batch = [first]
            deadline = time.monotonic() + self.cfg.max_batch_wait_ms / 1000
            while len(batch) < self.backend.rows_per_call:
                taken = [j.duration for j in batch]
                match = next(
                    (
                        j
                        for j in self._queue
                        if j.sampling == first.sampling
                        and fits(taken, j.duration, self.audio_budget, self.cfg.max_batch_size)
                    ),
                    None,
                )
                if match is not None:
                    self._queue.remove(match)
                    batch.append(match)
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(timeout=left)
                if self._closing.is_set():
                    break
        return [j for j in batch if not j.cancelled.is_set()]

    def _work(self) -> None:
        while True:
            batch = self._take_batch()
            if batch is None:
                return
            if batch:
                self._run_batch(batch)

    def _run_batch(self, batch: list[_Job]) -> None:
        """Generate a batch; after a failure, retry each request that has streamed nothing alone, once.

        The retries start only after the failed call's exception is gone (``_attempt`` returned), so its
        frames no longer hold the batch's tensors, and after the cached memory is released.
        """
        if self.fatal_error is not None:
            self._fail(batch, cuda_faults.FATAL)
            return
        written = [len(j.parser.text) for j in batch]
        kind = self._attempt(batch)
        if kind is None:
            return
        cuda_faults.release_memory()
        retry, fail = cuda_faults.after_failure(
            kind if isinstance(kind, str) else cuda_faults.OTHER,
            [len(j.parser.text) == n for j, n in zip(batch, written, strict=True)],
        )
        self._fail([batch[i] for i in fail], kind)
        if kind == cuda_faults.FATAL:
            self._fail_queued()
        untouched = [batch[i] for i in retry]
        if not untouched:
            return
        log.warning("a batch of %d failed (%s); retrying %d of its requests alone", len(batch), kind, len(untouched))
        for i, job in enumerate(untouched):
            if job.cancelled.is_set():
                continue
            solo = self._attempt([job])
            if solo is None:
                continue
            cuda_faults.release_memory()
            if solo == cuda_faults.FATAL:
                self._fail(untouched[i:], solo)
                self._fail_queued()
                return
            self._fail([job], solo)

    def _attempt(self, batch: list[_Job]) -> str | APIError | None:
        """``_generate``; on failure the kind of failure (see :mod:`cuda_faults`), logged with its traceback.

        The traceback is logged as text: a log record keeping ``exc_info`` would keep the tensors alive.
        """
        try:
            self._generate(batch)
        except APIError as exc:  # the backend says why (e.g. vLLM down or overloaded): the client hears it
            log.warning("generation failed for a batch of %d: %s", len(batch), exc.message)
            return exc
        except Exception as exc:  # noqa: BLE001 - every failure is classified, logged and reported
            kind = cuda_faults.classify(exc)
            trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            log.error("generation failed for a batch of %d (%s): %s", len(batch), kind, trace)
            if kind == cuda_faults.FATAL:
                self.fatal_error = cuda_faults.fatal_reason(exc)
                log.critical("ASR engine out of order: %s", self.fatal_error)
                if self.on_fatal is not None:
                    self.on_fatal(self.fatal_error)
            return kind
        return None

    def _fail(self, batch: list[_Job], kind: str | APIError) -> None:
        for job in batch:
            job.emit("error", self._error(job, kind))

    def _fail_queued(self, kind: str | APIError = cuda_faults.FATAL) -> None:
        with self._cond:
            queued = list(self._queue)
            self._queue.clear()
        self._fail(queued, kind)

    def _error(self, job: _Job, kind: str | APIError) -> Exception:
        if isinstance(kind, APIError):
            return kind
        if kind == cuda_faults.FATAL:
            return cuda_faults.EngineFailedError(self.fatal_error or "the GPU failed")
        if kind == cuda_faults.OOM:
            minutes = job.duration / 60
            return cuda_faults.GPUOutOfMemoryError(
                f"This audio ({minutes:.1f} min in one pass) did not fit in the GPU's free memory, even alone. "
                "Send shorter audio, or have the operator lower VIBEVOICE_ASR_MAX_SINGLE_PASS_SECONDS "
                f"(now {self.single_pass_seconds:.0f}) or VIBEVOICE_ASR_BATCH_AUDIO_SECONDS so long audio is "
                "transcribed in smaller pieces.",
                param="file",
            )
        return InternalError("Transcription failed inside the model; see the server log.")

    def _max_new_tokens(self, duration: float) -> int:
        budget = int(self.cfg.min_new_tokens + self.cfg.tokens_per_second * duration)
        return max(1, min(self.cfg.max_new_tokens, budget))

    def _generate(self, batch: list[_Job], max_new_tokens: int | None = None) -> None:
        started = time.perf_counter()
        # A retry may write what the discarded attempt had left to write: the budget counts kept text only.
        budgets = [max_new_tokens or max(1, self._max_new_tokens(j.duration) - j.prefix_tokens) for j in batch]
        temperature, top_p = batch[0].sampling
        seed = RETRY_SEED + batch[0].attempt if batch[0].attempt else None  # a recovered transcript is reproducible
        rows = [
            GenerationRequest(
                prompt=fill_duration(build_prompt(j.context), j.duration) + j.prefix,
                audio=j.audio,
                max_new_tokens=budget,
                temperature=temperature,
                top_p=top_p,
                seed=seed,
            )
            for j, budget in zip(batch, budgets, strict=True)
        ]
        tokenizer = self.backend.tokenizer
        streamer = _RowStreamer(batch, tokenizer, self._eos, budgets, self.cfg.loop_detection, self._closing)
        if self.on_batch is not None:
            self.on_batch(len(batch))
        self.backend.generate(rows, streamer)
        streamer.end()
        for job, row in zip(batch, rows, strict=True):
            if job.usage is not None:
                # Input: the audio placeholder's expansion and every other prompt token; output: tokens written.
                prompt_tokens = len(tokenizer.encode(row.prompt, add_special_tokens=False))
                job.usage.add(-(-job.audio.shape[0] // AUDIO_HOP), max(0, prompt_tokens - 1), len(job.tokens))
        elapsed = time.perf_counter() - started
        first_pass = [j for j in batch if j.attempt == 0]
        with self._stats_lock:
            self._stats["batches"] += 1
            self._stats["requests"] += len(first_pass)
            self._stats["last_batch_size"] = len(batch)
            self._stats["audio_seconds"] += sum(j.duration for j in first_pass)
            self._stats["busy_seconds"] += elapsed
        for row, job in enumerate(batch):
            if self._closing.is_set() and not streamer.finished[row]:  # stopped by close(): no truncated text
                job.emit("error", shutting_down())
                continue
            looped = streamer.looped[row]
            if looped is not None and not job.cancelled.is_set():
                with self._stats_lock:
                    self._stats["loops_detected"] += 1
                retried = self._retry(job)
                if self.on_loop is not None:
                    self.on_loop(retried)
                if retried:
                    continue
                # Retries spent: keep the text up to the loop and one turn of it.
                start, period = looped
                job.parser.rewind(len(job.prefix) + len(tokenizer.decode(streamer.ids[row][: start + period])))
            job.emit("done", _final(job))

    def _retry(self, job: _Job) -> bool:
        """Queue a looping job again, from its last complete segment, sampled a little hotter."""
        if job.attempt >= self.cfg.loop_retries:
            return False
        job.attempt += 1
        job.parser.rewind_to_last_segment()
        job.prefix = continuation(job.parser.text)
        job.parser.restart_from(job.prefix)
        job.collector = PieceCollector(job.prefix)
        job.prefix_tokens = len(self.backend.tokenizer.encode(job.prefix, add_special_tokens=False))
        job.temperature = max(job.temperature, 0.1 + 0.1 * job.attempt)
        job.top_p = 0.95
        with self._stats_lock:
            self._stats["loop_retries"] += 1
        log.info(
            "repetition loop; retry %d at temperature %.1f from %d complete segments",
            job.attempt,
            job.temperature,
            len(job.parser.segments),
        )
        with self._cond:
            self._queue.appendleft(job)  # already admitted: it goes first and is never refused
            self._cond.notify()
        return True


def _derived_budget(loaded: Any) -> float | None:
    """The audio budget from the GPU memory free after loading; None (count-only batching) off the GPU."""
    device = getattr(loaded, "device", None)
    if getattr(device, "type", None) != "cuda":
        return None
    import torch

    free, total = torch.cuda.mem_get_info(device)
    budget = audio_budget_seconds(free)
    log.info("GPU memory: %.1f GiB free of %.1f GiB after loading", free / 1024**3, total / 1024**3)
    return budget


def _final(job: _Job) -> list[Segment]:
    """The row's segments at its end; the parser's fallback (all of the output as text) with its pieces."""
    segments = job.parser.finish(job.duration)
    if job.parser.segments:
        return segments
    return [replace(s, pieces=job.collector.fallback(s.text)) for s in segments]


def _shift(seg: Segment, offset: float) -> Segment:
    if not offset:
        return seg
    return replace(seg, start=seg.start + offset, end=seg.end + offset)


class _NullLoop:
    def call_soon_threadsafe(self, *args: Any) -> None:
        pass


class _NullQueue:
    def put_nowait(self, item: Any) -> None:
        pass
