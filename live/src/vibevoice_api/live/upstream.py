"""The ASR and TTS services, used through their public HTTP APIs (so admission, batching and metrics apply).

A job is an ``async with`` HTTP stream: cancelling the task that iterates it closes the connection, and
the service cancels the job on disconnect.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from .settings import LiveSettings


class UpstreamError(Exception):
    """A service refused or failed a job; ``error`` is an OpenAI error object."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.error = error


def _unavailable(service: str, exc: BaseException) -> UpstreamError:
    return UpstreamError(
        {
            "type": "server_error",
            "code": "service_unavailable",
            "message": f"The {service} service is unreachable ({type(exc).__name__}).",
            "param": None,
        }
    )


async def _raise_for(r: httpx.Response, service: str) -> None:
    if r.status_code == 200:
        return
    body = await r.aread()
    try:
        err = json.loads(body)["error"]
        if not isinstance(err, dict):
            raise TypeError
    except (ValueError, KeyError, TypeError):
        err = {"type": "server_error", "code": None, "message": f"The {service} service answered {r.status_code}."}
    err.setdefault("param", None)
    raise UpstreamError(err)


class Services:
    def __init__(self, settings: LiveSettings) -> None:
        self.settings = settings
        timeout = httpx.Timeout(settings.upstream_timeout, connect=settings.connect_timeout)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self.client = httpx.AsyncClient(timeout=timeout, limits=limits)
        self.headers = {"authorization": f"Bearer {settings.upstream_api_key}"} if settings.upstream_api_key else {}
        self._voices: list[tuple[str, str]] | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    def auth_for(self, client_authorization: str | None) -> dict[str, str]:
        """The upstream key if one is set, else the client's own Authorization (as the gateway does)."""
        if self.headers or not client_authorization:
            return dict(self.headers)
        return {"authorization": client_authorization}

    async def transcribe(
        self,
        wav: bytes,
        *,
        language: str | None,
        prompt: str | None,
        headers: dict[str, str],
        logprobs: bool = False,
    ) -> AsyncIterator[dict]:
        """The ASR service's SSE events (``transcript.text.delta/segment/done``) while it decodes."""
        data = {"model": self.settings.live_asr_model, "stream": "true", "response_format": "diarized_json"}
        if logprobs:
            data["include[]"] = "logprobs"
        if language:
            data["language"] = language
        if prompt:
            data["prompt"] = prompt
        url = self.settings.asr_url.rstrip("/") + "/v1/audio/transcriptions"
        try:
            async with self.client.stream(
                "POST", url, data=data, files={"file": ("turn.wav", wav, "audio/wav")}, headers=headers
            ) as r:
                await _raise_for(r, "ASR")
                async for line in r.aiter_lines():
                    if line.startswith("data:"):
                        payload = line[5:].strip()
                        if payload and payload != "[DONE]":
                            yield json.loads(payload)
        except httpx.TransportError as exc:
            raise _unavailable("ASR", exc) from exc

    async def speak(self, text: str, voice: str, speed: float, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """Raw PCM16 24 kHz bytes as the TTS service produces them."""
        url = self.settings.tts_url.rstrip("/") + "/v1/audio/speech"
        body = {"model": self.settings.live_tts_model, "input": text, "voice": voice, "response_format": "pcm"}
        if speed != 1.0:
            body["speed"] = speed
        try:
            async with self.client.stream("POST", url, json=body, headers=headers) as r:
                await _raise_for(r, "TTS")
                async for chunk in r.aiter_raw():
                    if chunk:
                        yield chunk
        except httpx.TransportError as exc:
            raise _unavailable("TTS", exc) from exc

    async def voices(self, headers: dict[str, str]) -> list[tuple[str, str]] | None:
        """The TTS service's presets (cached once known); None when it cannot be asked."""
        if self._voices is None:
            try:
                r = await self.client.get(
                    self.settings.tts_url.rstrip("/") + "/v1/audio/voices", headers=headers, timeout=5
                )
                r.raise_for_status()
                self._voices = [(v["id"], v.get("name") or v["id"]) for v in r.json()["voices"]]
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                return None
        return self._voices
