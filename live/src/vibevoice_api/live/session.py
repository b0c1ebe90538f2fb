"""One live session: the OpenAI Realtime protocol (GA event names) over the ASR and TTS services.

Two session types share this class:

* ``transcription``: input audio → server VAD (or client commits) → items → streamed transcripts.
* ``realtime`` (voice calls): the same input side; having no LLM, a response to a user turn is a call of
  the session's chat tool (Open WebUI's ``generate_chat_completion``) with the transcript, and a
  response after a ``function_call_output`` speaks the answer through the TTS service.

Everything a session starts (VAD work, ASR and TTS jobs) is a task of the session and is cancelled
when it ends; buffers, items and pending jobs are bounded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from vibevoice_api.shared.cancel import cancel_and_wait, within

from . import metrics
from .audio import SampleBuffer, to_vad_rate, wav_bytes
from .names import matches, voice_known
from .protocol import (
    LOGPROBS_INCLUDE,
    ProtocolError,
    SessionConfig,
    answer_of,
    apply_update,
    new_id,
    pick_tool,
    say_this,
    sentence_groups,
)
from .settings import LiveSettings
from .upstream import Services, UpstreamError
from .vad import FRAME_MS, Segmenter, Started, Stopped, VADPool

log = logging.getLogger("vibevoice_api.live.session")

MIN_COMMIT_MS = 100
AUDIO_EVENT_BYTES = 48000  # 1 s of PCM16 24 kHz per delta: ~64 KiB base64, far under Open WebUI's 512 KiB


class SessionEnd(Exception):
    """Stop the session after telling the client why."""


@dataclass
class Response:
    id: str
    task: asyncio.Task[None] | None = None
    item: dict[str, Any] | None = None
    metadata: Any = None
    conversation: bool = True
    audio_bytes: int = 0
    done: bool = False


@dataclass
class Turn:
    """A committed user audio item and its transcription job."""

    item: dict[str, Any]
    task: asyncio.Task[None] | None = None
    transcript: str | None = None
    failed: bool = False
    finished: asyncio.Event = field(default_factory=asyncio.Event)


class Session:
    def __init__(
        self,
        ws: WebSocket,
        settings: LiveSettings,
        services: Services,
        vad_pool: VADPool,
        *,
        session_type: str,
        model: str,
    ) -> None:
        self.ws = ws
        self.settings = settings
        self.services = services
        self.vad_pool = vad_pool
        self.id = new_id("sess")
        self.started = time.monotonic()
        self.expires_at = int(time.time() + settings.live_max_session_seconds)
        self.cfg = SessionConfig(type=session_type, model=model, voice=settings.live_default_voice)
        self.cfg.transcription_model = settings.live_asr_model
        self._send_lock = asyncio.Lock()
        # input side
        self.buffer = SampleBuffer()
        self.base_ms = 0.0  # session audio time at sample index 0 of the current format
        self.vad_model: Any = None
        self.segmenter: Segmenter | None = None
        self.vad_residual = np.zeros(0, np.int16)
        self.vad_pos = 0  # absolute sample index of the residual's first sample
        self.speech_item: str | None = None
        self.speech_from = 0
        self.idle_from = 0  # sample index where the current silence began (idle_timeout_ms)
        # conversation
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.turns: dict[str, Turn] = {}
        self.response: Response | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.last_event = time.monotonic()
        self.upstream_headers = services.auth_for(ws.headers.get("authorization"))

    # ------------------------------------------------------------------ sending

    async def send(self, event: dict[str, Any]) -> None:
        event = {"event_id": new_id("event"), **event}
        data = json.dumps(event, ensure_ascii=False)
        async with self._send_lock:
            if self.ws.application_state != WebSocketState.CONNECTED:
                return
            try:
                async with within(self.settings.live_send_timeout_seconds):
                    await self.ws.send_text(data)
            except TimeoutError:
                metrics.ERRORS.labels("slow_client").inc()
                log.warning(
                    "session %s: client did not read for %.0fs; closing",
                    self.id,
                    self.settings.live_send_timeout_seconds,
                )
                with contextlib.suppress(Exception):
                    await self.ws.close(code=1008, reason="client too slow")
                raise SessionEnd from None
        metrics.EVENTS_OUT.labels(event["type"]).inc()

    async def error(
        self,
        message: str,
        *,
        code: str | None,
        param: str | None = None,
        type_: str = "invalid_request_error",
        event_id: str | None = None,
    ) -> None:
        metrics.ERRORS.labels(code or "none").inc()
        await self.send(
            {
                "type": "error",
                "error": {"type": type_, "code": code, "message": message, "param": param, "event_id": event_id},
            }
        )

    def spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def session_event(self, kind: str) -> dict[str, Any]:
        return {"type": kind, "session": self.cfg.public(self.id, self.expires_at)}

    # ------------------------------------------------------------------ main loop

    async def run(self) -> None:
        await self.send(self.session_event("session.created"))
        max_event = self.settings.live_max_event_kb * 1024
        try:
            while True:
                msg = await self._receive()
                if msg is None:
                    return
                self.last_event = time.monotonic()
                if msg.get("bytes") is not None:
                    await self.error("Binary frames are not supported: send JSON text events.", code="invalid_event")
                    continue
                raw = msg.get("text") or ""
                if len(raw) > max_event:
                    await self.error(
                        f"Event of {len(raw)} bytes exceeds the limit of {max_event} bytes.", code="event_too_large"
                    )
                    continue
                try:
                    event = json.loads(raw)
                except ValueError:
                    await self.error("The event is not valid JSON.", code="invalid_json")
                    continue
                if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                    await self.error("Events must be JSON objects with a string 'type'.", code="invalid_event")
                    continue
                eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
                metrics.EVENTS_IN.labels(event["type"] if event["type"] in HANDLERS else "unknown").inc()
                handler = HANDLERS.get(event["type"])
                try:
                    if handler is None:
                        raise ProtocolError(
                            f"Invalid value: {event['type'][:100]!r} is not a client event type this server supports.",
                            param="type",
                        )
                    await handler(self, event)
                except ProtocolError as exc:
                    await self.error(exc.message, code=exc.code, param=exc.param, event_id=eid)
                except (WebSocketDisconnect, SessionEnd, asyncio.CancelledError):
                    raise
                except Exception:  # a bug must not end the session without a word
                    log.exception("session %s: %s failed", self.id, event["type"])
                    await self.error(
                        "The server had an error while processing this event.",
                        code="internal_error",
                        type_="server_error",
                        event_id=eid,
                    )
        except (WebSocketDisconnect, SessionEnd):
            return
        except RuntimeError:
            # Starlette raises RuntimeError when the socket is gone mid-receive.
            return
        finally:
            await self.close()

    async def _receive(self) -> dict[str, Any] | None:
        """The next client frame, or None once the client left or the session ran out of time."""
        while True:
            now = time.monotonic()
            left = self.settings.live_max_session_seconds - (now - self.started)
            idle_left = self.settings.live_idle_timeout_seconds - (now - self.last_event)
            if left <= 0:
                await self.error(
                    f"Your session hit the maximum duration of {self.settings.live_max_session_seconds:.0f} seconds.",
                    code="session_expired",
                )
                await self.ws.close(code=1000)
                return None
            if idle_left <= 0:
                if self.busy():
                    self.last_event = now  # jobs still running for the client: not idle
                    continue
                await self.error(
                    f"The session was idle for {self.settings.live_idle_timeout_seconds:.0f} seconds and was closed.",
                    code="session_idle_timeout",
                )
                await self.ws.close(code=1000)
                return None
            try:
                msg = await asyncio.wait_for(self.ws.receive(), timeout=min(left, idle_left))
            except asyncio.TimeoutError:
                continue
            if msg["type"] == "websocket.disconnect":
                return None
            return msg

    def busy(self) -> bool:
        return any(not t.done() for t in self.tasks)

    async def close(self) -> None:
        """Cancel every job of the session and give the VAD model back."""
        tasks = list(self.tasks)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(Exception):
                await cancel_and_wait(t)
        if self.vad_model is not None:
            self.vad_pool.release(self.vad_model)
            self.vad_model = None
        self.buffer.clear()

    # ------------------------------------------------------------------ session.update

    async def on_session_update(self, event: dict[str, Any]) -> None:
        await self._update(event, legacy=False)

    async def on_transcription_session_update(self, event: dict[str, Any]) -> None:
        await self._update(event, legacy=True)

    async def _update(self, event: dict[str, Any], *, legacy: bool) -> None:
        new = apply_update(
            self.cfg,
            event.get("session"),
            transcription_patterns=self.settings.live_transcription_models,
            legacy_transcription=legacy,
        )
        if new.type != self.cfg.type and (self.items or len(self.buffer) or self.response):
            raise ProtocolError("The session type cannot change once audio or items exist.", param="session.type")
        if new.voice != self.cfg.voice and new.type == "realtime":
            presets = await self.services.voices(self.upstream_headers)
            if presets is not None and not voice_known(new.voice, presets):
                raise ProtocolError(
                    f"Unknown voice {new.voice!r}: use an OpenAI voice name or a preset of GET /v1/audio/voices.",
                    param="session.audio.output.voice",
                )
        if new.input_format != self.cfg.input_format:
            self._reset_input(new)
        elif (new.vad is None) != (self.cfg.vad is None) or (
            new.vad and self.segmenter and new.vad != self.segmenter.cfg
        ):
            self._reset_vad()
        self.cfg = new
        if self.cfg.vad is not None and self.segmenter is not None:
            self.segmenter.cfg = self.cfg.vad
        await self.send(self.session_event("transcription_session.updated" if legacy else "session.updated"))

    def _reset_input(self, new: SessionConfig) -> None:
        """A new input format: session audio time goes on, the buffer and VAD state start over."""
        self.base_ms = self.ms(self.buffer.end)
        self.buffer = SampleBuffer()
        self._reset_vad()
        self.idle_from = 0

    def _reset_vad(self) -> None:
        self.segmenter = None
        self.speech_item = None
        self.vad_residual = np.zeros(0, np.int16)
        self.vad_pos = self.buffer.end
        self.idle_from = self.buffer.end
        if self.vad_model is not None:
            self.vad_model.reset_states()

    def ms(self, index: int) -> int:
        """Session audio time (ms) of an absolute sample index of the current input format."""
        return int(round(self.base_ms + index * 1000 / self.cfg.input_format.rate))

    def index(self, ms: int) -> int:
        return int(round((ms - self.base_ms) * self.cfg.input_format.rate / 1000))

    # ------------------------------------------------------------------ input audio

    async def on_append(self, event: dict[str, Any]) -> None:
        audio = event.get("audio")
        if not isinstance(audio, str):
            raise ProtocolError("'audio' must be a base64 string.", param="audio", code="invalid_value")
        limit = self.settings.live_max_append_kb * 1024
        if len(audio) > limit * 4 // 3 + 4:
            raise ProtocolError(
                f"One append may carry at most {limit} bytes of audio.", param="audio", code="audio_too_large"
            )
        try:
            data = base64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError):
            raise ProtocolError("'audio' is not valid base64.", param="audio", code="invalid_base64") from None
        fmt = self.cfg.input_format
        if len(data) % fmt.bytes_per_sample:
            raise ProtocolError(
                f"{fmt.type} audio must be whole {fmt.bytes_per_sample}-byte samples (got {len(data)} bytes).",
                param="audio",
                code="invalid_audio_length",
            )
        if not data:
            return
        samples = fmt.decode(data)
        max_samples = int(self.settings.live_max_buffer_seconds * fmt.rate)
        if len(self.buffer) + samples.size > max_samples:
            raise ProtocolError(
                f"The input audio buffer is full ({self.settings.live_max_buffer_seconds:.0f} s): commit or clear it.",
                param="audio",
                code="input_audio_buffer_full",
            )
        self.buffer.append(samples)
        if self.cfg.vad is not None:
            await self._run_vad(samples)

    async def _run_vad(self, samples: np.ndarray) -> None:
        fmt = self.cfg.input_format
        frame = fmt.rate * FRAME_MS // 1000
        pending = np.concatenate([self.vad_residual, samples]) if self.vad_residual.size else samples
        n = pending.size // frame
        frames = [to_vad_rate(pending[i * frame : (i + 1) * frame], fmt.rate)[0] for i in range(n)]
        rate = 8000 if fmt.rate == 8000 else 16000
        first = self.vad_pos
        self.vad_residual = pending[n * frame :].copy()
        self.vad_pos = first + n * frame
        if not frames:
            return
        if self.vad_model is None:
            self.vad_model = await asyncio.to_thread(self.vad_pool.acquire)
        if self.segmenter is None:
            self.segmenter = Segmenter(self.cfg.vad)
        probs = await asyncio.to_thread(VADPool.probabilities, self.vad_model, frames, rate)
        for i, p in enumerate(probs):
            start = first + i * frame
            decision = self.segmenter.feed(p, self.ms(start))
            if isinstance(decision, Started):
                await self._speech_started(start)
            elif isinstance(decision, Stopped):
                await self._speech_stopped(decision)
            elif not self.segmenter.speaking:
                await self._maybe_idle(start + frame)
        if not self.segmenter.speaking:
            keep = int(self.cfg.vad.prefix_padding_ms * fmt.rate / 1000)
            self.buffer.drop_before(self.vad_pos - keep)

    async def _speech_started(self, start: int) -> None:
        rate = self.cfg.input_format.rate
        self.speech_item = new_id("item")
        self.speech_from = max(self.buffer.start, start - int(self.cfg.vad.prefix_padding_ms * rate / 1000))
        await self.send(
            {"type": "input_audio_buffer.speech_started", "audio_start_ms": self.ms(start), "item_id": self.speech_item}
        )
        if self.cfg.type == "realtime" and self.cfg.interrupt_response and self.response and not self.response.done:
            await self._cancel_response("turn_detected")

    async def _speech_stopped(self, decision: Stopped) -> None:
        end = min(self.buffer.end, max(self.speech_from, self.index(decision.audio_end_ms)))
        item_id = self.speech_item or new_id("item")
        self.speech_item = None
        await self.send(
            {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": decision.audio_end_ms, "item_id": item_id}
        )
        samples = self.buffer.slice(self.speech_from, end)
        self.buffer.drop_before(end)
        self.idle_from = end
        await self._commit(item_id, samples, auto=True)

    async def _maybe_idle(self, position: int) -> None:
        timeout = self.cfg.vad.idle_timeout_ms if self.cfg.vad else None
        if not timeout or (self.response is not None and not self.response.done):
            return
        if self.ms(position) - self.ms(self.idle_from) < timeout:
            return
        item_id = new_id("item")
        await self.send(
            {
                "type": "input_audio_buffer.timeout_triggered",
                "audio_start_ms": self.ms(self.idle_from),
                "audio_end_ms": self.ms(position),
                "item_id": item_id,
            }
        )
        samples = self.buffer.slice(self.buffer.start, position)
        self.buffer.drop_before(position)
        self.idle_from = position
        if samples.size * 1000 >= MIN_COMMIT_MS * self.cfg.input_format.rate:
            await self._commit(item_id, samples, auto=True)

    async def on_commit(self, event: dict[str, Any]) -> None:
        rate = self.cfg.input_format.rate
        if len(self.buffer) * 1000 < MIN_COMMIT_MS * rate:
            raise ProtocolError(
                f"Error committing input audio buffer: buffer too small. Expected at least {MIN_COMMIT_MS}ms of "
                f"audio, but buffer only has {len(self.buffer) * 1000 / rate:.2f}ms of audio.",
                code="input_audio_buffer_commit_empty",
            )
        item_id = self.speech_item or new_id("item")
        samples = self.buffer.slice(self.buffer.start, self.buffer.end)
        self.buffer.clear()
        if self.segmenter is not None:
            self.segmenter.reset()
        self.speech_item = None
        self.idle_from = self.buffer.end
        await self._commit(item_id, samples, auto=False)

    async def on_clear(self, event: dict[str, Any]) -> None:
        self.buffer.clear()
        self._reset_vad()
        await self.send({"type": "input_audio_buffer.cleared"})

    async def _commit(self, item_id: str, samples: np.ndarray, *, auto: bool) -> None:
        previous = next(reversed(self.items), None)
        await self.send({"type": "input_audio_buffer.committed", "previous_item_id": previous, "item_id": item_id})
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "completed",
            "role": "user",
            "content": [{"type": "input_audio", "transcript": None}],
        }
        await self._add_item(item, previous)
        turn = Turn(item=item)
        self.turns[item_id] = turn
        metrics.TURNS.inc()
        pending = sum(1 for t in self.turns.values() if not t.finished.is_set())
        if pending > self.settings.live_max_pending_transcriptions:
            turn.failed = True
            turn.finished.set()
            await self._transcription_failed(
                item_id,
                {
                    "type": "server_error",
                    "code": "rate_limit_exceeded",
                    "message": "Too many turns are waiting for transcription in this session.",
                    "param": None,
                },
            )
        else:
            turn.task = self.spawn(self._transcribe(turn, samples))
        if auto and self.cfg.type == "realtime" and self.cfg.create_response and self._can_answer():
            await self._start_response({"metadata": {"input_item_id": item_id}}, None)

    def _can_answer(self) -> bool:
        return self.response is None or self.response.done

    def _store(self, item: dict[str, Any]) -> None:
        """Keep an item in the conversation; the oldest go once there are more than the limit."""
        self.items[item["id"]] = item
        while len(self.items) > self.settings.live_max_items:
            old, _ = self.items.popitem(last=False)
            self.turns.pop(old, None)

    async def _add_item(self, item: dict[str, Any], previous: str | None) -> None:
        self._store(item)
        await self.send({"type": "conversation.item.added", "previous_item_id": previous, "item": item})
        await self.send({"type": "conversation.item.done", "previous_item_id": previous, "item": item})

    # ------------------------------------------------------------------ transcription

    async def _transcribe(self, turn: Turn, samples: np.ndarray) -> None:
        item_id = turn.item["id"]
        wav = wav_bytes(samples, self.cfg.input_format.rate)
        del samples
        text_parts: list[str] = []
        transcript: str | None = None
        usage: Any = None
        languages: Any = None
        logprobs: Any = None
        want_logprobs = LOGPROBS_INCLUDE in self.cfg.include
        try:
            async for ev in self.services.transcribe(
                wav,
                language=self.cfg.language,
                prompt=self.cfg.prompt,
                headers=self.upstream_headers,
                logprobs=want_logprobs,
            ):
                kind = ev.get("type")
                if kind in ("transcript.text.delta", "transcript.text.segment"):
                    if kind == "transcript.text.delta":
                        text_parts.append(ev.get("delta", ""))
                    await self._relay(ev, item_id, want_logprobs)
                elif kind == "transcript.text.done":
                    transcript = ev.get("text", "".join(text_parts))
                    usage = ev.get("usage")
                    languages = ev.get("languages")
                    logprobs = ev.get("logprobs")
                elif kind == "error":
                    raise UpstreamError(ev.get("error") or {"type": "server_error", "message": "ASR failed."})
            if transcript is None:
                raise UpstreamError(
                    {"type": "server_error", "code": "upstream_incomplete", "message": "The ASR stream ended early."}
                )
        except UpstreamError as exc:
            turn.failed = True
            turn.finished.set()
            await self._transcription_failed(item_id, exc.error)
            return
        except (ValueError, KeyError, TypeError, AttributeError):
            log.exception("session %s: unreadable ASR stream", self.id)
            turn.failed = True
            turn.finished.set()
            await self._transcription_failed(
                item_id,
                {"type": "server_error", "code": "upstream_invalid", "message": "The ASR stream was unreadable."},
            )
            return
        turn.transcript = transcript
        turn.item["content"][0]["transcript"] = transcript
        turn.finished.set()
        completed: dict[str, Any] = {
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": item_id,
            "content_index": 0,
            "transcript": transcript,
        }
        if usage is not None:
            completed["usage"] = usage
        if languages:
            completed["languages"] = languages  # [{"code": ...}] as the ASR service detected them
        if want_logprobs:
            completed["logprobs"] = logprobs or []  # [{token, logprob, bytes}] from the ASR's generation
        await self.send(completed)

    async def _relay(self, ev: dict[str, Any], item_id: str, want_logprobs: bool) -> None:
        """One ASR stream event (text delta or completed segment) as the Realtime API's transcription event."""
        head = {"item_id": item_id, "content_index": 0}
        if ev.get("type") == "transcript.text.delta":
            delta = {"type": "conversation.item.input_audio_transcription.delta", **head, "delta": ev.get("delta", "")}
            if want_logprobs:
                delta["logprobs"] = ev.get("logprobs") or []
            await self.send(delta)
            return
        fields = {k: ev.get(k) for k in ("id", "start", "end", "text", "speaker")}
        await self.send({"type": "conversation.item.input_audio_transcription.segment", **head, **fields})

    async def _transcription_failed(self, item_id: str, error: dict[str, Any]) -> None:
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.failed",
                "item_id": item_id,
                "content_index": 0,
                "error": {
                    "type": error.get("type", "server_error"),
                    "code": error.get("code"),
                    "message": error.get("message", "Transcription failed."),
                    "param": error.get("param"),
                },
            }
        )

    # ------------------------------------------------------------------ conversation items

    async def on_item_create(self, event: dict[str, Any]) -> None:
        item = event.get("item")
        if not isinstance(item, dict):
            raise ProtocolError("'item' must be an object.", param="item")
        kind = item.get("type", "message")
        item_id = item.get("id") or new_id("item")
        if not isinstance(item_id, str) or not 1 <= len(item_id) <= 64:
            raise ProtocolError("'item.id' must be a string of 1 to 64 characters.", param="item.id")
        if item_id in self.items:
            raise ProtocolError(f"Item {item_id!r} already exists.", param="item.id", code="item_already_exists")
        if kind == "message":
            role = item.get("role")
            if role not in ("system", "user", "assistant"):
                raise ProtocolError("'item.role' must be system, user or assistant.", param="item.role")
            content = item.get("content")
            if not isinstance(content, list) or not all(
                isinstance(c, dict)
                and c.get("type") in ("input_text", "text", "output_text")
                and isinstance(c.get("text"), str)
                for c in content
            ):
                raise ProtocolError(
                    "Message content must be a list of text parts (input_text, text, output_text).",
                    param="item.content",
                )
            stored = {
                "id": item_id,
                "object": "realtime.item",
                "type": "message",
                "status": "completed",
                "role": role,
                "content": [{"type": c["type"], "text": c["text"]} for c in content],
            }
        elif kind == "function_call_output":
            if not isinstance(item.get("call_id"), str) or not isinstance(item.get("output"), str):
                raise ProtocolError(
                    "A function_call_output needs a string 'call_id' and a string 'output'.", param="item.call_id"
                )
            stored = {
                "id": item_id,
                "object": "realtime.item",
                "type": "function_call_output",
                "status": "completed",
                "call_id": item["call_id"],
                "output": item["output"],
            }
        elif kind == "function_call":
            if not isinstance(item.get("name"), str) or not isinstance(item.get("arguments", ""), str):
                raise ProtocolError("A function_call needs a string 'name' and 'arguments'.", param="item.name")
            stored = {
                "id": item_id,
                "object": "realtime.item",
                "type": "function_call",
                "status": "completed",
                "name": item["name"],
                "call_id": item.get("call_id") or new_id("call"),
                "arguments": item.get("arguments", ""),
            }
        else:
            raise ProtocolError(f"Unsupported item type {kind!r}.", param="item.type")
        previous = event.get("previous_item_id")
        if previous is not None and previous != "root" and previous not in self.items:
            raise ProtocolError(f"previous_item_id {previous!r} does not exist.", param="previous_item_id")
        if previous is None:
            previous = next(reversed(self.items), None)
        await self._add_item(stored, None if previous == "root" else previous)

    async def on_item_delete(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or item_id not in self.items:
            raise ProtocolError(
                f"Item with item_id={item_id!r} not found.", param="item_id", code="item_delete_invalid_item_id"
            )
        del self.items[item_id]
        turn = self.turns.pop(item_id, None)
        if turn is not None and turn.task is not None and not turn.finished.is_set():
            turn.task.cancel()
            turn.failed = True
            turn.finished.set()  # a response waiting for this transcript fails instead of waiting forever
        await self.send({"type": "conversation.item.deleted", "item_id": item_id})

    async def on_item_retrieve(self, event: dict[str, Any]) -> None:
        item_id = event.get("item_id")
        if not isinstance(item_id, str) or item_id not in self.items:
            raise ProtocolError(
                f"Item with item_id={item_id!r} not found.", param="item_id", code="item_retrieve_invalid_item_id"
            )
        await self.send({"type": "conversation.item.retrieved", "item": self.items[item_id]})

    async def on_item_truncate(self, event: dict[str, Any]) -> None:
        item_id, index, end_ms = event.get("item_id"), event.get("content_index"), event.get("audio_end_ms")
        item = self.items.get(item_id) if isinstance(item_id, str) else None
        if self.response and self.response.item is not None and self.response.item["id"] == item_id:
            item = self.response.item
        if item is None or item.get("role") != "assistant" or item.get("type") != "message":
            raise ProtocolError(
                f"No assistant audio item with item_id={item_id!r}.",
                param="item_id",
                code="item_truncate_invalid_item_id",
            )
        if index != 0:
            raise ProtocolError("content_index must be 0.", param="content_index")
        resp = self.response if self.response and self.response.item is item else None
        spoken_ms = item.get("_audio_ms", 0) if resp is None else resp.audio_bytes * 1000 // 48000
        if type(end_ms) is not int or not 0 <= end_ms <= spoken_ms:
            raise ProtocolError(
                f"audio_end_ms must be an integer between 0 and the {spoken_ms} ms of audio sent.",
                param="audio_end_ms",
            )
        if resp is not None and not resp.done:
            await self._cancel_response("client_cancelled")
        if item.get("content"):
            item["content"][0]["transcript"] = ""
        await self.send(
            {"type": "conversation.item.truncated", "item_id": item_id, "content_index": 0, "audio_end_ms": end_ms}
        )

    # ------------------------------------------------------------------ responses

    async def on_response_create(self, event: dict[str, Any]) -> None:
        if self.cfg.type != "realtime":
            raise ProtocolError(
                "Transcription sessions do not create responses.", param="type", code="invalid_session_type"
            )
        if not self._can_answer():
            raise ProtocolError(
                f"Conversation already has an active response in progress: {self.response.id}.",
                code="conversation_already_has_active_response",
            )
        body = event.get("response") or {}
        if not isinstance(body, dict):
            raise ProtocolError("'response' must be an object.", param="response")
        await self._start_response(body, event.get("event_id"))

    async def _start_response(self, body: dict[str, Any], eid: Any) -> None:
        plan = self._plan(body)
        metadata = body.get("metadata") if isinstance(body.get("metadata"), dict) else None
        resp = Response(id=new_id("resp"), metadata=metadata, conversation=body.get("conversation", "auto") != "none")
        self.response = resp
        resp.task = self.spawn(self._respond(resp, plan))

    def _plan(self, body: dict[str, Any]) -> tuple[str, Any]:
        """What to do: ("speak", text) | ("call", (tool, param, item_id)) | ("fail", message)."""
        text = say_this(body.get("instructions"))
        if text is not None:
            return "speak", text
        meta = body.get("metadata") if isinstance(body.get("metadata"), dict) else {}
        items = self._input_items(body.get("input"))
        target: dict[str, Any] | None = None
        if isinstance(meta.get("call_id"), str):
            target = next(
                (
                    i
                    for i in reversed(items)
                    if i.get("type") == "function_call_output" and i.get("call_id") == meta["call_id"]
                ),
                None,
            )
        elif isinstance(meta.get("input_item_id"), str):
            target = self.items.get(meta["input_item_id"])
        if target is None:
            target = next(
                (
                    i
                    for i in reversed(items)
                    if i.get("type") == "function_call_output"
                    or (i.get("type") == "message" and i.get("role") == "user")
                ),
                None,
            )
        if target is None:
            return "fail", "There is no user turn or tool result to respond to."
        if target.get("type") == "function_call_output":
            status, answer = answer_of(target.get("output"))
            if status == "failed" or (status != "completed" and not answer.strip()):
                return "speak", self.settings.live_failure_sentence
            return "speak", answer
        tools = body.get("tools")
        tools = [t for t in tools if isinstance(t, dict)] if isinstance(tools, list) else self.cfg.tools
        tool = pick_tool(tools, body.get("tool_choice", self.cfg.tool_choice))
        if tool is None:
            text = _text_of(target)
            if target.get("id") not in self.turns and text.strip():
                # A typed turn and no tool to hand it to: speak it, as a speech-only realtime client
                # (Open WebUI's openai-realtime TTS engine) expects.
                return "speak", text
            return (
                "fail",
                "This server has no language model: a response to a spoken turn needs a function tool "
                "with one string parameter (such as generate_chat_completion) to hand the turn to.",
            )
        return "call", (tool[0], tool[1], target)

    def _input_items(self, given: Any) -> list[dict[str, Any]]:
        if not isinstance(given, list):
            return list(self.items.values())
        out = []
        for i in given:
            if isinstance(i, dict) and i.get("type") == "item_reference" and i.get("id") in self.items:
                out.append(self.items[i["id"]])
            elif isinstance(i, dict):
                out.append(i)
        return out

    async def _respond(self, resp: Response, plan: tuple[str, Any]) -> None:
        await self.send(
            {
                "type": "response.created",
                "response": {
                    "id": resp.id,
                    "object": "realtime.response",
                    "status": "in_progress",
                    "status_details": None,
                    "output": [],
                    "metadata": resp.metadata,
                    "output_modalities": ["audio"],
                    "audio": {"output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": self.cfg.voice}},
                },
            }
        )
        kind, arg = plan
        status, details = "completed", None
        try:
            if kind == "speak":
                await self._speak(resp, arg)
            elif kind == "call":
                await self._call(resp, *arg)
            else:
                status, details = (
                    "failed",
                    {"type": "failed", "error": {"type": "invalid_request_error", "code": "no_tool", "message": arg}},
                )
        except UpstreamError as exc:
            status, details = (
                "failed",
                {"type": "failed", "error": {k: exc.error.get(k) for k in ("type", "code", "message")}},
            )
            if resp.item is not None:
                resp.item["status"] = "incomplete"
        resp.done = True
        await self._response_done(resp, status, details)

    async def _response_done(self, resp: Response, status: str, details: Any) -> None:
        resp.done = True
        output = [] if resp.item is None else [{k: v for k, v in resp.item.items() if not k.startswith("_")}]
        await self.send(
            {
                "type": "response.done",
                "response": {
                    "id": resp.id,
                    "object": "realtime.response",
                    "status": status,
                    "status_details": details,
                    "output": output,
                    "metadata": resp.metadata,
                    "output_modalities": ["audio"],
                },
            }
        )

    async def _call(self, resp: Response, tool: str, param: str, target: dict[str, Any]) -> None:
        turn = self.turns.get(target.get("id", ""))
        if turn is not None:
            await turn.finished.wait()
            if turn.failed:
                raise UpstreamError(
                    {"type": "server_error", "code": "transcription_failed", "message": "The turn was not transcribed."}
                )
            text = turn.transcript or ""
        else:
            text = " ".join(
                c.get("text") or c.get("transcript") or "" for c in target.get("content") or [] if isinstance(c, dict)
            )
        if not text.strip():
            raise UpstreamError(
                {"type": "invalid_request_error", "code": "empty_transcript", "message": "The user turn has no text."}
            )
        item_id, call_id = new_id("item"), new_id("call")
        args = json.dumps({param: text}, ensure_ascii=False)
        item = {
            "id": item_id,
            "object": "realtime.item",
            "type": "function_call",
            "status": "in_progress",
            "name": tool,
            "call_id": call_id,
            "arguments": "",
        }
        resp.item = item
        base = {"response_id": resp.id, "output_index": 0}
        await self.send({"type": "response.output_item.added", **base, "item": dict(item)})
        await self.send(
            {
                "type": "response.function_call_arguments.delta",
                **base,
                "item_id": item_id,
                "call_id": call_id,
                "delta": args,
            }
        )
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                **base,
                "item_id": item_id,
                "call_id": call_id,
                "name": tool,
                "arguments": args,
            }
        )
        item.update(status="completed", arguments=args)
        await self.send({"type": "response.output_item.done", **base, "item": dict(item)})
        if resp.conversation:
            await self._add_item(item, next(reversed(self.items), None))

    async def _speak(self, resp: Response, text: str) -> None:
        item_id = new_id("item")
        item: dict[str, Any] = {
            "id": item_id,
            "object": "realtime.item",
            "type": "message",
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        resp.item = item
        base = {"response_id": resp.id, "output_index": 0}
        part = {"response_id": resp.id, "item_id": item_id, "output_index": 0, "content_index": 0}
        await self.send({"type": "response.output_item.added", **base, "item": dict(item)})
        await self.send({"type": "response.content_part.added", **part, "part": {"type": "audio", "transcript": ""}})
        carry = b""
        spoken: list[str] = []
        for piece in sentence_groups(text, self.settings.live_tts_chunk_chars):
            await self.send(
                {"type": "response.output_audio_transcript.delta", **part, "delta": (" " if spoken else "") + piece}
            )
            spoken.append(piece)
            async for chunk in self.services.speak(piece, self.cfg.voice, self.cfg.speed, self.upstream_headers):
                data = carry + chunk
                whole = len(data) - len(data) % 2
                carry = data[whole:]
                for i in range(0, whole, AUDIO_EVENT_BYTES):
                    block = data[i : min(whole, i + AUDIO_EVENT_BYTES)]
                    resp.audio_bytes += len(block)
                    await self.send(
                        {"type": "response.output_audio.delta", **part, "delta": base64.b64encode(block).decode()}
                    )
                    # A send into a socket with room does not suspend: give the session's reader its turn, so a
                    # response.cancel is handled between two deltas even while a fast client drains us.
                    await asyncio.sleep(0)
        transcript = " ".join(spoken)
        await self.send({"type": "response.output_audio.done", **part})
        await self.send({"type": "response.output_audio_transcript.done", **part, "transcript": transcript})
        content = {"type": "output_audio", "transcript": transcript}
        await self.send(
            {"type": "response.content_part.done", **part, "part": {"type": "audio", "transcript": transcript}}
        )
        item.update(status="completed", content=[content], _audio_ms=resp.audio_bytes * 1000 // 48000)
        public = {k: v for k, v in item.items() if not k.startswith("_")}
        await self.send({"type": "response.output_item.done", **base, "item": public})
        if resp.conversation:
            self._store(item)
            await self.send({"type": "conversation.item.added", "previous_item_id": None, "item": public})
            await self.send({"type": "conversation.item.done", "previous_item_id": None, "item": public})

    async def on_response_cancel(self, event: dict[str, Any]) -> None:
        rid = event.get("response_id")
        resp = self.response
        if resp is None or resp.done or (rid is not None and rid != resp.id):
            raise ProtocolError("Cancellation failed: no active response found.", code="response_cancel_not_active")
        await self._cancel_response("client_cancelled")

    async def _cancel_response(self, reason: str) -> None:
        """Stop the response now: no audio event of it is sent after this returns."""
        resp = self.response
        if resp is None or resp.done:
            return
        resp.done = True
        if resp.task is not None:
            with contextlib.suppress(Exception):
                await cancel_and_wait(resp.task)
        if resp.item is not None:
            resp.item["status"] = "incomplete"
            resp.item["_audio_ms"] = resp.audio_bytes * 1000 // 48000
            if resp.conversation and resp.item["type"] == "message":
                self._store(resp.item)
        await self._response_done(resp, "cancelled", {"type": "cancelled", "reason": reason})


def _text_of(item: dict[str, Any]) -> str:
    parts = item.get("content") if isinstance(item.get("content"), list) else []
    return " ".join(str(c.get("text") or c.get("transcript") or "") for c in parts if isinstance(c, dict)).strip()


Handler = Callable[[Session, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {
    "session.update": Session.on_session_update,
    "transcription_session.update": Session.on_transcription_session_update,
    "input_audio_buffer.append": Session.on_append,
    "input_audio_buffer.commit": Session.on_commit,
    "input_audio_buffer.clear": Session.on_clear,
    "conversation.item.create": Session.on_item_create,
    "conversation.item.delete": Session.on_item_delete,
    "conversation.item.retrieve": Session.on_item_retrieve,
    "conversation.item.truncate": Session.on_item_truncate,
    "response.create": Session.on_response_create,
    "response.cancel": Session.on_response_cancel,
}


def session_type_for(intent: str | None, model: str | None, settings: LiveSettings) -> tuple[str, str]:
    """(session type, model) for a connection's query; raises ProtocolError for a refused one."""
    if intent not in (None, "", "transcription", "realtime"):
        raise ProtocolError(f"Unknown intent {intent!r}: use transcription.", param="intent")
    if intent == "transcription":
        return "transcription", model or settings.live_asr_model
    if not model:
        raise ProtocolError(
            "Give ?model= (a realtime model such as gpt-realtime) or ?intent=transcription.",
            param="model",
            code="missing_required_parameter",
        )
    if not matches(model, settings.live_models):
        raise ProtocolError(
            f"The model {model!r} does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    return "realtime", model
