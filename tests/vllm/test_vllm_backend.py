"""VIBEVOICE_ASR_BACKEND=vllm as a user meets it: the real `vibevoice-asr` process sending generation to a real
stock vLLM server (CPU build, Transformers backend, our plugin and chat template), next to the same service
on the transformers backend, both on one tiny model, both called with the `openai` client.

The tiny model never ends its answer by itself (see ``write_model``), so every transcript is the greedy
continuation up to the same token budget: the two backends must agree token for token.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading

import httpx
import numpy as np
import openai
import pytest

from tests.conftest import service_env
from tests.support import BIN, assert_openai_error, free_port, kill_session, running, wait_http
from tests.vllm.conftest import VLLMServer, tone, wav_bytes, write_model

pytestmark = pytest.mark.timeout(900)

# Long-form splitting at 6 s with a 1.5 s overlap, so a 14 s recording takes three passes.
COMMON = {
    "VIBEVOICE_ASR_MAX_SINGLE_PASS_SECONDS": "6",
    "VIBEVOICE_ASR_LONGFORM_OVERLAP_SECONDS": "1.5",
    "VIBEVOICE_ASR_LOOP_DETECTION": "false",
    "VIBEVOICE_ASR_MAX_BATCH_SIZE": "1",
}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model(tmp_path_factory.mktemp("vllm-model") / "VibeVoice-ASR")


@pytest.fixture(scope="module")
def vllm(vllm_python, model_dir, tmp_path_factory):
    server = VLLMServer(vllm_python, model_dir, tmp_path_factory.mktemp("vllm-logs"))
    server.start()
    yield server
    server.stop()


def _asr(model_dir, logs, name: str, **extra: str):
    port = free_port()
    env = service_env(model_dir.parent, **COMMON, **extra)
    return running(
        [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        logs / f"{name}.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=300,
    )


@pytest.fixture(scope="module")
def services(vllm, model_dir, tmp_path_factory):
    logs = tmp_path_factory.mktemp("asr-logs")
    with (
        _asr(model_dir, logs, "asr-hf") as hf,
        _asr(model_dir, logs, "asr-vllm", VIBEVOICE_ASR_BACKEND="vllm", VIBEVOICE_ASR_VLLM_URL=vllm.url) as vl,
    ):
        yield {"hf": _url(hf), "vllm": _url(vl), "vllm_proc": vl}


def _url(proc) -> str:
    return f"http://127.0.0.1:{proc.proc.args[-1]}"  # the --port value


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="none", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def audios(speech_wav, speech_webm):
    """Several recordings: a spoken phrase (wav and webm/opus), two tones, noise; and 14 s of speech + tone."""
    rng = np.random.default_rng(7)
    noise = (0.1 * rng.standard_normal(24000 * 2)).astype(np.float32)
    long = np.concatenate([tone(5.0, 220.0), np.zeros(12000, np.float32), tone(4.0, 660.0), tone(4.5, 330.0)])
    return {
        "speech.wav": speech_wav.read_bytes(),
        "speech.webm": speech_webm.read_bytes(),
        "tone-low.wav": wav_bytes(tone(3.0, 180.0)),
        "tone-high.wav": wav_bytes(tone(2.2, 900.0)),
        "noise.wav": wav_bytes(noise),
        "long.wav": wav_bytes(long),
    }


def _post(url: str, name: str, data: bytes, **fields: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/audio/transcriptions",
        files={"file": (name, data)},
        data={"model": "vibevoice-asr", **fields},
        timeout=300,
    )


def _same(a, b) -> bool:
    """Equal, except that numbers computed from the two backends' log-probabilities (avg_logprob, logprob) may
    differ in their last digits: the same tokens, float32 arithmetic done in different kernels."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return abs(a - b) <= 1e-3 * max(1.0, abs(b))
    return a == b


def test_ready_names_the_backend(services):
    for backend in ("hf", "vllm"):
        r = httpx.get(services[backend] + "/ready", timeout=10)
        assert r.status_code == 200, r.text
        assert r.json()["backend"] == ("vllm" if backend == "vllm" else "transformers")
    assert httpx.get(services["vllm"] + "/ready").json()["vllm"]["status"] == "HTTP 200"


def test_transcripts_equal_the_transformers_backend(services, audios):
    """Greedy transcripts of several recordings, token for token (segments, times, text), long-form too."""
    texts = set()
    for name, data in audios.items():
        got = {b: _post(services[b], name, data, response_format="verbose_json") for b in ("hf", "vllm")}
        assert got["hf"].status_code == 200 and got["vllm"].status_code == 200, (got["hf"].text, got["vllm"].text)
        assert _same(got["vllm"].json(), got["hf"].json()), name
        texts.add(got["vllm"].json()["text"])
    assert len(texts) == len(audios)  # the model hears its input: every recording reads differently


@pytest.mark.parametrize("fmt", ["json", "text", "srt", "vtt", "verbose_json", "diarized_json"])
def test_every_response_format(services, audios, fmt):
    hf, vl = (_client(services[b]) for b in ("hf", "vllm"))
    for name in ("speech.wav", "long.wav"):
        args = {"model": "vibevoice-asr", "file": (name, audios[name]), "response_format": fmt}
        a = hf.audio.transcriptions.with_raw_response.create(**args)
        b = vl.audio.transcriptions.with_raw_response.create(**args)
        assert b.headers["content-type"] == a.headers["content-type"]
        assert b.text.strip(), (fmt, name)
        if "json" in fmt:
            assert _same(json.loads(b.text), json.loads(a.text)), (fmt, name)
        else:
            assert b.text == a.text, (fmt, name)


def test_prompt_language_and_translation(services, audios):
    for route, fields in (
        ("transcriptions", {"prompt": "Ana, Kubernetes, vLLM", "language": "en"}),
        ("translations", {"prompt": "Ana"}),
    ):
        out = [
            httpx.post(
                services[b] + f"/v1/audio/{route}",
                files={"file": ("speech.wav", audios["speech.wav"])},
                data={"model": "vibevoice-asr", "response_format": "verbose_json", **fields},
                timeout=300,
            )
            for b in ("hf", "vllm")
        ]
        assert out[0].status_code == out[1].status_code == 200, out[1].text
        assert _same(out[1].json(), out[0].json())


def test_streaming_equals_and_ends_with_done(services, audios):
    def events(url: str, name: str) -> list[dict]:
        stream = _client(url).audio.transcriptions.create(
            model="vibevoice-asr", file=(name, audios[name]), stream=True, response_format="diarized_json"
        )
        return [e.model_dump() for e in stream]

    for name in ("speech.wav", "long.wav"):
        a, b = events(services["hf"], name), events(services["vllm"], name)
        assert _same(b, a)
        assert b[-1]["type"] == "transcript.text.done" and [e["type"] for e in b].count("transcript.text.done") == 1


def test_a_client_that_leaves_aborts_the_vllm_request(vllm, model_dir, tmp_path_factory, audios):
    """Transcriptions with a budget of 30,000 tokens (the tiny model never ends by itself): the client hangs up
    once vLLM has the request (streamed and plain requests); the service closes its vLLM request and vLLM aborts
    it, in its own words ("Request ... aborted." in its log, which also tells when it took the request).

    vLLM's Prometheus series are not used: on a busy CPU they lag by tens of seconds (its token counter did not
    move for 30 s of generation; a request of an earlier test is counted late), and they count no client aborts."""
    logs = tmp_path_factory.mktemp("cancel")
    with _asr(
        model_dir,
        logs,
        "asr-long",
        VIBEVOICE_ASR_BACKEND="vllm",
        VIBEVOICE_ASR_VLLM_URL=vllm.url,
        VIBEVOICE_ASR_MIN_NEW_TOKENS="30000",
        VIBEVOICE_WARMUP="false",
    ) as proc:
        url = _url(proc)
        added, aborted = vllm.added(), vllm.aborted()
        for n, stream in enumerate(("true", "false"), start=1):
            request = httpx.Request(
                "POST",
                url + "/v1/audio/transcriptions",
                files={"file": ("speech.wav", audios["speech.wav"])},
                data={"model": "vibevoice-asr", "stream": stream},
            )
            with _raw_client(request):
                _until(lambda n=n: vllm.added() == added + n, "vLLM never got the request")
            # the client has hung up: the service closes its vLLM request, and vLLM aborts it
            _until(lambda n=n: vllm.aborted() == aborted + n, "vLLM did not abort the request")
            assert proc.log().count("vLLM request closed") == n
        assert "Traceback" not in proc.log()


@contextlib.contextmanager
def _raw_client(request: httpx.Request):
    """A client that sends ``request`` over a plain socket and hangs up when the block ends, read or not."""
    host, port = request.url.host, request.url.port
    sock = socket.create_connection((host, port), timeout=30)
    try:
        head = [f"{request.method} {request.url.raw_path.decode()} HTTP/1.1", f"host: {host}:{port}"]
        body = request.read()
        head += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() not in ("host", "content-length")]
        head += [f"content-length: {len(body)}", "", ""]
        sock.sendall("\r\n".join(head).encode() + body)
        yield sock
    finally:
        sock.close()


def _until(cond, what: str, attempts: int = 600) -> None:
    stop = threading.Event()
    for _ in range(attempts):
        if cond():
            return
        stop.wait(0.1)
    raise AssertionError(what)


def test_overloaded_is_429_with_retry_after(services, audios, vllm, model_dir, tmp_path_factory):
    """One pass in flight at vLLM and no queue: a second concurrent request is refused at once."""
    logs = tmp_path_factory.mktemp("busy")
    with _asr(
        model_dir,
        logs,
        "asr-busy",
        VIBEVOICE_ASR_BACKEND="vllm",
        VIBEVOICE_ASR_VLLM_URL=vllm.url,
        VIBEVOICE_ASR_VLLM_MAX_CONCURRENCY="1",
        VIBEVOICE_MAX_CONCURRENCY="1",
        VIBEVOICE_MAX_QUEUE="0",
        VIBEVOICE_ASR_MIN_NEW_TOKENS="30000",
        VIBEVOICE_WARMUP="false",
    ) as proc:
        url = _url(proc)
        added = vllm.added()
        with httpx.Client(timeout=300) as client:
            first = client.send(
                client.build_request(
                    "POST",
                    url + "/v1/audio/transcriptions",
                    files={"file": ("speech.wav", audios["speech.wav"])},
                    data={"model": "vibevoice-asr", "stream": "true"},
                ),
                stream=True,
            )
            _until(lambda: vllm.added() == added + 1, "vLLM never got the request")
            second = _post(url, "speech.wav", audios["speech.wav"])
            first.close()
        assert second.status_code == 429, second.text
        assert int(second.headers["retry-after"]) >= 1
        assert_openai_error(second.json(), "rate_limit_error")
        # (That closing the first aborts its vLLM request is the test above: here, on a loaded machine, the first
        # may have reached its budget before the refusal came back.)
        assert "Traceback" not in proc.log()


def test_vllm_killed_mid_stream_is_a_clean_error_then_recovers(services, audios, vllm):
    """Chaos: the vLLM server (its whole process group) is SIGKILLed while a streamed transcription of ten
    minutes of audio (about 130 passes) is generating. The stream ends with an OpenAI-shaped `error` event; while
    vLLM is dead a plain request is a 503 with Retry-After and /ready is 503; once vLLM is started again, the same
    ASR process transcribes as before. vLLM is left running for the tests after this one."""
    url = services["vllm"]
    before = _post(url, "speech.wav", audios["speech.wav"], response_format="verbose_json")
    assert before.status_code == 200, before.text
    sr = 16000
    long = wav_bytes(np.tile(tone(4.0, 300.0, sr), 150), sr)  # 10 minutes
    events: list[dict] = []
    try:
        # the read timeout is the hang guard only: a stream that stops without ending fails the test
        with (
            httpx.Client(timeout=httpx.Timeout(120.0)) as client,
            client.stream(
                "POST",
                url + "/v1/audio/transcriptions",
                files={"file": ("long.wav", long)},
                data={"model": "vibevoice-asr", "stream": "true"},
            ) as r,
        ):
            assert r.status_code == 200, r.read()
            lines = r.iter_lines()
            for line in lines:
                if line.startswith("data: "):
                    events.append(json.loads(line[6:]))
                    if events[-1]["type"] == "transcript.text.delta":
                        break  # vLLM is generating the first of many passes
            assert events and events[-1]["type"] == "transcript.text.delta", events
            kill_session(vllm.proc)
            events += [json.loads(line[6:]) for line in lines if line.startswith("data: ")]
        kinds = [e["type"] for e in events]
        assert kinds[-1] == "error" and "transcript.text.done" not in kinds, kinds[-3:]
        err = events[-1]["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["message"], err
        assert (err["type"], err["code"]) == ("server_error", "backend_unavailable"), err

        r = _post(url, "speech.wav", audios["speech.wav"])
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert assert_openai_error(r.json(), "server_error")["code"] == "backend_unavailable"
        ready = httpx.get(url + "/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["vllm"]["status"].startswith("unreachable"), ready.text
    finally:
        if vllm.proc is None or vllm.proc.poll() is not None:
            vllm.stop()
            vllm.start()  # same port, as a restarted container
    wait_http(url + "/ready", timeout=60)
    after = _post(url, "speech.wav", audios["speech.wav"], response_format="verbose_json")
    assert after.status_code == 200 and _same(after.json(), before.json()), after.text
    assert "Traceback" not in services["vllm_proc"].log()


def test_vllm_down_is_503_then_recovers_after_restart(services, audios, vllm):
    """Last in this module: it stops the shared vLLM server and starts it again."""
    url = services["vllm"]
    before = _post(url, "speech.wav", audios["speech.wav"], response_format="verbose_json")
    assert before.status_code == 200
    vllm.stop()
    try:
        r = _post(url, "speech.wav", audios["speech.wav"])
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) >= 1
        assert assert_openai_error(r.json(), "server_error")["code"] == "backend_unavailable"
        sse = _post(url, "speech.wav", audios["speech.wav"], stream="true")
        events = [json.loads(line[6:]) for line in sse.text.splitlines() if line.startswith("data: ")]
        assert events[-1]["type"] == "error" and events[-1]["error"]["code"] == "backend_unavailable"
        ready = httpx.get(url + "/ready", timeout=10)
        assert ready.status_code == 503 and ready.json()["backend"] == "vllm"
        assert ready.json()["vllm"]["status"].startswith("unreachable")
    finally:
        vllm.start()  # same port, as a restarted container
    wait_http(url + "/ready", timeout=60)
    after = _post(url, "speech.wav", audios["speech.wav"], response_format="verbose_json")
    assert after.status_code == 200 and _same(after.json(), before.json())
    assert "Traceback" not in services["vllm_proc"].log()


def test_vllm_settings_are_validated():
    from pydantic import ValidationError
    from vibevoice_api.asr.settings import ASRSettings

    with pytest.raises(ValidationError):
        ASRSettings(asr_backend="tgi")
    assert ASRSettings().asr_backend == "transformers"
    assert json.loads(ASRSettings(asr_backend="vllm").model_dump_json())["asr_vllm_url"].startswith("http://")
