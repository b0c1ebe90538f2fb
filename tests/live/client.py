"""A small Realtime API client for the tests: JSON events over a real WebSocket."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from websockets.sync.client import connect


def silence(seconds: float, rate: int = 24000, width: int = 2) -> bytes:
    return b"\0" * (int(seconds * rate) * width)


class RealtimeClient:
    def __init__(self, base_url: str, query: str, key: str | None, timeout: float = 300.0) -> None:
        url = base_url.replace("http://", "ws://", 1) + "/v1/realtime?" + query
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._connect = connect(url, additional_headers=headers, max_size=None, open_timeout=30)
        self.ws = self._connect.__enter__()
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> RealtimeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._connect.__exit__(None, None, None)

    def send(self, event: dict[str, Any]) -> None:
        self.ws.send(json.dumps(event))

    def recv(self) -> dict[str, Any]:
        event = json.loads(self.ws.recv(timeout=self.timeout))
        self.events.append(event)
        return event

    def until(self, pred: Callable[[dict[str, Any]], bool] | str) -> list[dict[str, Any]]:
        """Events up to and including the first one matching ``pred`` (a type name or a predicate)."""
        test = (lambda e: e["type"] == pred) if isinstance(pred, str) else pred
        got = []
        while True:
            e = self.recv()
            got.append(e)
            if test(e):
                return got

    def append(self, audio: bytes, chunk: int = 9600) -> None:
        """Audio in appends of ``chunk`` bytes (200 ms of PCM16 24 kHz), as a microphone sends it."""
        for i in range(0, len(audio), chunk):
            self.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[i : i + chunk]).decode()})

    def update(self, session: dict[str, Any], kind: str = "session.update") -> dict[str, Any]:
        self.send({"type": kind, "session": session})
        return self.until(lambda e: e["type"] in ("session.updated", "transcription_session.updated", "error"))[-1]


SERVER_VAD = {"type": "server_vad", "silence_duration_ms": 500}


def transcription_session(
    turn_detection: dict[str, Any] | None = SERVER_VAD, fmt: str = "audio/pcm", **transcription: Any
) -> dict[str, Any]:
    """A GA ``session.update`` body for a transcription session (``turn_detection=None``: manual commits)."""
    return {
        "type": "transcription",
        "audio": {
            "input": {
                "format": {"type": fmt, **({"rate": 24000} if fmt == "audio/pcm" else {})},
                "transcription": {"model": "gpt-transcribe", **transcription},
                "turn_detection": turn_detection,
            }
        },
    }
