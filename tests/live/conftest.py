"""The live stack for protocol tests: ASR + TTS services on tiny models and the live service (+ the gateway)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import service_env
from tests.support import BIN, free_port, running

KEY = "live-test-key"


@pytest.fixture(scope="session")
def live_stack(tiny_models, tmp_path_factory):
    """Real processes, API keys on everywhere, as deployed: live → ASR/TTS (the client's key is passed on)."""
    logs = tmp_path_factory.mktemp("live-stack")
    asr_port, tts_port, live_port = free_port(), free_port(), free_port()
    common = service_env(tiny_models, VIBEVOICE_API_KEYS=KEY)
    urls = {"VIBEVOICE_ASR_URL": f"http://127.0.0.1:{asr_port}", "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{tts_port}"}
    with (
        running(
            [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(asr_port)],
            {**common, "VIBEVOICE_ASR_MAX_BATCH_WAIT_MS": "200"},
            logs / "asr.log",
            f"http://127.0.0.1:{asr_port}/ready",
            timeout=240,
        ) as asr,
        running(
            [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(tts_port)],
            common,
            logs / "tts.log",
            f"http://127.0.0.1:{tts_port}/ready",
            timeout=240,
        ) as tts,
        running(
            [str(BIN / "vibevoice-live"), "--host", "127.0.0.1", "--port", str(live_port)],
            {**common, **urls, "VIBEVOICE_LIVE_MAX_BUFFER_SECONDS": "30", "VIBEVOICE_LIVE_MAX_APPEND_KB": "256"},
            logs / "live.log",
            f"http://127.0.0.1:{live_port}/ready",
            timeout=120,
        ) as live,
    ):
        yield {
            "asr": f"http://127.0.0.1:{asr_port}",
            "tts": f"http://127.0.0.1:{tts_port}",
            "live": f"http://127.0.0.1:{live_port}",
            "procs": {"asr": asr, "tts": tts, "live": live},
            "env": {**common, **urls, "VIBEVOICE_LIVE_URL": f"http://127.0.0.1:{live_port}"},
            "logs": logs,
        }


@pytest.fixture(scope="session")
def gateway(live_stack):
    """The gateway in front of the live stack (routes /v1/realtime sessions to the live service)."""
    port = free_port()
    with running(
        [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(port)],
        live_stack["env"],
        live_stack["logs"] / "gateway.log",
        f"http://127.0.0.1:{port}/ready",
    ) as proc:
        yield {"url": f"http://127.0.0.1:{port}", "proc": proc}


def pcm_of(path: Path, rate: int = 24000, fmt: str = "s16le") -> bytes:
    """Any audio file as raw mono bytes (ffmpeg: an encoder independent of ours)."""
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(path), "-f", fmt, "-ac", "1", "-ar", str(rate), "-"],
        capture_output=True,
        check=True,
    ).stdout


@pytest.fixture(scope="session")
def speech_pcm(speech_wav) -> bytes:
    """The espeak-ng phrase as PCM16 24 kHz mono."""
    return pcm_of(speech_wav)


@pytest.fixture(scope="session")
def short_speech_pcm(tmp_path_factory) -> bytes:
    """A short espeak-ng phrase (about one second) as PCM16 24 kHz mono."""
    out = tmp_path_factory.mktemp("short") / "short.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", str(out), "Good morning."], check=True)
    return pcm_of(out)
