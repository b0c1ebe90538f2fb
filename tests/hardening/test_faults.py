"""Faults a team will meet: dead or restarting services, broken model folders, overload, SIGTERM."""

from __future__ import annotations

import concurrent.futures
import shutil
import signal
import subprocess

import httpx
import pytest

from tests.conftest import service_env
from tests.support import BIN, Proc, assert_openai_error, free_port, kill_session, running, wait_http, wait_until

SPEECH = {
    "model": "tts-1",
    "input": "A sentence to speak for the fault tests.",
    "voice": "carter",
    "response_format": "pcm",
}


def start_tts(models, tmp_path, name="tts", **env):
    port = free_port()
    proc = Proc(
        [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(port)],
        service_env(models, **env),
        tmp_path / f"{name}-{port}.log",
    )
    return proc, f"http://127.0.0.1:{port}", port


def wait_load_failed(url: str) -> dict:
    """The service's /ready body once its model load has failed (or once the hang guard gives up)."""
    wait_http(url + "/health", timeout=60)
    wait_until(lambda: httpx.get(url + "/ready").json()["state"] == "failed")
    return httpx.get(url + "/ready").json()


def metric(url: str, name: str) -> float:
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return 0.0


def refused(url: str) -> bool:
    try:
        httpx.get(url + "/health", timeout=5)
    except httpx.HTTPError:
        return True
    return False


def test_killed_service_gives_openai_error_then_recovers(tiny_models, tmp_path):
    tts, tts_url, tts_port = start_tts(tiny_models, tmp_path)
    gw_port = free_port()
    try:
        wait_http(tts_url + "/ready", timeout=240)
        env = service_env(tiny_models, VIBEVOICE_TTS_URL=tts_url, VIBEVOICE_ASR_URL="")
        with running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(gw_port)],
            env,
            tmp_path / "gw.log",
            f"http://127.0.0.1:{gw_port}/health",
        ):
            gw = f"http://127.0.0.1:{gw_port}"
            assert httpx.post(gw + "/v1/audio/speech", json=SPEECH, timeout=60).status_code == 200
            kill_session(tts.proc)
            r = httpx.post(gw + "/v1/audio/speech", json=SPEECH, timeout=30)
            assert r.status_code in (502, 503)
            assert_openai_error(r.json(), "server_error")
            assert r.headers.get("retry-after")
            # The service restarts on the same port: the next request is served again.
            tts = Proc(
                [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(tts_port)],
                service_env(tiny_models),
                tmp_path / "tts-restarted.log",
            )
            wait_http(tts_url + "/ready", timeout=240)
            assert httpx.post(gw + "/v1/audio/speech", json=SPEECH, timeout=60).status_code == 200
    finally:
        tts.stop()


@pytest.mark.parametrize("problem", ["missing", "truncated", "wrong_format"])
def test_broken_model_folder_is_reported_not_crashed(tiny_models, tmp_path, problem):
    models = tmp_path / "models"
    shutil.copytree(tiny_models, models, ignore=shutil.ignore_patterns(".converted"))
    folder = models / "VibeVoice-Realtime-0.5B"
    expect = {"missing": "no model files", "truncated": "truncated", "wrong_format": "model_type"}[problem]
    if problem == "missing":
        shutil.rmtree(folder)
    elif problem == "truncated":
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    else:
        (folder / "config.json").write_text('{"model_type": "whisper"}')
    proc, url, _ = start_tts(models, tmp_path)
    try:
        ready = wait_load_failed(url)
        assert ready["state"] == "failed" and expect in ready["error"], ready
        assert httpx.get(url + "/ready").status_code == 503
        r = httpx.post(url + "/v1/audio/speech", json=SPEECH, timeout=30)
        assert r.status_code == 503
        err = assert_openai_error(r.json(), "server_error")
        assert err["code"] == "model_load_failed" and expect in err["message"]
        assert "Traceback" not in proc.log()  # a clear one-line error, not a stack trace
    finally:
        proc.stop()


def test_cuda_on_a_cpu_machine_is_a_clear_error(tiny_models, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    proc, url, _ = start_tts(tiny_models, tmp_path, VIBEVOICE_DEVICE="cuda:0")
    try:
        ready = wait_load_failed(url)
        assert "no CUDA GPU" in ready["error"]
    finally:
        proc.stop()
    bad = Proc(
        [str(BIN / "vibevoice-tts"), "--port", str(free_port())],
        service_env(tiny_models, VIBEVOICE_DEVICE="tpu"),
        tmp_path / "bad.log",
    )
    assert bad.proc.wait(60) != 0
    assert "VIBEVOICE_DEVICE" in bad.log()


def test_overload_is_refused_politely_with_retry_after(tiny_models, tmp_path):
    proc, url, _ = start_tts(
        tiny_models, tmp_path, VIBEVOICE_MAX_CONCURRENCY="1", VIBEVOICE_MAX_QUEUE="1", VIBEVOICE_TTS_MIN_LATENTS="400"
    )
    try:
        wait_http(url + "/ready", timeout=240)

        def one(_):
            r = httpx.post(url + "/v1/audio/speech", json=SPEECH, timeout=120)
            return r.status_code, r.headers.get("retry-after"), r.json() if r.status_code != 200 else None

        with concurrent.futures.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(one, range(6)))
        codes = [c for c, _, _ in results]
        assert codes.count(200) >= 2 and codes.count(429) >= 1, codes
        for code, retry, body in results:
            if code == 429:
                assert retry and int(retry) >= 1
                assert assert_openai_error(body, "rate_limit_error")["code"] == "rate_limit_exceeded"
        assert "vibevoice_http_rejected_total" in httpx.get(url + "/metrics").text
    finally:
        proc.stop()


def test_sigterm_finishes_in_flight_and_exits(tiny_models, tmp_path):
    proc, url, _ = start_tts(
        tiny_models, tmp_path, VIBEVOICE_TTS_MIN_LATENTS="60", VIBEVOICE_SHUTDOWN_GRACE_SECONDS="300"
    )
    try:
        wait_http(url + "/ready", timeout=240)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            # Bounds here only guard against a hang (a busy machine may take minutes): nothing is timed.
            fut = pool.submit(lambda: httpx.post(url + "/v1/audio/speech", json=SPEECH, timeout=900))
            assert wait_until(lambda: metric(url, "vibevoice_tts_active_streams") >= 1)  # being generated
            proc.proc.send_signal(signal.SIGTERM)
            assert wait_until(lambda: refused(url))  # draining: no new connections
            with pytest.raises(httpx.HTTPError):  # new connections are refused while it drains
                httpx.post(url + "/v1/audio/speech", json=SPEECH, timeout=5)
            r = fut.result(timeout=900)
        assert r.status_code == 200 and len(r.content) >= 60 * 3200 * 2 * 0.9  # the in-flight one completed whole
        assert proc.proc.wait(300) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal after draining
    finally:
        proc.stop()


def test_upload_over_the_limit_never_reaches_memory(tiny_asr_models, tmp_path):
    port = free_port()
    env = service_env(tiny_asr_models, VIBEVOICE_MAX_UPLOAD_MB="1")
    with running(
        [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "asr.log",
        f"http://127.0.0.1:{port}/ready",
        timeout=240,
    ):

        def body():
            yield b'--x\r\nContent-Disposition: form-data; name="file"; filename="huge.wav"\r\n\r\n'
            for _ in range(4096):  # would be 4 GiB if it were all sent
                yield b"\0" * (1 << 20)

        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/audio/transcriptions",
            content=body(),
            headers={"content-type": "multipart/form-data; boundary=x"},
            timeout=60,
        )
        assert r.status_code == 413
        assert_openai_error(r.json())


def test_full_temp_dir_fails_cleanly_and_leaves_nothing(tmp_path):
    """Uploads are spooled to VIBEVOICE_TMP_DIR; when it cannot take more, the client gets a clear 507."""
    import resource

    spool = tmp_path / "spool"
    limit = 3 * 2**20

    def small_disk():  # the process may write at most 3 MiB per file: a full disk as the spooler sees it
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    from vibevoice_api.asr.engine.tiny import write_tiny_asr_model

    models = tmp_path / "models"
    write_tiny_asr_model(models / "VibeVoice-ASR", layout="hf")  # nothing to convert: no writes at start
    port = free_port()
    env = service_env(models, VIBEVOICE_TMP_DIR=str(spool))
    proc = Proc(
        [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(port)],
        env,
        tmp_path / "asr.log",
        preexec_fn=small_disk,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/ready", timeout=240, proc=proc.proc)
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/audio/transcriptions",
            files={"file": ("big.wav", b"\0" * (6 * 2**20))},
            timeout=60,
        )
        assert r.status_code == 507
        assert assert_openai_error(r.json())["code"] == "insufficient_storage"
        assert list(spool.iterdir()) == []  # nothing left behind
        wav = subprocess.run(
            ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-f", "wav", "-"],
            capture_output=True,
            check=True,
        ).stdout
        ok = httpx.post(f"http://127.0.0.1:{port}/v1/audio/transcriptions", files={"file": ("a.wav", wav)}, timeout=60)
        assert ok.status_code == 200  # the service is fine afterwards
    finally:
        proc.stop()
