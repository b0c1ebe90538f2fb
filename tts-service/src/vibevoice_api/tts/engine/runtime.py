"""The TTS engine: one model, one worker thread, every active utterance advancing in one batch.

Up to ``max_concurrency`` requests are in the batch at once (the batch limit); each engine step gives
every one of them its next speech latent in one batched pass of the model (see :mod:`.batch`), so
ten listeners cost little more than one on a GPU. Up to ``max_queue`` more wait; past that a request
is refused (429). A request joins between windows (within one window of arriving, never behind whole
utterances); each window's audio goes to its client as soon as it is decoded. A client that leaves
(closing the async generator) leaves the batch before the next step and frees its slot. Long text is
split at sentence boundaries into pieces the model handles well, spoken one after another into the
same stream (each piece restarts from the voice preset, as the reference does for every call).
Every request has its own voice, cfg scale, step count and random generator (``seed``), so its audio
is the same alone or batched.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import os
import re
import threading
import time
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import torch
from vibevoice_api.shared import cuda_faults

from . import metrics
from .batch import Batch, Utterance
from .errors import EngineBusyError, UnknownVoiceError, VoicePresetError
from .solver import BatchSolver
from .voices import VOICE_NAME, UnsafePresetError, VoiceInfo, VoicePreset, describe, load_preset, scan

if TYPE_CHECKING:
    from typing_extensions import Unpack

log = logging.getLogger("vibevoice_api.tts.engine")
SAMPLE_RATE = 24000
SENTENCE_END = re.compile(r"(?<=[.!?。！？;；])\s+|\n+")


@dataclass
class EngineConfig:
    model_dir: Path
    voices_dir: Path | None = None
    device: str = "auto"
    dtype: str | None = None
    attn_implementation: str | None = "auto"
    max_concurrency: int = 4
    max_queue: int = 16
    cfg_scale: float = 1.5
    ddpm_steps: int = 5
    max_piece_tokens: int = 400  # longer text is split at sentence ends into pieces of at most this many tokens
    latents_per_token: float = 8.0  # generation budget: a safety net well above natural speech (~2.5)
    min_latents: int = 30
    preset_cache: int = 8
    compile: bool = False  # torch.compile the diffusion head (see compile.py)


def prepare_text(text: str) -> str:
    """The reference demo's normalisation: typographic quotes to ASCII, outer whitespace removed."""
    return text.replace("’", "'").replace("“", '"').replace("”", '"').strip()


class StreamOptions(TypedDict, total=False):
    """How to speak one text (all optional)."""

    cfg_scale: float | None  # classifier-free guidance (None: the engine's setting)
    steps: int | None  # diffusion steps per latent (None: the engine's setting)
    seed: int | None  # reproducible sampling


@dataclass(eq=False)
class _Request:
    pieces: list[list[int]]
    preset: VoicePreset
    cfg_scale: float
    steps: int
    seed: int
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    cancelled: threading.Event = field(default_factory=threading.Event)
    utterance: Utterance | None = None  # the piece being spoken (None: joins at the next window)
    piece: int = 0
    arrived: float = field(default_factory=time.perf_counter)
    heard: bool = False
    generator: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        """From the first piece with a fresh generator (a retry speaks exactly what the first try would)."""
        self.generator, self.piece, self.utterance = new_generator(self.seed), 0, None


def new_seed(seed: int | None) -> int:
    return int(seed) if seed is not None else int.from_bytes(os.urandom(8), "little") >> 1


def new_generator(seed: int | None) -> torch.Generator:
    """A request's own random generator (CPU, like the reference's draws); a random seed when none."""
    return torch.Generator().manual_seed(new_seed(seed))


class TTSEngine:
    sample_rate = SAMPLE_RATE
    model_id = "vibevoice-realtime"

    def __init__(self, cfg: EngineConfig, loaded: Any) -> None:
        self.cfg = cfg
        self.loaded = loaded
        self.voices = scan(cfg.voices_dir)
        self._presets: collections.OrderedDict[str, VoicePreset] = collections.OrderedDict()
        self._preset_lock = threading.Lock()
        self._active: collections.deque[_Request] = collections.deque()
        self._waiting: collections.deque[_Request] = collections.deque()
        self._cond = threading.Condition()
        self._stop = False
        self._stats = {"windows": 0, "utterances": 0, "audio_seconds": 0.0, "busy_seconds": 0.0}
        self._steps = 0
        self.fatal_error: str | None = None  # a broken GPU: /ready reports it and the service must restart
        self.on_fatal: Callable[[str], None] | None = None  # set by the lifecycle: stops the process for a restart
        self._step_sizes: collections.deque[tuple[int, int]] = collections.deque(maxlen=4096)
        self._solver = BatchSolver(loaded.scheduler)
        self._compiled = None
        if cfg.compile:
            from .compile import compile_parts

            self._compiled = compile_parts(loaded)
        self._worker = threading.Thread(target=self._work, name="tts-worker", daemon=True)
        self._worker.start()
        if not self.voices:
            log.warning("no voice presets found in %s", cfg.voices_dir)

    @classmethod
    def load(cls, cfg: EngineConfig) -> TTSEngine:
        from .loader import load

        return cls(cfg, load(Path(cfg.model_dir), cfg.device, cfg.dtype, cfg.attn_implementation))

    # ---------------------------------------------------------------- voices

    def list_voices(self) -> list[VoiceInfo]:
        return [describe(v) for v in self.voices]

    def resolve_voice(self, name: str) -> str:
        """Preset id for ``en-Carter_man``, ``carter``, ``Carter``, a file stem; never a path."""
        raw = str(name).strip()
        valid = sorted(self.voices)
        if not raw or not VOICE_NAME.match(raw) or ".." in raw:
            raise UnknownVoiceError(raw[:80], valid)
        low = raw.lower()
        for v in self.voices:
            if v.lower() == low:
                return v
        short = [v for v in self.voices if describe(v).name.lower() == low]
        if short:
            english = [v for v in short if v.startswith("en-")]
            return (english or short)[0]
        raise UnknownVoiceError(raw, valid)

    def preset(self, voice_id: str) -> VoicePreset:
        with self._preset_lock:
            if voice_id in self._presets:
                self._presets.move_to_end(voice_id)
                return self._presets[voice_id]
        path = self.voices.get(voice_id)
        if path is None:
            raise UnknownVoiceError(voice_id, sorted(self.voices))
        try:
            preset = load_preset(path, voice_id)
        except UnsafePresetError as exc:
            log.error("refused voice preset %s (%s): %s", voice_id, path, exc)
            raise VoicePresetError(voice_id, str(exc)) from exc
        except Exception as exc:
            log.error("could not read voice preset %s (%s): %s", voice_id, path, exc)
            raise VoicePresetError(voice_id, "damaged file") from exc
        self._check_preset(preset)
        preset = preset.to(self.loaded.device, self.loaded.dtype)
        with self._preset_lock:
            self._presets[voice_id] = preset
            while len(self._presets) > self.cfg.preset_cache:
                self._presets.popitem(last=False)
        return preset

    def _check_preset(self, preset: VoicePreset) -> None:
        m = self.loaded.model
        layers = {
            "lm": m.cfg.lm_layers,
            "tts_lm": m.cfg.tts_layers,
            "neg_lm": m.cfg.lm_layers,
            "neg_tts_lm": m.cfg.tts_layers,
        }
        for s, n in layers.items():
            st = preset.streams[s]
            if len(st.keys) != n or st.last_hidden_state.shape[-1] != m.cfg.hidden_size:
                log.error(
                    "voice preset %s does not fit this model (stream %s: %d layers, hidden %d)",
                    preset.name,
                    s,
                    len(st.keys),
                    st.last_hidden_state.shape[-1],
                )
                raise VoicePresetError(preset.name, "made for a different model")

    # ---------------------------------------------------------------- text

    def tokenize(self, text: str) -> list[int]:
        return list(self.loaded.tokenizer.encode(prepare_text(text) + "\n", add_special_tokens=False))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenize(text))

    def split(self, text: str) -> list[list[int]]:
        """Token pieces: the whole text, or sentence groups of at most ``max_piece_tokens`` tokens."""
        ids = self.tokenize(text)
        if len(ids) <= self.cfg.max_piece_tokens:
            return [ids]
        pieces: list[list[int]] = []
        current = ""
        for sentence in (s for s in SENTENCE_END.split(prepare_text(text)) if s.strip()):
            candidate = f"{current} {sentence}".strip()
            if current and len(self.tokenize(candidate)) > self.cfg.max_piece_tokens:
                pieces.append(self.tokenize(current))
                current = sentence
            else:
                current = candidate
        if current:
            pieces.append(self.tokenize(current))
        out: list[list[int]] = []
        for p in pieces:  # a single sentence longer than the limit is cut at the limit
            out.extend(p[i : i + self.cfg.max_piece_tokens] for i in range(0, len(p), self.cfg.max_piece_tokens))
        return out

    # ---------------------------------------------------------------- generation

    def utterance(
        self, ids: list[int], preset: VoicePreset, cfg_scale: float, steps: int, generator: torch.Generator
    ) -> Utterance:
        budget = int(self.cfg.min_latents + self.cfg.latents_per_token * len(ids))
        return Utterance(ids, preset, cfg_scale, steps, generator, budget)

    def sampling(self, options: StreamOptions) -> tuple[float, int]:
        """The guidance scale and diffusion steps of a request (the engine's settings where it names none)."""
        if unknown := options.keys() - StreamOptions.__annotations__.keys():
            raise TypeError(f"unknown speech options: {', '.join(sorted(unknown))}")
        return options.get("cfg_scale") or self.cfg.cfg_scale, options.get("steps") or self.cfg.ddpm_steps

    def synthesize(self, text: str, voice_id: str, **options: Unpack[StreamOptions]) -> np.ndarray:
        """Whole waveform, synchronously, alone in a batch of its own in this thread (CLI, comparisons).

        ``seed`` seeds the request's generator; its draws are those of the reference demo after
        ``torch.manual_seed(seed)``.
        """
        cfg_scale, steps = self.sampling(options)
        preset = self.preset(voice_id)
        gen = new_generator(options.get("seed"))
        batch = Batch(self.loaded)  # its own solver: the worker thread may be using the engine's
        out = []
        for ids in self.split(text):
            batch.add(self.utterance(ids, preset, cfg_scale, steps, gen))
            while len(batch):
                for u in batch.window():
                    chunk = u.take_audio()
                    if chunk is not None:
                        out.append(chunk)
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    async def stream(self, text: str, voice_id: str, **options: Unpack[StreamOptions]) -> AsyncIterator[np.ndarray]:
        """Float32 chunks at 24 kHz as each speech window is decoded; ``seed`` makes them reproducible."""
        cfg_scale, steps = self.sampling(options)
        preset = await asyncio.to_thread(self.preset, voice_id)
        pieces = self.split(text)
        req = _Request(
            pieces,
            preset,
            cfg_scale,
            steps,
            new_seed(options.get("seed")),
            asyncio.get_running_loop(),
            asyncio.Queue(),
        )
        with self._cond:
            if self.fatal_error is not None:
                raise cuda_faults.EngineFailedError(self.fatal_error)
            if len(self._active) >= self.cfg.max_concurrency and len(self._waiting) >= self.cfg.max_queue:
                raise EngineBusyError(len(self._waiting))
            (self._active if len(self._active) < self.cfg.max_concurrency else self._waiting).append(req)
            self._cond.notify()
        try:
            while True:
                kind, payload = await req.out.get()
                if kind == "audio":
                    yield payload
                elif kind == "end":
                    return
                else:
                    raise payload
        finally:
            req.cancelled.set()
            with self._cond:
                self._cond.notify()

    def _new_batch(self) -> Batch:
        return Batch(self.loaded, self._solver, self._compiled)

    def _work(self) -> None:
        batch = self._new_batch()
        while True:
            with self._cond:
                while not self._stop:
                    self._drop_cancelled()
                    if self._active:
                        break
                    self._cond.wait(timeout=1.0)
                if self._stop:
                    return
                if self.fatal_error is not None:
                    broken = list(self._active) + list(self._waiting)
                    self._waiting.clear()
                else:
                    broken = []
                joining = [r for r in self._active if r.utterance is None]
            if broken:
                batch = self._new_batch()
                for req in broken:
                    self._finish(req, "error", cuda_faults.EngineFailedError(self.fatal_error or ""))
                continue
            self._leave(batch)
            for req in joining:
                self._join(batch, req)
            metrics.BATCH_STREAMS.set(len(batch))
            if not len(batch):
                continue
            failure = self._window(batch)
            if failure is not None:
                owners = [u.owner for u in batch.streams]
                batch = self._new_batch()  # the failed batch's caches go first
                self._recover(failure, owners)
            elif not len(batch):
                batch = self._new_batch()  # everyone left: give back the caches grown for them
            metrics.BATCH_STREAMS.set(len(batch))

    def _join(self, batch: Batch, req: _Request) -> None:
        req.utterance = self.utterance(req.pieces[req.piece], req.preset, req.cfg_scale, req.steps, req.generator)
        req.utterance.owner = req
        batch.add(req.utterance)

    def _window(self, batch: Batch) -> str | None:
        """One window of ``batch``, its audio delivered; the failure kind (cuda_faults) if it failed."""
        started = time.perf_counter()
        try:
            took = batch.window(before_step=functools.partial(self._before_step, batch), after_step=self._after_step)
        except Exception as exc:  # noqa: BLE001 - classified, reported to each stream
            kind = cuda_faults.classify(exc)
            # The traceback as text: a kept LogRecord with exc_info would pin the failed step's tensors.
            log.error("speech generation failed (%s): %s", kind, "".join(traceback.format_exception(exc)))
            if kind == cuda_faults.FATAL and self.fatal_error is None:
                self.fatal_error = cuda_faults.fatal_reason(exc)
                log.critical("TTS engine out of order: %s", self.fatal_error)
                if self.on_fatal is not None:
                    self.on_fatal(self.fatal_error)
            return kind
        self._stats["busy_seconds"] += time.perf_counter() - started
        for u in took:
            self._after_window(u)
        return None

    def _recover(self, kind: str, reqs: list[_Request]) -> None:
        """After a failed window: retry alone (from the start) the streams nobody has heard yet, fail the rest."""
        cuda_faults.release_memory()
        retry, fail = cuda_faults.after_failure(kind, [not r.heard for r in reqs])
        for i in fail:
            self._finish(reqs[i], "error", self._error(kind))
        for i in retry:
            self._run_alone(reqs[i])

    def _run_alone(self, req: _Request) -> None:
        req.restart()
        batch = self._new_batch()
        while True:
            with self._cond:
                if req.cancelled.is_set() and req in self._active:
                    self._active.remove(req)
                    self._admit()
                if req not in self._active:
                    return
            if req.utterance is None:
                self._join(batch, req)
            failure = self._window(batch)
            if failure is not None:
                batch = self._new_batch()
                cuda_faults.release_memory()
                self._finish(req, "error", self._error(failure))
                return

    def _error(self, kind: str) -> Exception:
        from vibevoice_api.shared.errors import InternalError

        if kind == cuda_faults.FATAL:
            return cuda_faults.EngineFailedError(self.fatal_error or "a CUDA error")
        if kind == cuda_faults.OOM:
            return cuda_faults.GPUOutOfMemoryError(
                "This speech did not fit in the GPU's free memory, even alone: send shorter input, or have the "
                "operator lower VIBEVOICE_MAX_CONCURRENCY.",
                param="input",
            )
        return InternalError("Speech generation failed.")

    def _after_window(self, u: Utterance) -> None:
        req: _Request = u.owner
        chunk = u.take_audio()
        if chunk is not None and not req.cancelled.is_set():
            self._stats["windows"] += 1
            self._stats["audio_seconds"] += chunk.shape[0] / SAMPLE_RATE
            if not req.heard:
                req.heard = True
                metrics.ENGINE_FIRST_AUDIO.observe(time.perf_counter() - req.arrived)
            self._deliver(req, "audio", chunk)
        if not u.finished:
            return
        req.piece += 1
        req.utterance = None  # the next piece, if any, joins at the next window
        if req.piece >= len(req.pieces):
            self._stats["utterances"] += 1
            self._finish(req, "end", None)

    def _finish(self, req: _Request, kind: str, payload: Any) -> None:
        self._deliver(req, kind, payload)
        with self._cond:
            if req in self._active:
                self._active.remove(req)
            self._admit()

    def _leave(self, batch: Batch) -> None:
        """Cancelled requests leave the batch now and free their slots."""
        gone = batch.drop(lambda u: u.owner.cancelled.is_set())
        if gone:
            with self._cond:
                for u in gone:
                    if u.owner in self._active:
                        self._active.remove(u.owner)
                self._admit()

    def _before_step(self, batch: Batch) -> None:
        self._steps += 1
        self._leave(batch)

    def _after_step(self, size: int, seconds: float) -> None:
        self._step_sizes.append((self._steps, size))
        metrics.BATCH_SIZE.observe(size)
        metrics.STEP_SECONDS.observe(seconds)

    def _admit(self) -> None:
        while len(self._active) < self.cfg.max_concurrency and self._waiting:
            self._active.append(self._waiting.popleft())

    def _drop_cancelled(self) -> None:
        for r in [r for r in self._waiting if r.cancelled.is_set()]:
            self._waiting.remove(r)
        for r in [r for r in self._active if r.cancelled.is_set() and r.utterance is None]:
            self._active.remove(r)
        self._admit()

    @staticmethod
    def _deliver(req: _Request, kind: str, payload: Any) -> None:
        try:
            req.loop.call_soon_threadsafe(req.out.put_nowait, (kind, payload))
        except RuntimeError:  # the client's event loop is gone: nobody is listening any more
            req.cancelled.set()

    # ---------------------------------------------------------------- ops

    def warmup(self) -> None:
        if not self.voices:
            return
        voice = next(iter(self.voices))
        try:
            preset = self.preset(voice)
        except VoicePresetError:
            return
        batch = Batch(self.loaded, self._solver, self._compiled)
        u = self.utterance(
            self.tokenize("Hello.")[:5], preset, self.cfg.cfg_scale, self.cfg.ddpm_steps, new_generator(0)
        )
        u.max_latents = 1
        batch.add(u)
        batch.window()

    def stats(self) -> dict[str, Any]:
        with self._cond:
            active, waiting = len(self._active), len(self._waiting)
        return {**self._stats, "steps": self._steps, "active_streams": active, "queue_depth": waiting}

    def step_sizes(self) -> list[tuple[int, int]]:
        """(step number, streams advanced) of the latest steps, oldest first."""
        return list(self._step_sizes)

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._worker.is_alive() and threading.current_thread() is not self._worker:
            self._worker.join(timeout=30)
