"""One full stack (gateway + ASR + TTS on tiny models) shared by the fuzz and load tests."""

from __future__ import annotations

import pytest

from tests.conftest import service_env
from tests.support import BIN, free_port, running

CAPACITY = {"VIBEVOICE_MAX_CONCURRENCY": "2", "VIBEVOICE_MAX_QUEUE": "2"}


@pytest.fixture(scope="session")
def stack(tiny_models, tmp_path_factory):
    logs = tmp_path_factory.mktemp("stack")
    p = {k: free_port() for k in ("asr", "tts", "gw")}
    env = service_env(tiny_models, VIBEVOICE_TTS_MIN_LATENTS="6", VIBEVOICE_TTS_LATENTS_PER_TOKEN="0.2", **CAPACITY)
    with (
        running(
            [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(p["asr"])],
            env,
            logs / "asr.log",
            f"http://127.0.0.1:{p['asr']}/ready",
            timeout=240,
        ) as asr,
        running(
            [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(p["tts"])],
            env,
            logs / "tts.log",
            f"http://127.0.0.1:{p['tts']}/ready",
            timeout=240,
        ) as tts,
        running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(p["gw"])],
            {
                **env,
                "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{p['asr']}",
                "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{p['tts']}",
            },
            logs / "gw.log",
            f"http://127.0.0.1:{p['gw']}/ready",
        ) as gw,
    ):
        yield {
            **{k: f"http://127.0.0.1:{v}" for k, v in p.items()},
            "procs": {"asr": asr, "tts": tts, "gw": gw},
            "capacity": 4,
        }
