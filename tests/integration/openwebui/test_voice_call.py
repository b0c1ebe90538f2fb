"""A voice call in the real Open WebUI 0.12.4 (its "Bridge") with our stack as the Realtime provider.

Open WebUI keeps its defaults for the call (model gpt-realtime-2.1-mini, voice marin, transcription model
gpt-transcribe): only the provider base URL and key point at our gateway. The chat model is a tiny
OpenAI-compatible stub in this test (the LLM is Open WebUI's business). The test plays the browser:
it connects to Open WebUI's call WebSocket, streams espeak-ng speech, asks for a response, runs the chat
completion through Open WebUI's own API, returns the result and hears the answer.
"""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from websockets.sync.client import connect

from tests.conftest import service_env
from tests.integration.openwebui.test_openwebui import ensure_openwebui
from tests.live.conftest import pcm_of
from tests.support import BIN, ThreadServer, free_port, running, wait_until

KEY = "owui-call-key"
CHAT_MODEL = "stub-chat"
pytestmark = pytest.mark.timeout(1200)


def chat_stub(seen: list[dict]) -> FastAPI:
    """An OpenAI-compatible chat endpoint that answers every request with one fixed-form sentence."""
    app = FastAPI()

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": CHAT_MODEL, "object": "model", "created": 0, "owned_by": "test"}]}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):
        body = await request.json()
        seen.append(body)
        answer = "The answer from the chat model is forty two."
        if body.get("stream"):

            def chunk(delta: dict, finish: str | None) -> str:
                choice = {"index": 0, "delta": delta, "finish_reason": finish}
                body = {"id": "c1", "object": "chat.completion.chunk", "model": CHAT_MODEL, "choices": [choice]}
                return f"data: {json.dumps(body)}\n\n"

            def chunks():
                for piece in (answer[:20], answer[20:]):
                    yield chunk({"content": piece}, None)
                yield chunk({}, "stop")
                yield "data: [DONE]\n\n"

            return StreamingResponse(chunks(), media_type="text/event-stream")
        return JSONResponse(
            {
                "id": "c1",
                "object": "chat.completion",
                "created": 0,
                "model": CHAT_MODEL,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    return app


@pytest.fixture(scope="module")
def call_stack(tiny_models, tmp_path_factory):
    """Gateway + live + ASR + TTS on tiny models (keys on), the chat stub, and Open WebUI wired to them."""
    exe = ensure_openwebui()
    logs = tmp_path_factory.mktemp("call-stack")
    asr, tts, live, gw, ui = (free_port() for _ in range(5))
    common = service_env(tiny_models, VIBEVOICE_API_KEYS=KEY)
    urls = {
        "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{asr}",
        "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{tts}",
        "VIBEVOICE_LIVE_URL": f"http://127.0.0.1:{live}",
    }
    seen: list[dict] = []
    stub = ThreadServer(chat_stub(seen)).start()
    data = tmp_path_factory.mktemp("openwebui-call-data")
    ui_env = {
        "DATA_DIR": str(data),
        "OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        "WEBUI_SECRET_KEY": "test-secret",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_OPENAI_API": "True",
        "OPENAI_API_BASE_URLS": stub.url + "/v1",
        "OPENAI_API_KEYS": "stub-key",
        # Exactly what the README and docker-compose.with-openwebui.yml set for voice calls.
        "AUDIO_REALTIME_ENABLED": "true",
        "AUDIO_REALTIME_OPENAI_API_BASE_URL": f"http://127.0.0.1:{gw}/v1",
        "AUDIO_REALTIME_OPENAI_API_KEY": KEY,
    }
    try:
        with (
            running(
                [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(asr)],
                common,
                logs / "asr.log",
                f"http://127.0.0.1:{asr}/ready",
                timeout=240,
            ),
            running(
                [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(tts)],
                common,
                logs / "tts.log",
                f"http://127.0.0.1:{tts}/ready",
                timeout=240,
            ),
            running(
                [str(BIN / "vibevoice-live"), "--host", "127.0.0.1", "--port", str(live)],
                {**common, **urls},
                logs / "live.log",
                f"http://127.0.0.1:{live}/ready",
                timeout=120,
            ) as live_proc,
            running(
                [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(gw)],
                {**common, **urls},
                logs / "gateway.log",
                f"http://127.0.0.1:{gw}/ready",
            ),
            running(
                [str(exe), "serve", "--host", "127.0.0.1", "--port", str(ui)],
                ui_env,
                data / "openwebui.log",
                f"http://127.0.0.1:{ui}/health",
                timeout=300,
            ) as ui_proc,
        ):
            url = f"http://127.0.0.1:{ui}"
            r = httpx.post(
                url + "/api/v1/auths/signup",
                json={"name": "Admin", "email": "admin@example.com", "password": "Sup3r-secret!"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
            yield {
                "url": url,
                "token": r.json()["token"],
                "live": f"http://127.0.0.1:{live}",
                "live_proc": live_proc,
                "ui_proc": ui_proc,
                "seen": seen,
            }
    finally:
        stub.stop()


class Browser:
    """Open WebUI's call page, reduced to its WebSocket messages."""

    def __init__(self, stack: dict) -> None:
        self._cm = connect(
            stack["url"].replace("http://", "ws://") + "/api/v1/audio/realtime", max_size=None, open_timeout=30
        )
        self.ws = self._cm.__enter__()
        self.events: list[dict] = []

    def send(self, event: dict) -> None:
        self.ws.send(json.dumps(event))

    def recv(self) -> dict:
        event = json.loads(self.ws.recv(timeout=300))
        self.events.append(event)
        assert event["type"] != "bridge.error", event
        return event

    def until(self, kind: str) -> list[dict]:
        got = [self.recv()]
        while got[-1]["type"] != kind:
            got.append(self.recv())
        return got

    def close(self) -> None:
        self._cm.__exit__(None, None, None)


def live_sessions(stack) -> int:
    return httpx.get(stack["live"] + "/ready").json()["sessions"]


def test_voice_call_through_open_webui(call_stack, speech_wav):
    stack = call_stack
    models = httpx.get(
        stack["url"] + "/api/models", headers={"Authorization": f"Bearer {stack['token']}"}, timeout=60
    ).json()
    assert CHAT_MODEL in [m["id"] for m in models["data"]]

    b = Browser(stack)
    b.send({"type": "auth", "token": stack["token"], "model_id": CHAT_MODEL})
    ready = b.recv()
    assert ready == {"type": "bridge.ready", "model": "gpt-realtime-2.1-mini", "voice": "marin", "sample_rate": 24000}

    # The microphone: speech between silences, at most one second per append (Open WebUI's limit).
    audio = b"\0\0" * 9600 + pcm_of(speech_wav) + b"\0\0" * 36000
    for i in range(0, len(audio), 9600):
        b.send({"type": "input_audio_buffer.append", "audio": base64.b64encode(audio[i : i + 9600]).decode()})
    events = b.until("conversation.item.input_audio_transcription.completed")
    kinds = [e["type"] for e in events]
    assert "input_audio_buffer.speech_started" in kinds and "input_audio_buffer.committed" in kinds
    completed = events[-1]
    transcript = completed["transcript"]
    assert transcript.strip()
    deltas = [e["delta"] for e in events if e["type"] == "conversation.item.input_audio_transcription.delta"]
    assert "".join(deltas) == transcript

    # The user's turn is handed to the chat model as a generate_chat_completion call carrying the transcript.
    b.send({"type": "bridge.respond", "item_id": completed["item_id"]})
    events = b.until("response.done")
    call = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert call["type"] == "function_call" and call["name"] == "generate_chat_completion"
    assert call["status"] == "completed"
    assert json.loads(call["arguments"]) == {"request": transcript}
    assert events[-1]["response"]["status"] == "completed"

    # The browser runs the chat completion (Open WebUI → the stub model) and returns its answer.
    r = httpx.post(
        stack["url"] + "/api/chat/completions",
        headers={"Authorization": f"Bearer {stack['token']}"},
        json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": transcript}], "stream": False},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    answer = r.json()["choices"][0]["message"]["content"]
    assert stack["seen"][-1]["messages"][-1]["content"] == transcript
    b.send({"type": "bridge.result", "call_id": call["call_id"], "status": "completed", "answer": answer})
    b.send({"type": "bridge.respond", "call_id": call["call_id"]})
    events = b.until("response.done")
    assert events[-1]["response"]["status"] == "completed"
    pcm = b"".join(base64.b64decode(e["delta"]) for e in events if e["type"] == "response.output_audio.delta")
    samples = np.frombuffer(pcm, dtype="<i2")
    assert samples.size > 2400 and np.abs(samples).max() > 0
    spoken = next(e for e in events if e["type"] == "response.output_audio_transcript.done")["transcript"]
    assert spoken == answer

    # A clean close: Open WebUI closes its provider socket and our session ends.
    assert live_sessions(stack) == 1
    b.close()
    assert wait_until(lambda: live_sessions(stack) == 0)
    assert "Bridge closed" not in stack["ui_proc"].log()
