"""The real Open WebUI (PyPI `open-webui`, its own cached venv) using our stack for speech and microphone.

Everything goes through Open WebUI's own API (`/api/v1/audio/...`), the way its browser UI calls it.
Open WebUI starts offline on 127.0.0.1; our gateway + ASR + TTS run on tiny random models with API keys on.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import service_env
from tests.support import BIN, REPO, free_port, running

OPENWEBUI_VERSION = "0.12.4"
VENV = REPO / ".cache" / "openwebui-venv"
KEY = "owui-test-key"
pytestmark = pytest.mark.timeout(900)


def ensure_openwebui() -> Path:
    """Open WebUI in its own venv (torch pinned to the local CPU build first); cached across runs."""
    exe = VENV / "bin" / "open-webui"
    if exe.exists():
        return exe
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = [str(VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=600)
    subprocess.run([*pip, "torch==2.13.0"], check=True, timeout=900)
    subprocess.run([*pip, f"open-webui=={OPENWEBUI_VERSION}"], check=True, timeout=1200)
    return exe


@pytest.fixture(scope="module")
def stack(tiny_models, tmp_path_factory):
    """Gateway + ASR + TTS on tiny models, API keys required."""
    logs = tmp_path_factory.mktemp("stack")
    asr_port, tts_port, gw_port = free_port(), free_port(), free_port()
    common = service_env(tiny_models, VIBEVOICE_API_KEYS=KEY)
    with (
        running(
            [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(asr_port)],
            common,
            logs / "asr.log",
            f"http://127.0.0.1:{asr_port}/ready",
            timeout=180,
        ),
        running(
            [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(tts_port)],
            common,
            logs / "tts.log",
            f"http://127.0.0.1:{tts_port}/ready",
            timeout=180,
        ),
        running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(gw_port)],
            {
                **common,
                "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{asr_port}",
                "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{tts_port}",
            },
            logs / "gateway.log",
            f"http://127.0.0.1:{gw_port}/ready",
        ) as gw,
    ):
        yield {"base": f"http://127.0.0.1:{gw_port}/v1", "gateway": gw}


@pytest.fixture(scope="module")
def webui(stack, tmp_path_factory):
    exe = ensure_openwebui()
    data = tmp_path_factory.mktemp("openwebui-data")
    port = free_port()
    env = {
        "DATA_DIR": str(data),
        "OFFLINE_MODE": "true",
        "HF_HUB_OFFLINE": "1",
        "WEBUI_SECRET_KEY": "test-secret",
        "ENABLE_PERSISTENT_CONFIG": "False",
        "ENABLE_OLLAMA_API": "False",
        "ENABLE_OPENAI_API": "False",
        # Exactly the variables the README and docker-compose.with-openwebui.yml give.
        "AUDIO_TTS_ENGINE": "openai",
        "AUDIO_TTS_OPENAI_API_BASE_URL": stack["base"],
        "AUDIO_TTS_OPENAI_API_KEY": KEY,
        "AUDIO_TTS_MODEL": "vibevoice-realtime",
        "AUDIO_TTS_VOICE": "carter",
        "AUDIO_STT_ENGINE": "openai",
        "AUDIO_STT_OPENAI_API_BASE_URL": stack["base"],
        "AUDIO_STT_OPENAI_API_KEY": KEY,
        "AUDIO_STT_MODEL": "vibevoice-asr",
    }
    with running(
        [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env,
        data / "openwebui.log",
        f"http://127.0.0.1:{port}/health",
        timeout=240,
    ) as proc:
        url = f"http://127.0.0.1:{port}"
        r = httpx.post(
            url + "/api/v1/auths/signup",
            json={"name": "Admin", "email": "admin@example.com", "password": "Sup3r-secret!"},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        client = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {r.json()['token']}"}, timeout=120)
        yield {"client": client, "proc": proc}
        client.close()


def update_config(client: httpx.Client, **changes: dict) -> dict:
    cfg = client.get("/api/v1/audio/config").json()
    for section, values in changes.items():
        cfg[section].update(values)
    r = client.post("/api/v1/audio/config/update", json={"tts": cfg["tts"], "stt": cfg["stt"]})
    assert r.status_code == 200, r.text
    return cfg


def ffprobe(data: bytes, tmp_path: Path, name: str) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(
        [
            shutil.which("ffprobe") or "ffprobe",
            "-v",
            "error",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out)


def test_voices_and_models_come_from_our_server(webui, tiny_models):
    c = webui["client"]
    voices = c.get("/api/v1/audio/voices").json()["voices"]
    ids = {v["id"] for v in voices}
    presets = {p.stem for p in (tiny_models / "voices" / "streaming_model").glob("*.pt")}
    assert ids == presets, voices
    assert not ids & {"alloy", "echo", "fable", "onyx", "nova", "shimmer"}
    models = c.get("/api/v1/audio/models").json()["models"]
    assert [m["id"] for m in models] == ["vibevoice-realtime"]


@pytest.mark.parametrize("voice", ["carter", "en-Emma_woman", "alloy"])
def test_read_aloud_returns_playable_audio(webui, voice, tmp_path):
    r = webui["client"].post("/api/v1/audio/speech", json={"input": f"Hello from {voice}.", "voice": voice})
    assert r.status_code == 200, r.text
    info = ffprobe(r.content, tmp_path, "speech.mp3")
    assert info["streams"][0]["codec_name"] == "mp3"
    assert float(info["format"]["duration"]) > 0.1


@pytest.mark.parametrize("fmt", ["wav", "opus", "flac", "aac", "pcm"])
def test_read_aloud_with_admin_chosen_format(webui, fmt, tmp_path):
    c = webui["client"]
    update_config(c, tts={"OPENAI_PARAMS": {"response_format": fmt, "speed": 1.25}})
    try:
        r = c.post("/api/v1/audio/speech", json={"input": f"Format {fmt}.", "voice": "carter"})
        assert r.status_code == 200, r.text
        info = ffprobe(r.content, tmp_path, "speech.bin")
        assert float(info["format"]["duration"]) > 0.1
    finally:
        update_config(c, tts={"OPENAI_PARAMS": {}})


@pytest.mark.parametrize("fixture", ["speech_webm", "speech_wav"])
def test_microphone_transcription_multipart(webui, fixture, request):
    path: Path = request.getfixturevalue(fixture)
    ctype = "audio/webm" if path.suffix == ".webm" else "audio/wav"
    r = webui["client"].post("/api/v1/audio/transcriptions", files={"file": (path.name, path.read_bytes(), ctype)})
    assert r.status_code == 200, r.text
    assert isinstance(r.json()["text"], str)


def test_microphone_transcription_json_request_format(webui, speech_webm):
    c = webui["client"]
    update_config(c, stt={"OPENAI_API_REQUEST_FORMAT": "json"})
    try:
        r = c.post(
            "/api/v1/audio/transcriptions",
            files={"file": ("rec.webm", speech_webm.read_bytes(), "audio/webm")},
            data={"language": "en"},
        )
        assert r.status_code == 200, r.text
        assert isinstance(r.json()["text"], str)
    finally:
        update_config(c, stt={"OPENAI_API_REQUEST_FORMAT": "multipart"})


def test_openai_realtime_engine(webui, tmp_path):
    c = webui["client"]
    update_config(c, tts={"ENGINE": "openai-realtime"})
    try:
        r = c.post("/api/v1/audio/speech", json={"input": "Realtime engine speaking.", "voice": "carter"})
        assert r.status_code == 200, r.text
        info = ffprobe(r.content, tmp_path, "rt.wav")
        assert info["streams"][0]["codec_name"] == "pcm_s16le" and info["streams"][0]["sample_rate"] == "24000"
        assert float(info["format"]["duration"]) > 0.1
    finally:
        update_config(c, tts={"ENGINE": "openai"})


def test_wrong_key_gives_a_clean_error(webui, stack):
    c = webui["client"]
    update_config(c, tts={"OPENAI_API_KEY": "wrong-key"}, stt={"OPENAI_API_KEY": "wrong-key"})
    try:
        r = c.post("/api/v1/audio/speech", json={"input": "Should fail.", "voice": "carter"})
        assert 400 <= r.status_code < 600 and r.status_code != 200
        assert "detail" in r.json()
        r = c.post("/api/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF0000WAVE", "audio/wav")})
        assert r.status_code >= 400
        assert " 401 " in stack["gateway"].log()
        assert "wrong-key" not in stack["gateway"].log()
    finally:
        update_config(c, tts={"OPENAI_API_KEY": KEY}, stt={"OPENAI_API_KEY": KEY})
    r = c.post("/api/v1/audio/speech", json={"input": "Works again.", "voice": "carter"})
    assert r.status_code == 200
