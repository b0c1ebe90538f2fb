"""The gateway as a user meets it: a real process in front of small upstream services on 127.0.0.1."""

from __future__ import annotations

import io
import json
import threading
import time

import httpx
import openai
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from tests.gateway.fake_upstream import Recorder, fake_service
from tests.support import BIN, ThreadServer, assert_openai_error, free_port, running


@pytest.fixture(scope="module")
def upstreams():
    asr_rec, tts_rec = Recorder(), Recorder()
    asr = ThreadServer(fake_service("asr", "vibevoice-asr", asr_rec)).start()
    tts = ThreadServer(fake_service("tts", "vibevoice-realtime", tts_rec)).start()
    yield {"asr": asr, "tts": tts, "asr_rec": asr_rec, "tts_rec": tts_rec}
    asr.stop()
    tts.stop()


def start_gateway(tmp_path, env: dict[str, str]):
    port = free_port()
    return running(
        [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(port)],
        {"VIBEVOICE_LOG_FORMAT": "text", **env},
        tmp_path / f"gateway-{port}.log",
        f"http://127.0.0.1:{port}/health",
    ), f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def gateway(upstreams, tmp_path_factory):
    ctx, url = start_gateway(
        tmp_path_factory.mktemp("gw"),
        {
            "VIBEVOICE_ASR_URL": upstreams["asr"].url,
            "VIBEVOICE_TTS_URL": upstreams["tts"].url,
            "VIBEVOICE_MAX_UPLOAD_MB": "2",
        },
    )
    with ctx:
        yield url


@pytest.fixture()
def client(gateway):
    return openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0, timeout=20)


def test_speech_reaches_tts_with_aliases(client, upstreams):
    for model in ("vibevoice-realtime", "tts-1", "gpt-4o-mini-tts"):
        upstreams["tts_rec"].release.set()
        audio = client.audio.speech.create(model=model, voice="carter", input="hello")
        assert audio.content == b"first-chunk|chunk0|chunk1|chunk2|"
        assert upstreams["tts_rec"].requests[-1]["body"]["model"] == model  # body forwarded unchanged


def test_transcription_reaches_asr_with_aliases(client, upstreams):
    for model in ("vibevoice-asr", "whisper-1", "gpt-4o-transcribe"):
        res = client.audio.transcriptions.create(model=model, file=("a.wav", b"x" * 1000, "audio/wav"))
        assert res.text.startswith("asr received")
    res = client.audio.translations.create(model="whisper-1", file=("a.wav", b"y" * 10, "audio/wav"))
    assert upstreams["asr_rec"].requests[-1]["path"] == "translations"
    assert res.text.startswith("asr received")


def test_unknown_model_is_404_and_wrong_kind_is_400(client, gateway):
    with pytest.raises(openai.NotFoundError) as e:
        client.audio.speech.create(model="nope-model", voice="carter", input="hi")
    err = assert_openai_error(e.value.response.json())
    assert err["code"] == "model_not_found" and err["param"] == "model"
    assert "vibevoice-realtime" in err["message"]
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.speech.create(model="whisper-1", voice="carter", input="hi")
    assert assert_openai_error(e.value.response.json())["param"] == "model"
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model="nope", file=("a.wav", b"x", "audio/wav"))


def test_upstream_error_passes_through(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.speech.create(model="tts-1", voice="carter", input="error")
    assert assert_openai_error(e.value.response.json())["param"] == "voice"


def test_invalid_json_is_openai_400(gateway):
    r = httpx.post(gateway + "/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert assert_openai_error(r.json(), "invalid_request_error")["code"] == "invalid_json"
    r = httpx.post(gateway + "/v1/audio/speech", json=[1, 2])
    assert r.status_code == 400
    r = httpx.post(gateway + "/v1/audio/speech", json={"model": 5, "input": "x"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "model"


def test_models_merged_and_discovery(client, gateway):
    ids = {m.id for m in client.models.list()}
    assert ids == {"vibevoice-asr", "vibevoice-realtime"}
    assert client.models.retrieve("vibevoice-asr").id == "vibevoice-asr"
    assert client.models.retrieve("whisper-1").id == "vibevoice-asr"
    r = httpx.get(gateway + "/v1/audio/models")
    assert r.json() == {"models": [{"id": "vibevoice-realtime", "name": "vibevoice-realtime"}]}
    assert {m["id"] for m in httpx.get(gateway + "/v1/audio/models?kind=all").json()["models"]} == ids
    voices = httpx.get(gateway + "/v1/audio/voices").json()["voices"]
    assert voices[0]["id"] == "en-Carter_man"
    r = httpx.get(gateway + "/v1/models/unknown-thing")
    assert r.status_code == 404
    assert_openai_error(r.json())


def test_openapi_documents_real_schemas(gateway):
    spec = httpx.get(gateway + "/openapi.json").json()
    body = spec["paths"]["/v1/audio/speech"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/SpeechRequest"}
    assert "input" in spec["components"]["schemas"]["SpeechRequest"]["properties"]
    form = spec["paths"]["/v1/audio/transcriptions"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "file" in form["properties"] and "timestamp_granularities[]" in form["properties"]
    assert httpx.get(gateway + "/docs").status_code == 200
    assert httpx.get(gateway + "/redoc").status_code == 200


def test_streaming_first_chunk_before_upstream_finishes(gateway, upstreams):
    rec = upstreams["tts_rec"]
    rec.release.clear()
    rec.finished.clear()
    with httpx.stream(
        "POST", gateway + "/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "carter"}, timeout=20
    ) as r:
        it = r.iter_raw()
        first = next(it)
        # The upstream is still holding the rest of its body: nothing was buffered.
        assert first == b"first-chunk|"
        assert not rec.finished.is_set()
        rec.release.set()
        rest = b"".join(it)
    assert rest == b"chunk0|chunk1|chunk2|"
    assert rec.finished.is_set()


def test_client_disconnect_mid_stream_cancels_upstream(gateway, upstreams):
    rec = upstreams["tts_rec"]
    rec.release.clear()
    rec.cancelled.clear()
    rec.finished.clear()
    with httpx.stream(
        "POST", gateway + "/v1/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "carter"}, timeout=20
    ) as r:
        assert next(r.iter_raw()) == b"first-chunk|"
    # The client is gone; the upstream generator must be cancelled, not run to the end.
    assert rec.cancelled.wait(10)
    assert not rec.finished.is_set()
    rec.release.set()


def test_client_disconnect_while_service_works_cancels_upstream(gateway, upstreams):
    rec = upstreams["asr_rec"]
    rec.cancelled.clear()
    n = len(rec.requests)

    def go():
        try:
            httpx.post(
                gateway + "/v1/audio/transcriptions",
                files={"file": ("a.wav", b"z" * 100)},
                data={"model": "whisper-1"},
                headers={"x-test-wait": "1"},
                timeout=0.5,
            )
        except httpx.TimeoutException:
            pass

    t = threading.Thread(target=go)
    t.start()
    t.join(5)
    assert rec.cancelled.wait(10), "upstream never saw the client go away"
    assert len(rec.requests) == n + 1


def test_streaming_upload_is_not_buffered(gateway, upstreams):
    """A 1.5 MB body sent in pieces arrives upstream in pieces (the gateway did not collect it first)."""
    rec = upstreams["asr_rec"]
    boundary = "b0undary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper-1\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()

    def body():
        yield head
        for _ in range(24):
            yield b"a" * 65536
            time.sleep(0.01)
        yield tail

    r = httpx.post(
        gateway + "/v1/audio/transcriptions",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=20,
    )
    assert r.status_code == 200, r.text
    last = rec.requests[-1]
    assert last["size"] == len(head) + 24 * 65536 + len(tail)
    assert last["chunks"] > 4


def test_body_limit_413(gateway):
    r = httpx.post(gateway + "/v1/audio/transcriptions", files={"file": ("a.wav", b"x" * (3 * 2**20))}, timeout=20)
    assert r.status_code == 413
    assert assert_openai_error(r.json())["code"] == "request_too_large"

    def chunked():
        for _ in range(48):
            yield b"x" * 65536

    r = httpx.post(
        gateway + "/v1/audio/transcriptions",
        content=chunked(),
        headers={"content-type": "multipart/form-data; boundary=zz"},
        timeout=20,
    )
    assert r.status_code == 413
    assert_openai_error(r.json())


def test_request_id_reaches_service(gateway, upstreams):
    r = httpx.post(
        gateway + "/v1/audio/transcriptions", files={"file": ("a.wav", b"x")}, headers={"x-request-id": "trace-123"}
    )
    assert r.headers["x-request-id"] == "trace-123"
    assert upstreams["asr_rec"].requests[-1]["headers"]["x-request-id"] == "trace-123"


def test_without_v1_prefix_still_works(gateway, upstreams):
    upstreams["tts_rec"].release.set()
    r = httpx.post(gateway + "/audio/speech", json={"model": "tts-1", "input": "hi", "voice": "carter"})
    assert r.status_code == 200
    assert httpx.get(gateway + "/models").json()["data"]


def test_ready_and_health(gateway, upstreams):
    assert httpx.get(gateway + "/health").json()["status"] == "ok"
    r = httpx.get(gateway + "/ready")
    assert r.status_code == 200 and r.json()["services"]["asr"]["ready"]
    # The live service (realtime sessions; none runs beside this gateway) is reported, and does not gate readiness.
    assert r.json()["services"]["live"]["optional"] is True
    assert "live" in httpx.get(gateway + "/").json()["services"]
    upstreams["asr_rec"].ready = False
    try:
        r = httpx.get(gateway + "/ready")
        assert r.status_code == 503
        assert r.json()["services"]["asr"]["ready"] is False and r.json()["services"]["tts"]["ready"] is True
    finally:
        upstreams["asr_rec"].ready = True
    assert "vibevoice_http_requests_total" in httpx.get(gateway + "/metrics").text


def test_realtime_websocket_relay(gateway):
    with ws_connect(gateway.replace("http", "ws") + "/v1/realtime?model=vibevoice-realtime", open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=10))
        assert first == {"type": "session.created", "model": "vibevoice-realtime"}
        ws.send(json.dumps({"type": "session.update"}))
        assert json.loads(ws.recv(timeout=10))["got"]["type"] == "session.update"


def test_upstream_down_is_503_and_one_down_still_lists_other(upstreams, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    ctx, url = start_gateway(tmp_path, {"VIBEVOICE_ASR_URL": dead, "VIBEVOICE_TTS_URL": upstreams["tts"].url})
    with ctx:
        c = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=20)
        with pytest.raises(openai.InternalServerError) as e:
            c.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"x", "audio/wav"))
        assert e.value.response.status_code == 503
        assert e.value.response.headers["retry-after"]
        assert_openai_error(e.value.response.json(), "server_error")
        assert {m.id for m in c.models.list()} == {"vibevoice-realtime", "vibevoice-asr"} or {
            m.id for m in c.models.list()
        } >= {"vibevoice-realtime"}
        r = httpx.get(url + "/ready")
        assert r.status_code == 503 and r.json()["services"]["asr"]["status"] == "unreachable"


def test_upstream_timeout_is_504(upstreams, tmp_path):
    ctx, url = start_gateway(
        tmp_path,
        {
            "VIBEVOICE_ASR_URL": upstreams["asr"].url,
            "VIBEVOICE_TTS_URL": upstreams["tts"].url,
            "VIBEVOICE_TTS_TIMEOUT": "0.5",
        },
    )
    with ctx:
        r = httpx.post(
            url + "/v1/audio/speech", json={"model": "tts-1", "input": "slow", "voice": "carter"}, timeout=20
        )
        assert r.status_code == 504
        assert "retry-after" in r.headers
        assert_openai_error(r.json(), "server_error")


def test_api_keys(upstreams, tmp_path):
    ctx, url = start_gateway(
        tmp_path,
        {
            "VIBEVOICE_ASR_URL": upstreams["asr"].url,
            "VIBEVOICE_TTS_URL": upstreams["tts"].url,
            "VIBEVOICE_API_KEYS": "key-one, key-two",
        },
    )
    with ctx as proc:
        upstreams["tts_rec"].release.set()
        for key in ("key-one", "key-two"):
            c = openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0, timeout=20)
            assert c.audio.speech.create(model="tts-1", voice="carter", input="hi").content
        bad = openai.OpenAI(base_url=url + "/v1", api_key="key-three", max_retries=0, timeout=20)
        with pytest.raises(openai.AuthenticationError) as e:
            bad.audio.transcriptions.create(model="whisper-1", file=("a.wav", b"x", "audio/wav"))
        assert assert_openai_error(e.value.response.json())["code"] == "invalid_api_key"
        r = httpx.post(url + "/v1/audio/speech", json={"input": "hi"})
        assert r.status_code == 401 and r.json()["error"]["code"] == "missing_api_key"
        # Discovery stays public for Open WebUI, which calls it without a key.
        assert httpx.get(url + "/v1/audio/voices").status_code == 200
        assert httpx.get(url + "/v1/audio/models").status_code == 200
        assert httpx.get(url + "/health").status_code == 200
        # The websocket needs the key too.
        with pytest.raises(InvalidStatus):
            with ws_connect(url.replace("http", "ws") + "/v1/realtime", open_timeout=5) as ws:
                ws.recv(timeout=5)
        with ws_connect(
            url.replace("http", "ws") + "/v1/realtime",
            open_timeout=5,
            additional_headers={"Authorization": "Bearer key-two"},
        ) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "session.created"
        log = proc.log()
        assert "key-one" not in log and "key-three" not in log


def test_cors(upstreams, tmp_path):
    ctx, url = start_gateway(
        tmp_path,
        {
            "VIBEVOICE_TTS_URL": upstreams["tts"].url,
            "VIBEVOICE_ASR_URL": "",
            "VIBEVOICE_CORS_ORIGINS": "http://ui.example",
        },
    )
    with ctx:
        r = httpx.options(
            url + "/v1/audio/speech", headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "POST"}
        )
        assert r.headers["access-control-allow-origin"] == "http://ui.example"
        r = httpx.post(url + "/v1/audio/transcriptions", files={"file": ("a.wav", b"x")})
        assert r.status_code == 503 and r.json()["error"]["code"] == "service_not_configured"


def test_multipart_body_forwarded_whole(client, upstreams):
    client.audio.transcriptions.create(
        model="whisper-1", file=("clip.webm", io.BytesIO(b"\x1a\x45\xdf\xa3" * 10), "audio/webm")
    )
    last = upstreams["asr_rec"].requests[-1]
    assert last["size"] == int(last["headers"]["content-length"]) > 40
    assert last["headers"]["content-type"].startswith("multipart/form-data; boundary=")


def test_client_disconnect_mid_upload_reaches_the_service(gateway, upstreams):
    """A client that vanishes halfway through a chunked upload: the service's request ends too (no hang)."""
    import socket

    rec = upstreams["asr_rec"]
    rec.cancelled.clear()
    rec.upload_started.clear()
    host, port = gateway.replace("http://", "").split(":")
    head = (
        "POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "Content-Type: multipart/form-data; boundary=zz\r\n\r\n"
    )
    part = b'--zz\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n' + b"a" * 50_000
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(head.encode() + f"{len(part):x}\r\n".encode() + part + b"\r\n")
        assert rec.upload_started.wait(60), "the gateway never started forwarding"  # far from complete
    assert rec.cancelled.wait(10), "the service never learned that the upload was abandoned"
