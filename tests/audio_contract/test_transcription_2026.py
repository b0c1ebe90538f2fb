"""OpenAI's 2026 transcription contract, through the `openai` client and raw multipart, on the real service.

The service runs a tiny random VibeVoice-ASR (so the words are noise), but everything asserted here is
what a client relies on whatever the words: names, languages, logprobs from the real generation, stream
deltas that add up to the final text, known speakers recognised by voice, and a 400 naming the parameter
for every bad input.
"""

from __future__ import annotations

import base64
import io
import json
import math
import wave

import httpx
import numpy as np
import openai
import pytest
from vibevoice_api.shared.audio import encode_audio

from tests.audio_contract.voices import data_url, turn, wav_bytes
from tests.conftest import service_env
from tests.support import BIN, assert_openai_error, free_port, running


@pytest.fixture(scope="module")
def asr(tiny_asr_models, tmp_path_factory):
    port = free_port()
    env = service_env(
        tiny_asr_models,
        VIBEVOICE_ASR_MAX_BATCH_WAIT_MS="0",
        VIBEVOICE_ASR_MIN_NEW_TOKENS="24",
        VIBEVOICE_ASR_TOKENS_PER_SECOND="2",
    )
    with running(
        [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path_factory.mktemp("asr2026") / "asr.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=240,
    ):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture()
def client(asr):
    return openai.OpenAI(base_url=asr + "/v1", api_key="none", max_retries=0, timeout=300)


def speech(speech_wav) -> tuple[str, bytes, str]:
    return ("hello.wav", speech_wav.read_bytes(), "audio/wav")


def form(fields: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Repeated form fields (``name[]`` parts) as httpx takes them."""
    out: dict[str, list[str]] = {}
    for k, v in fields:
        out.setdefault(k, []).append(v)
    return out


def sse_events(response: httpx.Response) -> list[dict]:
    return [json.loads(line[6:]) for line in response.iter_lines() if line.startswith("data: ")]


# ------------------------------------------------------------------------------------------- model names


def test_openai_names_of_any_date_are_ours(client, speech_wav):
    for model in ("gpt-transcribe", "gpt-4o-mini-transcribe-2025-12-15"):
        assert client.audio.transcriptions.create(model=model, file=speech(speech_wav)).text


def test_other_names_are_404_listing_ours(client, speech_wav):
    with pytest.raises(openai.NotFoundError) as e:
        client.audio.transcriptions.create(model="gpt-5", file=speech(speech_wav))
    err = assert_openai_error(e.value.response.json())
    assert (err["code"], err["param"]) == ("model_not_found", "model") and "vibevoice-asr" in err["message"]


# ------------------------------------------------------------------------------------- keywords, languages


def test_keywords_and_languages_reach_the_model_and_languages_come_back(client, speech_wav):
    plain = client.audio.transcriptions.create(model="gpt-transcribe", file=speech(speech_wav))
    hinted = client.audio.transcriptions.create(
        model="gpt-transcribe",
        file=speech(speech_wav),
        prompt="A test recording.",
        keywords=["VibeVoice", "Tea Brew", "Meter Street"],
        languages=["en", "de"],
    )
    # The prompt the model read grew by the keywords and the language line (token usage counts it).
    assert plain.usage.type == hinted.usage.type == "tokens"
    assert hinted.usage.input_token_details.text_tokens > plain.usage.input_token_details.text_tokens + 6
    assert hinted.usage.input_token_details.audio_tokens == plain.usage.input_token_details.audio_tokens
    assert hinted.usage.total_tokens == hinted.usage.input_tokens + hinted.usage.output_tokens
    # languages: identified from the text, one of the candidates.
    assert hinted.languages and {lang.code for lang in hinted.languages} <= {"en", "de"}
    assert isinstance(plain.languages, list)


def test_whisper_names_report_seconds(client, speech_wav):
    res = client.audio.transcriptions.create(model="whisper-1", file=speech(speech_wav))
    assert res.usage.type == "duration" and 3 < res.usage.seconds < 6


# ------------------------------------------------------------------------------------------------ logprobs


def check_logprobs(entries, text: str) -> None:
    assert entries, "no logprobs"
    assert "".join(e.token for e in entries) == text
    for e in entries:
        assert e.logprob <= 0 and math.isfinite(e.logprob)
        assert bytes(int(b) for b in e.bytes) == e.token.encode("utf-8")


def test_logprobs_of_the_whole_transcript(client, speech_wav):
    res = client.audio.transcriptions.create(
        model="gpt-4o-transcribe", file=speech(speech_wav), include=["logprobs"], response_format="json"
    )
    check_logprobs(res.logprobs, res.text)
    assert len(res.logprobs) > 5  # token by token, not one blob
    # The same audio streamed gives the same tokens and log-probabilities (greedy decoding).
    events = list(
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe", file=speech(speech_wav), include=["logprobs"], stream=True
        )
    )
    done = events[-1]
    assert done.type == "transcript.text.done" and done.text == res.text
    assert [(e.token, round(e.logprob, 4)) for e in done.logprobs] == [
        (e.token, round(e.logprob, 4)) for e in res.logprobs
    ]


def test_verbose_json_scores_are_measured(client, speech_wav):
    res = client.audio.transcriptions.create(
        model="whisper-1", file=speech(speech_wav), response_format="verbose_json", timestamp_granularities=["segment"]
    )
    assert res.segments
    for seg in res.segments:
        assert seg.tokens and seg.avg_logprob < 0
        assert 0.0 <= seg.no_speech_prob < 0.5  # someone speaks in it (a voice activity detector says so)
        assert seg.compression_ratio > 0
    silence = encode_audio(np.zeros(24000 * 3, np.float32), "wav", 24000)
    quiet = client.audio.transcriptions.create(
        model="whisper-1", file=("silence.wav", silence, "audio/wav"), response_format="verbose_json"
    )
    assert all(seg.no_speech_prob > 0.8 for seg in quiet.segments)


# ----------------------------------------------------------------------------------------------- streaming


def test_stream_deltas_add_up_to_the_text_and_outnumber_segments(asr, speech_wav):
    with httpx.stream(
        "POST",
        asr + "/v1/audio/transcriptions",
        files={"file": speech(speech_wav)},
        data={
            "model": "gpt-4o-transcribe-diarize",
            "response_format": "diarized_json",
            "stream": "true",
            "include[]": "logprobs",
        },
        timeout=300,
    ) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = sse_events(r)
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "transcript.text.done" and "error" not in kinds
    deltas = [e for e in events if e["type"] == "transcript.text.delta"]
    segments = [e for e in events if e["type"] == "transcript.text.segment"]
    done = events[-1]
    assert "".join(d["delta"] for d in deltas) == done["text"]
    assert segments and len(deltas) > len(segments)
    assert " ".join(s["text"].replace("\n", " ") for s in segments) == done["text"]
    for d in deltas:  # each delta's own logprobs cover exactly its text
        assert "".join(lp["token"] for lp in d["logprobs"]) == d["delta"]
        assert all(lp["logprob"] <= 0 for lp in d["logprobs"])
    assert done["usage"]["type"] == "tokens" and done["usage"]["output_tokens"] >= len(deltas)
    assert isinstance(done["languages"], list)
    assert "{" not in "".join(d["delta"] for d in deltas)[:1]  # the JSON never leaks into the text


def test_typed_stream_events(client, speech_wav):
    events = list(client.audio.transcriptions.create(model="gpt-transcribe", file=speech(speech_wav), stream=True))
    assert events[-1].type == "transcript.text.done"
    assert "".join(e.delta for e in events if e.type == "transcript.text.delta") == events[-1].text
    assert events[-1].usage.type == "tokens"


# ------------------------------------------------------------------------------------------ known speakers


def known_refs() -> tuple[list[str], list[str]]:
    return ["Aidan", "Sayid"], [data_url(turn(0, 0, 6)), data_url(turn(1, 0, 6))]


def test_known_speaker_named_by_voice(client):
    names, refs = known_refs()
    upload = ("aidan.wav", wav_bytes(turn(0, 2, 8)), "audio/wav")  # Aidan again, later in the show
    res = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=upload,
        response_format="diarized_json",
        chunking_strategy="auto",
        known_speaker_names=names,
        known_speaker_references=refs,
    )
    assert res.segments and {s.speaker for s in res.segments} == {"Aidan"}
    other = ("mia.wav", wav_bytes(turn(2, 1, 8)), "audio/wav")  # the third host: nobody's reference
    res = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=other,
        response_format="diarized_json",
        known_speaker_names=names,
        known_speaker_references=refs,
    )
    assert {s.speaker for s in res.segments} == {"A"}


def test_names_in_verbose_json_subtitles_and_the_stream(asr):
    names, refs = known_refs()
    upload = wav_bytes(turn(1, 2, 6))  # Sayid
    fields = [("model", "gpt-4o-transcribe-diarize"), *[("known_speaker_names[]", n) for n in names]]
    fields += [("known_speaker_references[]", r) for r in refs]

    def post(fmt: str, **extra: str) -> httpx.Response:
        return httpx.post(
            asr + "/v1/audio/transcriptions",
            files={"file": ("sayid.wav", upload, "audio/wav")},
            data=form([*fields, ("response_format", fmt), *extra.items()]),
            timeout=300,
        )

    verbose = post("verbose_json").json()
    assert {s["speaker"] for s in verbose["segments"]} == {"Sayid"}
    assert "[Sayid] " in post("srt").text
    r = post("diarized_json", stream="true")
    segments = [e for e in sse_events(r) if e["type"] == "transcript.text.segment"]
    assert segments and {s["speaker"] for s in segments} == {"Sayid"}


def test_a_reference_clip_larger_than_one_mebibyte_is_accepted(asr):
    # 10 s of 48 kHz stereo 16-bit WAV: 1.9 MB, 2.6 MB as a data URL (Starlette's per-field default is 1 MiB).
    clip = turn(0, 0, 10)
    big = np.interp(np.arange(10 * 48000) / 3, np.arange(clip.shape[0]), clip)
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(48000)
        pcm = (np.clip(big, -1, 1) * 32767).astype("<i2")
        w.writeframes(np.stack([pcm, pcm], axis=1).tobytes())
    url = "data:audio/wav;base64," + base64.b64encode(buf.getvalue()).decode()
    assert len(url) > 2 * 1024 * 1024
    r = httpx.post(
        asr + "/v1/audio/transcriptions",
        files={"file": ("aidan.wav", wav_bytes(turn(0, 3, 6)), "audio/wav")},
        data={
            "model": "gpt-4o-transcribe-diarize",
            "response_format": "diarized_json",
            "known_speaker_names[]": "Aidan",
            "known_speaker_references[]": url,
        },
        timeout=300,
    )
    assert r.status_code == 200, r.text
    assert {s["speaker"] for s in r.json()["segments"]} == {"Aidan"}


# ---------------------------------------------------------------------------------------------- bad input

CLIP = data_url(turn(0, 0, 3))
SHORT = data_url(turn(0, 0, 1))
LONG = data_url(turn(0, 0, 11))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        (
            [*[("known_speaker_names[]", n) for n in "abcde"], *[("known_speaker_references[]", CLIP)] * 5],
            "known_speaker_names",
        ),
        (
            [("known_speaker_names[]", "a"), ("known_speaker_names[]", "b"), ("known_speaker_references[]", CLIP)],
            "known_speaker_references",
        ),
        (
            [("known_speaker_names[]", "a"), ("known_speaker_references[]", "http://x/a.wav")],
            "known_speaker_references[0]",
        ),
        (
            [("known_speaker_names[]", "a"), ("known_speaker_references[]", "data:audio/wav;base64,!!")],
            "known_speaker_references[0]",
        ),
        ([("known_speaker_names[]", "a"), ("known_speaker_references[]", SHORT)], "known_speaker_references[0]"),
        (
            [
                ("known_speaker_names[]", "a"),
                ("known_speaker_names[]", "b"),
                ("known_speaker_references[]", CLIP),
                ("known_speaker_references[]", LONG),
            ],
            "known_speaker_references[1]",
        ),
        ([("languages[]", "en"), ("languages[]", "klingon")], "languages"),
        ([("include[]", "bogus")], "include"),
        ([("include[]", "logprobs"), ("response_format", "verbose_json")], "include"),
        ([("chunking_strategy", json.dumps({"type": "server_vad", "threshold": 3}))], "chunking_strategy"),
        (
            [("chunking_strategy[type]", "server_vad"), ("chunking_strategy[silence_duration_ms]", "-5")],
            "chunking_strategy",
        ),
        ([("keywords[]", "x" * 1000)], "keywords"),
    ],
)
def test_bad_input_is_a_400_naming_the_param(asr, speech_wav, fields, param):
    r = httpx.post(
        asr + "/v1/audio/transcriptions",
        files={"file": speech(speech_wav)},
        data=form([("model", "gpt-4o-transcribe-diarize"), *fields]),
        timeout=120,
    )
    assert r.status_code == 400, r.text
    err = assert_openai_error(r.json(), "invalid_request_error")
    assert err["param"] == param, err


def test_bad_input_through_the_typed_client(client, speech_wav):
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(
            model="gpt-4o-transcribe-diarize",
            file=speech(speech_wav),
            known_speaker_names=["a", "b", "c", "d", "e"],
            known_speaker_references=[CLIP] * 5,
        )
    assert e.value.response.json()["error"]["param"] == "known_speaker_names"
    with pytest.raises(openai.BadRequestError) as e:
        client.audio.transcriptions.create(model="gpt-transcribe", file=speech(speech_wav), languages=["xx"])
    assert e.value.response.json()["error"]["param"] == "languages"


def test_server_vad_chunking_is_accepted(client, speech_wav):
    res = client.audio.transcriptions.create(
        model="gpt-4o-transcribe-diarize",
        file=speech(speech_wav),
        response_format="diarized_json",
        chunking_strategy={
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        },
    )
    assert res.segments
