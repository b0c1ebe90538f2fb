"""The ASR service as a user meets it: the real `vibevoice-asr` process on a tiny model, the `openai` client."""

from __future__ import annotations

import base64
import concurrent.futures
import json
import re
import subprocess

import httpx
import numpy as np
import openai
import pytest
from openai.types.audio import TranscriptionDiarized, TranscriptionVerbose

from tests.conftest import service_env
from tests.support import BIN, assert_openai_error, free_port, running

SRT = re.compile(r"^(\d+)\n(\d{2}):(\d{2}):(\d{2}),(\d{3}) --> (\d{2}):(\d{2}):(\d{2}),(\d{3})\n(.+)$", re.S)
VTT_TIME = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$", re.M)


@pytest.fixture(scope="module")
def asr(tiny_asr_models, tmp_path_factory):
    port = free_port()
    env = service_env(tiny_asr_models, VIBEVOICE_ASR_MAX_BATCH_WAIT_MS="400", VIBEVOICE_ASR_MAX_BATCH_SIZE="4")
    with running(
        [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path_factory.mktemp("asr") / "asr.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=240,
    ) as proc:
        yield {"url": f"http://127.0.0.1:{port}", "proc": proc}


@pytest.fixture()
def client(asr):
    return openai.OpenAI(base_url=asr["url"] + "/v1", api_key="none", max_retries=0, timeout=120)


def test_json_and_text(client, speech_wav):
    with open(speech_wav, "rb") as f:
        res = client.audio.transcriptions.create(model="vibevoice-asr", file=f)
    assert isinstance(res.text, str)
    with open(speech_wav, "rb") as f:
        text = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text")
    assert isinstance(text, str) and text.endswith("\n")


def test_srt_and_vtt_syntax(client, speech_wav):
    duration = _duration(speech_wav)
    with open(speech_wav, "rb") as f:
        srt = client.audio.transcriptions.create(model="vibevoice-asr", file=f, response_format="srt")
    blocks = [b for b in srt.strip("\n").split("\n\n") if b]
    assert blocks, srt
    for i, block in enumerate(blocks, 1):
        m = SRT.match(block)
        assert m and int(m.group(1)) == i, block
        end = int(m.group(6)) * 3600 + int(m.group(7)) * 60 + int(m.group(8)) + int(m.group(9)) / 1000
        assert end <= duration + 0.01
    with open(speech_wav, "rb") as f:
        vtt = client.audio.transcriptions.create(model="vibevoice-asr", file=f, response_format="vtt")
    assert vtt.startswith("WEBVTT\n\n")
    assert len(VTT_TIME.findall(vtt)) == len(blocks)


def test_verbose_json_and_diarized(client, speech_wav):
    duration = _duration(speech_wav)
    with open(speech_wav, "rb") as f:
        v = client.audio.transcriptions.create(
            model="vibevoice-asr",
            file=f,
            response_format="verbose_json",
            language="en",
            timestamp_granularities=["segment", "word"],
        )
    assert isinstance(v, TranscriptionVerbose)
    assert abs(v.duration - duration) < 0.05 and v.language == "english"
    assert v.segments and all(0 <= s.start <= s.end <= duration + 0.01 for s in v.segments)
    assert v.words is not None
    with open(speech_wav, "rb") as f:
        raw = client.audio.transcriptions.with_raw_response.create(
            model="vibevoice-asr", file=f, response_format="diarized_json"
        )
    d = TranscriptionDiarized.model_validate(json.loads(raw.text))
    assert d.segments and all(re.fullmatch(r"[A-Z]+", s.speaker) for s in d.segments)


def test_streaming_events_in_order(client, speech_wav):
    with open(speech_wav, "rb") as f:
        stream = client.audio.transcriptions.create(model="vibevoice-asr", file=f, stream=True)
        events = list(stream)
    types = [e.type for e in events]
    assert types[-1] == "transcript.text.done"
    assert set(types[:-1]) <= {"transcript.text.delta"}
    assert types.count("transcript.text.done") == 1
    assert "".join(e.delta for e in events[:-1]) == events[-1].text


def test_translation(client, speech_wav):
    for fmt in ("json", "text", "srt", "vtt", "verbose_json"):
        with open(speech_wav, "rb") as f:
            out = client.audio.translations.create(model="vibevoice-asr", file=f, response_format=fmt)
        assert out is not None
    with open(speech_wav, "rb") as f, pytest.raises(openai.BadRequestError) as e:
        client.audio.translations.create(model="vibevoice-asr", file=f, response_format="diarized_json")
    assert assert_openai_error(e.value.response.json())["param"] == "response_format"


def test_open_webui_forms(asr, speech_webm):
    """Open WebUI streams the file with a uuid name and no useful content type; or sends JSON base64."""
    data = speech_webm.read_bytes()

    def chunks():
        for i in range(0, len(data), 4096):
            yield data[i : i + 4096]

    boundary = "owuiboundary"
    body = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nvibevoice-asr\r\n'.encode(),
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="0b6f.webm"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n".encode(),
    ]

    def gen():
        yield from body
        yield from chunks()
        yield f"\r\n--{boundary}--\r\n".encode()

    r = httpx.post(
        asr["url"] + "/v1/audio/transcriptions",
        content=gen(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        timeout=120,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json") and "text" in r.json()
    r = httpx.post(
        asr["url"] + "/v1/audio/transcriptions",
        timeout=120,
        json={
            "model": "vibevoice-asr",
            "language": "en",
            "input_audio": {"data": base64.b64encode(data).decode(), "format": "webm"},
        },
    )
    assert r.status_code == 200, r.text
    assert "text" in r.json()


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"language": "xx-klingon"}, "language"),
        ({"temperature": "1.5"}, "temperature"),
        ({"temperature": "warm"}, "temperature"),
        ({"response_format": "docx"}, "response_format"),
        ({"timestamp_granularities[]": "word"}, "timestamp_granularities"),
        ({"timestamp_granularities[]": "sentence", "response_format": "verbose_json"}, "timestamp_granularities"),
        ({"stream": "maybe"}, "stream"),
    ],
)
def test_bad_fields_are_openai_400(asr, speech_wav, fields, param):
    r = httpx.post(
        asr["url"] + "/v1/audio/transcriptions",
        files={"file": ("a.wav", speech_wav.read_bytes())},
        data={"model": "vibevoice-asr", **fields},
        timeout=60,
    )
    assert r.status_code == 400, r.text
    assert assert_openai_error(r.json(), "invalid_request_error")["param"] == param


@pytest.mark.parametrize(
    ("files", "code"),
    [
        (None, "missing_required_parameter"),
        ({"file": ("a.wav", b"")}, "empty_audio"),
        ({"file": ("a.wav", b"this is not audio" * 50)}, "invalid_audio"),
    ],
)
def test_missing_empty_undecodable_file(asr, files, code):
    r = httpx.post(asr["url"] + "/v1/audio/transcriptions", files=files, data={"model": "vibevoice-asr"}, timeout=60)
    assert r.status_code == 400, r.text
    err = assert_openai_error(r.json())
    assert err["param"] == "file"


def test_unknown_model_and_media_type(asr, speech_wav):
    r = httpx.post(
        asr["url"] + "/v1/audio/transcriptions",
        files={"file": ("a.wav", speech_wav.read_bytes())},
        data={"model": "gpt-99"},
        timeout=60,
    )
    assert r.status_code == 404 and assert_openai_error(r.json())["code"] == "model_not_found"
    r = httpx.post(asr["url"] + "/v1/audio/transcriptions", content=b"abc", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert_openai_error(r.json())
    r = httpx.post(
        asr["url"] + "/v1/audio/transcriptions", json={"model": "vibevoice-asr", "input_audio": {"data": "@@@"}}
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "input_audio.data"


def test_concurrent_requests_are_batched(asr, speech_wav):
    data = speech_wav.read_bytes()

    def one(_: int) -> int:
        r = httpx.post(asr["url"] + "/v1/audio/transcriptions", files={"file": ("a.wav", data)}, timeout=180)
        return r.status_code

    before = _batch_counts(asr["url"])
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(4))) == [200] * 4
    after = _batch_counts(asr["url"])
    assert after["sum"] - before["sum"] == 4  # four requests went through the batcher
    assert after["count"] - before["count"] < 4  # ...in fewer generate calls than requests


def test_models_and_health(asr):
    ids = [m["id"] for m in httpx.get(asr["url"] + "/v1/models").json()["data"]]
    assert ids == ["vibevoice-asr"]
    assert httpx.get(asr["url"] + "/v1/audio/models").json()["models"][0]["id"] == "vibevoice-asr"
    assert httpx.get(asr["url"] + "/ready").json()["status"] == "ready"
    metrics = httpx.get(asr["url"] + "/metrics").text
    for name in (
        "vibevoice_asr_queue_depth",
        "vibevoice_asr_batch_size",
        "vibevoice_asr_audio_seconds_total",
        "vibevoice_asr_real_time_factor",
        'vibevoice_asr_repetition_loops_total{outcome="retried"}',
    ):
        assert name in metrics


def test_long_audio_is_split_with_continuous_timestamps(tiny_asr_models, tmp_path):
    """A 12 s recording with pauses, single-pass limit 4 s: pieces stitched on one timeline."""
    sr = 24000
    parts = []
    for i in range(4):
        t = np.arange(int(2.4 * sr)) / sr
        parts.append(0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t))
        parts.append(np.zeros(int(0.6 * sr)))
    audio = np.concatenate(parts).astype(np.float32)
    wav = tmp_path / "long.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "f32le", "-ar", str(sr), "-ac", "1", "-i", "-", str(wav)],
        input=audio.tobytes(),
        check=True,
    )
    port = free_port()
    env = service_env(tiny_asr_models, VIBEVOICE_ASR_MAX_SINGLE_PASS_SECONDS="4", VIBEVOICE_WARMUP="false")
    with running(
        [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "asr.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=240,
    ):
        c = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="x", max_retries=0, timeout=120)
        with open(wav, "rb") as f:
            v = c.audio.transcriptions.create(model="vibevoice-asr", file=f, response_format="verbose_json")
        with open(wav, "rb") as f:
            events = list(c.audio.transcriptions.create(model="vibevoice-asr", file=f, stream=True))
    assert events[-1].type == "transcript.text.done" and len(events) >= 2
    assert "".join(e.delta for e in events[:-1]) == events[-1].text
    assert abs(v.duration - 12.0) < 0.05
    starts = [s.start for s in v.segments]
    assert starts == sorted(starts)
    assert max(s.end for s in v.segments) > 4.0  # later pieces are placed after the first
    assert all(s.end <= 12.0 + 0.01 for s in v.segments)


def _batch_counts(url: str) -> dict[str, float]:
    text = httpx.get(url + "/metrics").text
    out = {"sum": 0.0, "count": 0.0}
    for line in text.splitlines():
        if line.startswith("vibevoice_asr_batch_size_sum"):
            out["sum"] = float(line.split()[-1])
        elif line.startswith("vibevoice_asr_batch_size_count"):
            out["count"] = float(line.split()[-1])
    return out


def _duration(path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return float(out)


def test_different_recordings_give_different_transcripts(client, speech_wav, tmp_path):
    """The model hears its input: speech, a tone and noise give three different greedy transcripts, and the
    same recording again gives the same one (a broken decoder, resampler, loudness normaliser or encoder
    weight mapping would make them collapse or wander)."""
    ffmpeg = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i"]
    tone, noise = tmp_path / "tone.wav", tmp_path / "noise.wav"
    subprocess.run([*ffmpeg, "sine=frequency=440:duration=2.5", "-ar", "16000", str(tone)], check=True)
    subprocess.run([*ffmpeg, "anoisesrc=d=2.5:c=pink:a=0.3:seed=5", "-ar", "44100", str(noise)], check=True)

    def transcribe(path) -> str:
        with open(path, "rb") as f:
            return client.audio.transcriptions.create(model="vibevoice-asr", file=f, temperature=0).text

    texts = {name: transcribe(path) for name, path in (("speech", speech_wav), ("tone", tone), ("noise", noise))}
    assert len(set(texts.values())) == 3, texts
    assert transcribe(speech_wav) == texts["speech"]
