"""The TTS service as a user meets it: the real `vibevoice-tts` process on a tiny model, the `openai` client."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from websockets.sync.client import connect as ws_connect

from tests.conftest import service_env
from tests.support import BIN, assert_openai_error, free_port, running

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm;rate=24000;channels=1",
}
CODECS = {"mp3": "mp3", "opus": "opus", "aac": "aac", "flac": "flac", "wav": "pcm_s16le"}


@pytest.fixture(scope="module")
def tts(tiny_models, tmp_path_factory):
    port = free_port()
    logs = tmp_path_factory.mktemp("tts")
    voices = tiny_models / "voices" / "streaming_model"
    with running(
        [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(port)],
        service_env(tiny_models),
        logs / "tts.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=240,
    ) as proc:
        yield {"url": f"http://127.0.0.1:{port}", "proc": proc, "voices": voices}


@pytest.fixture()
def client(tts):
    return openai.OpenAI(base_url=tts["url"] + "/v1", api_key="none", max_retries=0, timeout=120)


def decode(data: bytes, tmp: Path, fmt: str) -> tuple[dict, np.ndarray]:
    path = tmp / f"a.{fmt}"
    path.write_bytes(data)
    args = ["-f", "s16le", "-ar", "24000", "-ac", "1"] if fmt == "pcm" else []
    info = {}
    if fmt != "pcm":
        info = json.loads(
            subprocess.run(
                ["ffprobe", "-v", "error", "-show_streams", "-of", "json", str(path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )["streams"][0]
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", *args, "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", "24000", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return info, np.frombuffer(pcm, dtype="<f4")


@pytest.mark.parametrize("fmt", list(CONTENT_TYPES))
def test_every_format_is_valid_audio(client, fmt, tmp_path):
    with client.audio.speech.with_streaming_response.create(
        model="vibevoice-realtime", voice="carter", input="Hello world.", response_format=fmt
    ) as r:
        assert r.headers["content-type"] == CONTENT_TYPES[fmt]
        data = r.read()
    info, samples = decode(data, tmp_path, fmt)
    if fmt != "pcm":
        assert info["codec_name"] == CODECS[fmt]
        assert int(info["sample_rate"]) == (48000 if fmt == "opus" else 24000)
        assert info["channels"] == 1
    assert samples.size > 2400 and np.isfinite(samples).all()


def test_default_format_is_mp3_and_extra_fields_accepted(tts):
    r = httpx.post(
        tts["url"] + "/v1/audio/speech",
        json={"model": "tts-1", "input": "Hi.", "voice": "alloy", "admin_param": {"x": 1}, "temperature": 0.3},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "audio/mpeg"


def test_streams_several_chunks(tts):
    with httpx.stream(
        "POST",
        tts["url"] + "/v1/audio/speech",
        timeout=120,
        json={"input": "One sentence here. And another sentence there.", "voice": "carter", "response_format": "pcm"},
    ) as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        chunks = [c for c in r.iter_raw() if c]
    assert len(chunks) >= 2


def test_sse_events(tts):
    with httpx.stream(
        "POST",
        tts["url"] + "/v1/audio/speech",
        timeout=120,
        json={
            "input": "Server sent events, please.",
            "voice": "carter",
            "response_format": "pcm",
            "stream_format": "sse",
        },
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    types = [e["type"] for e in events]
    assert types[-1] == "speech.audio.done" and types.count("speech.audio.done") == 1
    assert types[:-1] and set(types[:-1]) == {"speech.audio.delta"}
    assert len(types) >= 3  # several audio deltas arrive before the end
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    assert len(pcm) % 2 == 0 and len(pcm) > 0
    usage = events[-1]["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"] and usage["output_tokens"] > 0


@pytest.mark.parametrize("voice", ["en-Carter_man", "carter", "CARTER", "Emma", "alloy", "echo", "shimmer"])
def test_voice_name_forms(client, voice):
    r = client.audio.speech.create(model="vibevoice-realtime", voice=voice, input="Voice test.", response_format="wav")
    assert r.content[:4] == b"RIFF"


def test_voice_object_form(tts):
    r = httpx.post(
        tts["url"] + "/v1/audio/speech", json={"input": "Object voice.", "voice": {"id": "en-Emma_woman"}}, timeout=120
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-vibevoice-voice"] == "en-Emma_woman"


def test_voices_listing(tts):
    voices = httpx.get(tts["url"] + "/v1/audio/voices").json()["voices"]
    ids = {v["id"] for v in voices}
    assert ids == {p.stem for p in tts["voices"].glob("*.pt")} - {"evil"}
    carter = next(v for v in voices if v["id"] == "en-Carter_man")
    assert carter["name"] == "Carter" and carter["language"] == "en" and carter["gender"] == "man"


@pytest.mark.parametrize(
    ("body", "param", "status"),
    [
        ({"input": ""}, "input", 400),
        ({"input": "   "}, "input", 400),
        ({"input": "x" * 4097}, "input", 400),
        ({"input": "hi", "voice": "nobody"}, "voice", 400),
        ({"input": "hi", "voice": "../../etc/passwd"}, "voice", 400),
        ({"input": "hi", "voice": "en-Carter_man\x00.pt"}, "voice", 400),
        ({"input": "hi", "response_format": "ogg"}, "response_format", 400),
        ({"input": "hi", "speed": 5}, "speed", 400),
        ({"input": "hi", "speed": 0.1}, "speed", 400),
        ({"input": "hi", "stream_format": "video"}, "stream_format", 400),
        ({"input": "hi", "model": "speechify-9000"}, "model", 404),  # tts-* would match a pattern
        ({"voice": "carter"}, "input", 400),
        ({"input": 42}, "input", 400),
    ],
)
def test_invalid_fields(tts, body, param, status):
    r = httpx.post(tts["url"] + "/v1/audio/speech", json=body, timeout=60)
    assert r.status_code == status, r.text
    err = assert_openai_error(r.json())
    assert err["param"] == param
    if param == "voice" and body.get("voice") == "nobody":
        assert "en-Carter_man" in err["message"]


def test_invalid_json(tts):
    r = httpx.post(tts["url"] + "/v1/audio/speech", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert_openai_error(r.json())


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_speed_changes_duration(client, speed, tmp_path):
    text = "The quick brown fox jumps over the lazy dog."
    base = client.audio.speech.create(model="tts-1", voice="carter", input=text, response_format="pcm").content
    fast = client.audio.speech.create(
        model="tts-1", voice="carter", input=text, response_format="pcm", speed=speed
    ).content
    ratio = len(fast) / len(base)
    assert abs(ratio - 1 / speed) < 0.05 / speed, ratio


def test_malicious_voice_preset_is_refused(tiny_models, tmp_path):
    """A preset whose pickle tries to run code is refused (and logged), the rest keep working."""
    models = tmp_path / "models"
    subprocess.run(["cp", "-r", str(tiny_models), str(models)], check=True)
    marker = tmp_path / "pwned"
    evil = models / "voices" / "streaming_model" / "en-Evil_man.pt"
    _write_evil_pickle(evil, marker)
    port = free_port()
    with running(
        [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(port)],
        service_env(models),
        tmp_path / "tts.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=240,
    ) as proc:
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/audio/speech", json={"input": "hi", "voice": "en-Evil_man"}, timeout=60
        )
        assert r.status_code >= 400
        assert_openai_error(r.json())
        assert not marker.exists()
        assert "en-Evil_man" in proc.log()
        ok = httpx.post(f"http://127.0.0.1:{port}/v1/audio/speech", json={"input": "hi", "voice": "carter"}, timeout=60)
        assert ok.status_code == 200


def _write_evil_pickle(path: Path, marker: Path) -> None:
    import pickle
    import zipfile

    class Evil:
        def __reduce__(self):
            return (subprocess.call, (["touch", str(marker)],))

    payload = pickle.dumps({"lm": Evil()}, protocol=2)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", payload)
        z.writestr("archive/version", "3\n")


def test_realtime_websocket_like_open_webui(tts):
    url = tts["url"].replace("http", "ws") + "/v1/realtime?model=vibevoice-realtime"
    with ws_connect(url, open_timeout=10) as ws:
        first = json.loads(ws.recv(timeout=30))
        assert first["type"] == "session.created"
        ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        "type": "realtime",
                        "output_modalities": ["audio"],
                        "audio": {
                            "input": {"turn_detection": None, "transcription": None},
                            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "carter"},
                        },
                        "tools": [],
                        "tool_choice": "none",
                        "instructions": "Read aloud.",
                    },
                }
            )
        )
        assert json.loads(ws.recv(timeout=30))["type"] == "session.updated"
        ws.send(
            json.dumps(
                {
                    "type": "response.create",
                    "response": {
                        "conversation": "none",
                        "output_modalities": ["audio"],
                        "instructions": "Read aloud.",
                        "input": [
                            {
                                "type": "message",
                                "role": "user",
                                "content": [{"type": "input_text", "text": "Hello from the realtime socket."}],
                            }
                        ],
                    },
                }
            )
        )
        created = json.loads(ws.recv(timeout=60))
        assert created["type"] == "response.created"
        rid = created["response"]["id"]
        pcm = bytearray()
        while True:
            ev = json.loads(ws.recv(timeout=120))
            if ev["type"] == "response.output_audio.delta":
                assert ev["response_id"] == rid
                pcm.extend(base64.b64decode(ev["delta"]))
            elif ev["type"] == "response.done":
                assert ev["response"]["id"] == rid and ev["response"]["status"] == "completed"
                break
    assert len(pcm) > 4800 and len(pcm) % 2 == 0


def test_realtime_rejects_unknown_voice_and_model(tts):
    with ws_connect(tts["url"].replace("http", "ws") + "/v1/realtime?model=nope", open_timeout=10) as ws:
        ev = json.loads(ws.recv(timeout=10))
        assert ev["type"] == "error" and ev["error"]["code"] == "model_not_found"
    with ws_connect(tts["url"].replace("http", "ws") + "/v1/realtime", open_timeout=10) as ws:
        json.loads(ws.recv(timeout=10))
        ws.send(json.dumps({"type": "session.update", "session": {"audio": {"output": {"voice": "nobody"}}}}))
        ev = json.loads(ws.recv(timeout=10))
        assert ev["type"] == "error" and ev["error"]["param"] == "voice"


def test_metrics(tts):
    text = httpx.get(tts["url"] + "/metrics").text
    for name in (
        "vibevoice_tts_time_to_first_audio_seconds",
        "vibevoice_tts_real_time_factor",
        "vibevoice_tts_queue_depth",
    ):
        assert name in text


def test_realtime_items_of_the_wrong_shape_are_errors_and_the_session_goes_on(tts):
    """Found by `make fuzz`: an item whose `content` was not a list ended the session with an exception."""
    with ws_connect(tts["url"].replace("http", "ws") + "/v1/realtime", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"
        for content in (1.5, "text", {"type": "input_text"}, None, [1, None, {"type": "input_text", "text": 3}]):
            item = {"type": "message", "role": "user", "content": content}
            ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
            ev = json.loads(ws.recv(timeout=10))
            assert ev["type"] == "error" and ev["error"]["code"] == "unsupported_item", ev
        bad = [
            {"type": "session.update", "session": {"audio": 5}},
            {"type": "session.update", "session": {"audio": {"output": [1]}}},
            {"type": "session.update", "session": {"audio": {"output": {"format": {"rate": float("inf")}}}}},
            {"type": "session.update", "session": {"audio": {"output": {"speed": {"a": 1}}}}},
            {"type": "response.create", "response": {"input": 5}},
            {"type": "response.create", "response": {"input": "text"}},
        ]
        for event in bad:
            ws.send(json.dumps(event))  # float("inf") goes as Infinity, which Python's json reads
            ev = json.loads(ws.recv(timeout=10))
            assert ev["type"] == "error" and ev["error"]["type"] == "invalid_request_error", (event, ev)
        item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Still here."}]}
        ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        assert json.loads(ws.recv(timeout=10))["type"] == "conversation.item.created"
