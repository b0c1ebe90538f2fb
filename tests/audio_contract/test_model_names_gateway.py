"""The gateway routes OpenAI's model names, old and new, by pattern; other names are 404 listing ours."""

from __future__ import annotations

import json

import openai
import pytest
from websockets.sync.client import connect as ws_connect

from tests.gateway.test_gateway import start_gateway, upstreams  # noqa: F401 - fixture
from tests.support import assert_openai_error


@pytest.fixture(scope="module")
def gateway(upstreams, tmp_path_factory):  # noqa: F811 - the fixture above
    ctx, url = start_gateway(
        tmp_path_factory.mktemp("gw-names"),
        # No live service: realtime names go to the TTS service's /v1/realtime (the live routing is tests/live's).
        {
            "VIBEVOICE_ASR_URL": upstreams["asr"].url,
            "VIBEVOICE_TTS_URL": upstreams["tts"].url,
            "VIBEVOICE_LIVE_URL": "",
        },
    )
    with ctx:
        yield url


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=20)


@pytest.mark.parametrize(
    "model",
    ["gpt-transcribe", "gpt-4o-mini-transcribe-2025-12-15", "gpt-4o-transcribe-diarize", "whisper-large-v3"],
)
def test_new_transcription_names_reach_the_asr_service(gateway, upstreams, model):  # noqa: F811
    res = client(gateway).audio.transcriptions.create(model=model, file=("a.wav", b"x" * 100, "audio/wav"))
    assert res.text.startswith("asr received")
    assert upstreams["asr_rec"].requests[-1]["path"] == "transcriptions"


@pytest.mark.parametrize("model", ["gpt-4o-mini-tts-2025-12-15", "tts-1-hd", "gpt-tts"])
def test_new_speech_names_reach_the_tts_service(gateway, upstreams, model):  # noqa: F811
    upstreams["tts_rec"].release.set()
    audio = client(gateway).audio.speech.create(model=model, voice="marin", input="hello")
    assert audio.content == b"first-chunk|chunk0|chunk1|chunk2|"
    assert upstreams["tts_rec"].requests[-1]["body"]["model"] == model


@pytest.mark.parametrize("model", ["gpt-realtime", "gpt-realtime-2.1-mini", "gpt-4o-mini-realtime-preview"])
def test_realtime_names_open_the_realtime_socket(gateway, model):
    with ws_connect(gateway.replace("http", "ws") + f"/v1/realtime?model={model}", open_timeout=10) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "session.created"


def test_other_names_are_404_listing_ours_and_wrong_kinds_400(gateway):
    c = client(gateway)
    with pytest.raises(openai.NotFoundError) as e:
        c.audio.transcriptions.create(model="gpt-5", file=("a.wav", b"x", "audio/wav"))
    err = assert_openai_error(e.value.response.json())
    assert (err["code"], err["param"]) == ("model_not_found", "model")
    assert "vibevoice-asr" in err["message"]
    with pytest.raises(openai.BadRequestError) as e:
        c.audio.speech.create(model="gpt-transcribe", voice="carter", input="hi")
    assert assert_openai_error(e.value.response.json())["code"] == "model_not_supported"
    with pytest.raises(openai.BadRequestError):
        c.audio.transcriptions.create(model="gpt-realtime", file=("a.wav", b"x", "audio/wav"))


def test_patterns_are_configurable(upstreams, tmp_path):  # noqa: F811
    ctx, url = start_gateway(
        tmp_path,
        {
            "VIBEVOICE_ASR_URL": upstreams["asr"].url,
            "VIBEVOICE_TTS_URL": upstreams["tts"].url,
            "VIBEVOICE_MODEL_PATTERNS": json.dumps({"asr": ["acme-*"], "tts": []}),
        },
    )
    with ctx:
        c = client(url)
        assert c.audio.transcriptions.create(model="acme-stt", file=("a.wav", b"x", "audio/wav")).text
        with pytest.raises(openai.NotFoundError):
            c.audio.transcriptions.create(model="gpt-transcribe", file=("a.wav", b"x", "audio/wav"))
        with pytest.raises(openai.NotFoundError):
            c.audio.speech.create(model="gpt-4o-mini-tts-2025-12-15", voice="carter", input="hi")


def test_retrieving_a_pattern_name_gives_the_model_serving_it(gateway):
    c = client(gateway)
    assert c.models.retrieve("gpt-4o-mini-transcribe-2025-12-15").id == "vibevoice-asr"
    assert c.models.retrieve("gpt-4o-mini-tts-2025-12-15").id == "vibevoice-realtime"
    with pytest.raises(openai.NotFoundError):
        c.models.retrieve("gpt-5")
