"""What a client of the ASR service sees when its vLLM server refuses: the real `vibevoice-asr` process in front
of a stand-in that answers like vLLM does (health, model list) and then refuses every generation as told."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse, StreamingResponse

from tests.conftest import service_env
from tests.support import BIN, ThreadServer, assert_openai_error, free_port, running

REFUSALS = {
    "overloaded": (429, {"retry-after": "7"}, "Too many requests in flight"),
    "restarting": (503, {}, "The engine is restarting"),
    "too_long": (400, {}, "This model's maximum context length is 65536 tokens"),
}


def fake_vllm(state: dict) -> FastAPI:
    app = FastAPI()

    @app.get("/health")
    async def health():
        return JSONResponse({}, status_code=200)

    @app.get("/v1/models")
    async def models():
        return {"data": [{"id": "vibevoice-asr", "max_model_len": 65536}]}

    @app.post("/v1/chat/completions")
    async def chat(body: dict):
        state["bodies"].append(body)
        if state["mode"] == "dies_mid_stream":

            async def events():
                token = {"token": "token_id:15", "logprob": -0.5}
                yield f"data: {json.dumps({'choices': [{'logprobs': {'content': [token]}}]})}\n\n"
                yield f"data: {json.dumps({'error': {'message': 'EngineCore died', 'code': 500}})}\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        status, headers, message = REFUSALS[state["mode"]]
        return JSONResponse({"error": {"message": message, "code": status}}, status_code=status, headers=headers)

    return app


@pytest.fixture(scope="module")
def stack(tiny_asr_models, tmp_path_factory):
    state = {"mode": "overloaded", "bodies": []}
    upstream = ThreadServer(fake_vllm(state)).start()
    port = free_port()
    env = service_env(
        tiny_asr_models,
        VIBEVOICE_ASR_BACKEND="vllm",
        VIBEVOICE_ASR_VLLM_URL=upstream.url,
        VIBEVOICE_WARMUP="false",
    )
    with running(
        [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path_factory.mktemp("asr") / "asr.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=120,
    ) as proc:
        yield {"url": f"http://127.0.0.1:{port}", "state": state, "proc": proc}
    upstream.stop()


def _post(stack, speech_wav, **fields) -> httpx.Response:
    return httpx.post(
        stack["url"] + "/v1/audio/transcriptions",
        files={"file": ("a.wav", speech_wav.read_bytes())},
        data={"model": "vibevoice-asr", **fields},
        timeout=60,
    )


def test_overloaded_vllm_is_429_with_its_retry_after(stack, speech_wav):
    stack["state"]["mode"] = "overloaded"
    r = _post(stack, speech_wav)
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert "overloaded" in assert_openai_error(r.json(), "rate_limit_error")["message"]


def test_restarting_vllm_is_503_with_retry_after(stack, speech_wav):
    stack["state"]["mode"] = "restarting"
    r = _post(stack, speech_wav)
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
    assert assert_openai_error(r.json(), "server_error")["code"] == "backend_unavailable"


def test_refused_audio_is_400_on_file(stack, speech_wav):
    stack["state"]["mode"] = "too_long"
    r = _post(stack, speech_wav)
    assert r.status_code == 400
    assert assert_openai_error(r.json(), "invalid_request_error")["param"] == "file"


def test_a_server_dying_mid_stream_ends_the_sse_with_an_error_event(stack, speech_wav):
    stack["state"]["mode"] = "dies_mid_stream"
    r = _post(stack, speech_wav, stream="true")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "backend_unavailable"
    assert "Traceback" not in stack["proc"].log()


def test_the_request_vllm_gets(stack, speech_wav):
    """Our prompt around one audio part (an exact float WAV), token ids with logprobs, the duration filled in."""
    stack["state"]["mode"] = "overloaded"
    stack["state"]["bodies"].clear()
    _post(stack, speech_wav, language="en", prompt="Ana")
    body = stack["state"]["bodies"][-1]
    before, audio, after = body["messages"][0]["content"]
    assert before["text"].startswith("<|im_start|>system\n") and before["text"].endswith("<|im_start|>user\n")
    assert audio["type"] == "input_audio" and audio["input_audio"]["format"] == "wav"
    assert "<|AUDIO_DURATION|>" not in after["text"] and " seconds audio, with extra info: Ana" in after["text"]
    assert body["logprobs"] is True and body["return_tokens_as_token_ids"] is True and body["stream"] is True
    assert body["temperature"] == 0.0
