"""``/v1/realtime``: the subset of OpenAI's Realtime protocol that text-to-speech clients use.

Flow (as Open WebUI's ``openai-realtime`` TTS engine drives it): server ``session.created`` →
client ``session.update`` (voice, ``audio/pcm`` 24 kHz output) → server ``session.updated`` →
client ``response.create`` with an ``input_text`` message (or after ``conversation.item.create``) →
server ``response.created``, ``response.output_audio.delta``… (base64 PCM16),
``response.output_audio.done``, ``response.done`` (status completed). ``response.cancel`` stops a
response; errors are ``error`` events. Audio input, tools and transcription are not offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from vibevoice_api.shared.audio import StreamingTempo, to_pcm16
from vibevoice_api.shared.cancel import cancel_and_wait
from vibevoice_api.shared.errors import APIError, InternalError, InvalidRequestError
from vibevoice_api.shared.lifecycle import ModelHolder
from vibevoice_api.shared.realtime_events import (
    AudioOutput,
    ConversationItemCreated,
    InputText,
    MessageItem,
    OutputAudioDelta,
    OutputAudioDone,
    RealtimeError,
    RealtimeEvent,
    ResponseEvent,
    Session,
    SessionAudio,
    SessionEvent,
    new_id,
)

from .engine_api import SpeechEngine
from .settings import TTSSettings
from .speech import b64, check_text, choose_voice

log = logging.getLogger("vibevoice_api.tts.realtime")
MAX_MESSAGE_BYTES = 1 << 20


class RealtimeSession:
    def __init__(self, ws: WebSocket, holder: ModelHolder[SpeechEngine], settings: TTSSettings) -> None:
        self.ws = ws
        self.holder = holder
        self.settings = settings
        self.session_id = new_id("sess")
        self.voice: str | None = None
        self.speed = 1.0
        self.seed: int | None = None  # our extension: reproducible responses
        self.items: list[str] = []  # pending input texts from conversation.item.create
        self.current: asyncio.Task[None] | None = None
        self.current_id: str | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, event: RealtimeEvent) -> None:
        async with self._send_lock:
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.send_text(event.to_json())

    async def error(self, exc: APIError, event_id: str | None = None) -> None:
        await self.send(RealtimeError.of(exc, event_id))

    def session_obj(self) -> Session:
        output = AudioOutput(voice=self.voice, speed=self.speed)
        return Session(id=self.session_id, model=self.settings.identity.id, audio=SessionAudio(output=output))

    async def run(self) -> None:
        model = self.ws.query_params.get("model")
        await self.ws.accept()
        try:
            self.settings.realtime_identity.check(model)
            engine = self.holder.require()
            self.voice = choose_voice(engine, None, self.settings)
        except APIError as exc:
            await self.error(exc)
            await self.ws.close(code=1008 if exc.status_code < 500 else 1011)
            return
        await self.send(SessionEvent(type="session.created", session=self.session_obj()))
        try:
            while True:
                msg = await self.ws.receive()
                if msg["type"] == "websocket.disconnect":
                    return
                raw = msg.get("text")
                if raw is None:  # a binary frame: the session goes on
                    await self.error(
                        InvalidRequestError(
                            "Binary frames are not supported: send JSON text events.", code="invalid_event"
                        )
                    )
                    continue
                if len(raw) > MAX_MESSAGE_BYTES:
                    await self.error(InvalidRequestError("Event too large.", code="event_too_large"))
                    continue
                try:
                    event = json.loads(raw)
                    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                        raise ValueError
                except ValueError:
                    await self.error(
                        InvalidRequestError("Events must be JSON objects with a 'type'.", code="invalid_event")
                    )
                    continue
                try:
                    await self.handle(event)
                except (WebSocketDisconnect, RuntimeError):
                    raise
                except Exception:  # a bug must cost one event, not the session: told, logged, the session goes on
                    log.exception("realtime event %r failed", event.get("type"))
                    await self.error(InternalError("The event could not be handled."))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            await self.cancel_current()

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        eid = event.get("event_id") if isinstance(event.get("event_id"), str) else None
        for field in ("session", "item", "response"):
            if event.get(field) is not None and not isinstance(event[field], dict):
                await self.error(InvalidRequestError(f"'{field}' must be an object.", param=field), eid)
                return
        if kind == "session.update":
            await self.update_session(event.get("session") or {}, eid)
        elif kind == "conversation.item.create":
            text = _text_of_item(event.get("item") or {})
            if text is None:
                await self.error(_unsupported("Only message items with input_text content are supported.", "item"), eid)
                return
            item_id = (event.get("item") or {}).get("id") or new_id("item")
            self.items.append(text)
            item = MessageItem(id=str(item_id), content=[InputText(text=text)])
            await self.send(ConversationItemCreated(item=item))
        elif kind == "response.create":
            await self.create_response(event.get("response") or {}, eid)
        elif kind == "response.cancel":
            if self.current is None or self.current.done():
                msg = "Cancellation failed: no active response found."
                await self.error(InvalidRequestError(msg, code="response_cancel_not_active"), eid)
                return
            await self.cancel_current()
        elif kind in ("input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear"):
            await self.error(_unsupported("This server does text-to-speech only; audio input is not supported."), eid)
        else:
            await self.error(_unsupported(f"Unsupported event type {kind!r}."), eid)

    async def update_session(self, session: dict[str, Any], eid: str | None) -> None:
        try:
            output = _object(_object(session, "audio", "session"), "output", "session.audio")
            voice = output.get("voice") or session.get("voice")
            fmt = output.get("format") or session.get("output_audio_format")
            if isinstance(fmt, dict):
                if fmt.get("type") not in (None, "audio/pcm") or int(fmt.get("rate", 24000)) != 24000:
                    raise InvalidRequestError(
                        "Only audio/pcm at 24000 Hz is offered.", param="session.audio.output.format"
                    )
            elif fmt not in (None, "pcm16", "audio/pcm"):
                raise InvalidRequestError(
                    "Only pcm16 (audio/pcm, 24 kHz) output is offered.", param="session.output_audio_format"
                )
            speed = output.get("speed", session.get("speed"))
            if speed is not None:
                speed = float(speed)
                if not 0.25 <= speed <= 4.0:
                    raise InvalidRequestError("speed must be between 0.25 and 4.0.", param="session.audio.output.speed")
                self.speed = speed
            if voice is not None:
                self.voice = choose_voice(self.holder.require(), str(voice), self.settings)
            if "seed" in session:
                self.seed = _seed(session["seed"], "session.seed")
        except (TypeError, ValueError, OverflowError):
            await self.error(InvalidRequestError("Invalid session settings.", code="invalid_value"), eid)
            return
        except APIError as exc:
            await self.error(exc, eid)
            return
        await self.send(SessionEvent(type="session.updated", session=self.session_obj()))

    async def create_response(self, response: dict[str, Any], eid: str | None) -> None:
        if self.current is not None and not self.current.done():
            busy = InvalidRequestError(
                "A response is already in progress.", code="conversation_already_has_active_response"
            )
            await self.error(busy, eid)
            return
        given = response.get("input")
        if given is not None and not isinstance(given, list):
            await self.error(InvalidRequestError("'input' must be a list of items.", param="response.input"), eid)
            return
        texts = [t for t in (_text_of_item(i) for i in given or []) if t]
        if not texts:
            texts, self.items = self.items, []
        try:
            text = check_text(" ".join(texts), self.settings)
            voice = self.voice
            if response.get("voice"):
                voice = choose_voice(self.holder.require(), str(response["voice"]), self.settings)
            seed = _seed(response["seed"], "response.seed") if "seed" in response else self.seed
        except APIError as exc:
            await self.error(exc, eid)
            return
        rid = new_id("resp")
        self.current_id = rid
        self.current = asyncio.ensure_future(self.speak(rid, text, voice or "", seed))

    async def speak(self, rid: str, text: str, voice: str, seed: int | None = None) -> None:
        item_id = new_id("item")
        await self.send(ResponseEvent.created(rid))
        status = "completed"
        engine = self.holder.require()
        tempo = StreamingTempo(self.speed, engine.sample_rate)
        stream = engine.stream(text, voice, seed=seed)

        async def send_audio(data: bytes) -> None:
            if data:
                await self.send(OutputAudioDelta(response_id=rid, item_id=item_id, delta=b64(data)))

        try:
            async for pcm in stream:
                await send_audio(to_pcm16(tempo.feed(np.asarray(pcm, dtype=np.float32))))
            await send_audio(to_pcm16(tempo.close()))
            await self.send(OutputAudioDone(response_id=rid, item_id=item_id))
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except APIError as exc:
            status = "failed"
            await self.error(exc)
        except Exception:
            status = "failed"
            log.exception("realtime response failed")
            await self.error(InternalError("Speech generation failed."))
        finally:
            await stream.aclose()
            with contextlib.suppress(Exception):
                await self.send(ResponseEvent.done(rid, status))

    async def cancel_current(self) -> None:
        task = self.current
        if task is not None and not task.done():
            with contextlib.suppress(Exception):
                await cancel_and_wait(task)
        self.current = None


def _text_of_item(item: Any) -> str | None:
    if not isinstance(item, dict) or item.get("type", "message") != "message":
        return None
    content = item.get("content")
    if not isinstance(content, list):
        return None
    parts = [c.get("text") for c in content if isinstance(c, dict) and c.get("type") in ("input_text", "text")]
    parts = [p for p in parts if isinstance(p, str)]
    return " ".join(parts) if parts else None


def _object(parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """``parent[key]`` when it is an object, {} when absent; anything else is an invalid_request_error."""
    value = parent.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequestError(f"'{key}' must be an object.", param=f"{where}.{key}", code="invalid_value")
    return value


def _unsupported(message: str, what: str = "event") -> InvalidRequestError:
    return InvalidRequestError(message, code=f"unsupported_{what}")


def _seed(value: Any, param: str) -> int | None:
    """A ``seed`` (our extension): an integer from 0 to 2**63 - 1, or null for random sampling."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**63:
        raise InvalidRequestError("seed must be an integer from 0 to 9223372036854775807.", param=param)
    return value
