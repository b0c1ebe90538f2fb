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
import uuid
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState
from vibevoice_api.shared.audio import StreamingTempo, to_pcm16
from vibevoice_api.shared.errors import APIError, InvalidRequestError
from vibevoice_api.shared.lifecycle import ModelHolder

from .settings import TTSSettings
from .speech import b64, check_text, choose_voice

log = logging.getLogger("vibevoice_api.tts.realtime")
MAX_MESSAGE_BYTES = 1 << 20


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class RealtimeSession:
    def __init__(self, ws: WebSocket, holder: ModelHolder[Any], settings: TTSSettings) -> None:
        self.ws = ws
        self.holder = holder
        self.settings = settings
        self.session_id = _id("sess")
        self.voice: str | None = None
        self.speed = 1.0
        self.items: list[str] = []  # pending input texts from conversation.item.create
        self.current: asyncio.Task[None] | None = None
        self.current_id: str | None = None
        self._send_lock = asyncio.Lock()

    async def send(self, event: dict[str, Any]) -> None:
        event.setdefault("event_id", _id("event"))
        async with self._send_lock:
            if self.ws.application_state == WebSocketState.CONNECTED:
                await self.ws.send_text(json.dumps(event))

    async def error(
        self,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        type_: str = "invalid_request_error",
        event_id: str | None = None,
    ) -> None:
        await self.send(
            {
                "type": "error",
                "error": {"type": type_, "code": code, "message": message, "param": param, "event_id": event_id},
            }
        )

    def session_obj(self) -> dict[str, Any]:
        return {
            "id": self.session_id,
            "object": "realtime.session",
            "type": "realtime",
            "model": self.settings.identity.id,
            "output_modalities": ["audio"],
            "audio": {
                "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": self.voice, "speed": self.speed}
            },
        }

    async def run(self) -> None:
        model = self.ws.query_params.get("model")
        await self.ws.accept()
        try:
            self.settings.realtime_identity.check(model)
            engine = self.holder.require()
            self.voice = choose_voice(engine, None, self.settings)
        except APIError as exc:
            await self.error(exc.message, code=exc.code, param=exc.param, type_=exc.error_type)
            await self.ws.close(code=1008 if exc.status_code < 500 else 1011)
            return
        await self.send({"type": "session.created", "session": self.session_obj()})
        try:
            while True:
                raw = await self.ws.receive_text()
                if len(raw) > MAX_MESSAGE_BYTES:
                    await self.error("Event too large.", code="event_too_large")
                    continue
                try:
                    event = json.loads(raw)
                    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
                        raise ValueError
                except ValueError:
                    await self.error("Events must be JSON objects with a 'type'.", code="invalid_event")
                    continue
                await self.handle(event)
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            await self.cancel_current()

    async def handle(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        eid = event.get("event_id")
        if kind == "session.update":
            await self.update_session(event.get("session") or {}, eid)
        elif kind == "conversation.item.create":
            text = _text_of_item(event.get("item") or {})
            if text is None:
                await self.error(
                    "Only message items with input_text content are supported.", code="unsupported_item", event_id=eid
                )
                return
            item_id = (event.get("item") or {}).get("id") or _id("item")
            self.items.append(text)
            await self.send(
                {
                    "type": "conversation.item.created",
                    "item": {
                        "id": item_id,
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": text}],
                    },
                }
            )
        elif kind == "response.create":
            await self.create_response(event.get("response") or {}, eid)
        elif kind == "response.cancel":
            await self.cancel_current()
        elif kind in ("input_audio_buffer.append", "input_audio_buffer.commit", "input_audio_buffer.clear"):
            await self.error(
                "This server does text-to-speech only; audio input is not supported.",
                code="unsupported_event",
                event_id=eid,
            )
        else:
            await self.error(f"Unsupported event type {kind!r}.", code="unsupported_event", event_id=eid)

    async def update_session(self, session: dict[str, Any], eid: str | None) -> None:
        output = ((session.get("audio") or {}).get("output") or {}) if isinstance(session.get("audio"), dict) else {}
        voice = output.get("voice") or session.get("voice")
        fmt = output.get("format") or session.get("output_audio_format")
        try:
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
        except (TypeError, ValueError):
            await self.error("Invalid session settings.", code="invalid_value", event_id=eid)
            return
        except APIError as exc:
            await self.error(exc.message, code=exc.code, param=exc.param, type_=exc.error_type, event_id=eid)
            return
        await self.send({"type": "session.updated", "session": self.session_obj()})

    async def create_response(self, response: dict[str, Any], eid: str | None) -> None:
        if self.current is not None and not self.current.done():
            await self.error(
                "A response is already in progress.", code="conversation_already_has_active_response", event_id=eid
            )
            return
        texts = (
            [t for t in (_text_of_item(i) for i in response.get("input") or []) if t] if response.get("input") else []
        )
        if not texts:
            texts, self.items = self.items, []
        try:
            text = check_text(" ".join(texts), self.settings)
            voice = self.voice
            if response.get("voice"):
                voice = choose_voice(self.holder.require(), str(response["voice"]), self.settings)
        except APIError as exc:
            await self.error(exc.message, code=exc.code, param=exc.param, event_id=eid)
            return
        rid = _id("resp")
        self.current_id = rid
        self.current = asyncio.ensure_future(self.speak(rid, text, voice or ""))

    async def speak(self, rid: str, text: str, voice: str) -> None:
        item_id = _id("item")
        await self.send(
            {
                "type": "response.created",
                "response": {"id": rid, "object": "realtime.response", "status": "in_progress", "output": []},
            }
        )
        status = "completed"
        engine = self.holder.require()
        tempo = StreamingTempo(self.speed, engine.sample_rate)
        stream = engine.stream(text, voice)

        async def send_audio(data: bytes) -> None:
            if data:
                await self.send(
                    {
                        "type": "response.output_audio.delta",
                        "response_id": rid,
                        "item_id": item_id,
                        "output_index": 0,
                        "content_index": 0,
                        "delta": b64(data),
                    }
                )

        try:
            async for pcm in stream:
                await send_audio(to_pcm16(tempo.feed(np.asarray(pcm, dtype=np.float32))))
            await send_audio(to_pcm16(tempo.close()))
            await self.send(
                {
                    "type": "response.output_audio.done",
                    "response_id": rid,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                }
            )
        except asyncio.CancelledError:
            status = "cancelled"
            raise
        except APIError as exc:
            status = "failed"
            await self.error(exc.message, code=exc.code, type_=exc.error_type)
        except Exception:
            status = "failed"
            log.exception("realtime response failed")
            await self.error("Speech generation failed.", code="internal_error", type_="server_error")
        finally:
            await stream.aclose()
            with contextlib.suppress(Exception):
                await self.send(
                    {"type": "response.done", "response": {"id": rid, "object": "realtime.response", "status": status}}
                )

    async def cancel_current(self) -> None:
        task = self.current
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        self.current = None


def _text_of_item(item: Any) -> str | None:
    if not isinstance(item, dict) or item.get("type", "message") != "message":
        return None
    parts = [
        c.get("text")
        for c in item.get("content") or []
        if isinstance(c, dict) and c.get("type") in ("input_text", "text")
    ]
    parts = [p for p in parts if isinstance(p, str)]
    return " ".join(parts) if parts else None
