"""One full stack (gateway + ASR + TTS + live on tiny models) shared by the fuzz, load, slow-client, session and
chaos tests (CPU is scarce: one stack, started once).

Streams are cut off after ``STALL_SECONDS`` without the client reading (VIBEVOICE_STREAM_STALL_SECONDS), so the
slow-client tests see the cut-off without waiting a minute. ``stack["restart"](name)`` starts a killed process again
on its port (the chaos tests).
"""

from __future__ import annotations

import pytest

from tests.conftest import service_env
from tests.support import BIN, Proc, free_port, wait_http

CAPACITY = {"VIBEVOICE_MAX_CONCURRENCY": "2", "VIBEVOICE_MAX_QUEUE": "2"}
STALL_SECONDS = 8
ORDER = ("asr", "tts", "live", "gw")
SCRIPTS = {"asr": "vibevoice-asr", "tts": "vibevoice-tts", "live": "vibevoice-live", "gw": "vibevoice-gateway"}


@pytest.fixture(scope="session")
def stack(tiny_models, tmp_path_factory):
    logs = tmp_path_factory.mktemp("stack")
    p = {k: free_port() for k in ORDER}
    url = {k: f"http://127.0.0.1:{v}" for k, v in p.items()}
    env = service_env(
        tiny_models,
        VIBEVOICE_TTS_MIN_LATENTS="6",
        VIBEVOICE_TTS_LATENTS_PER_TOKEN="0.2",
        VIBEVOICE_STREAM_STALL_SECONDS=str(STALL_SECONDS),
        **CAPACITY,
    )
    urls = {"VIBEVOICE_ASR_URL": url["asr"], "VIBEVOICE_TTS_URL": url["tts"]}
    envs = {
        "asr": env,
        "tts": env,
        "live": {**env, **urls},
        "gw": {**env, **urls, "VIBEVOICE_LIVE_URL": url["live"]},
    }
    procs: dict[str, Proc] = {}
    started: list[Proc] = []

    def start(name: str) -> Proc:
        proc = Proc(
            [str(BIN / SCRIPTS[name]), "--host", "127.0.0.1", "--port", str(p[name])],
            envs[name],
            logs / f"{name}-{len(started)}.log",
        )
        started.append(proc)
        try:
            wait_http(url[name] + "/ready", timeout=240, proc=proc.proc)
        except Exception as exc:
            raise RuntimeError(f"{name} failed to become ready: {exc}\n--- log ---\n{proc.log()[-4000:]}") from exc
        procs[name] = proc
        return proc

    try:
        for name in ORDER:
            start(name)
        yield {**url, "procs": procs, "capacity": 4, "env": envs, "logs": logs, "restart": start}
    finally:
        for proc in reversed(started):
            proc.stop()
