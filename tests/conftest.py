"""Session-wide fixtures: tiny random models in the VIBEVOICE_MODEL_DIR layout, speech fixtures."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO


def _write_tiny(target: Path, modules: tuple[str, ...]) -> Path:
    for module in modules:
        subprocess.run([sys.executable, "-m", module, str(target)], check=True, cwd=REPO, timeout=600)
    return target


@pytest.fixture(scope="session")
def tiny_asr_models(tmp_path_factory) -> Path:
    """A tiny VibeVoice-ASR in the original layout (the seed plan's download), written by our own writer."""
    return _write_tiny(tmp_path_factory.mktemp("asr-models"), ("vibevoice_api.asr.engine.tiny",))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    """Tiny ASR + TTS checkpoints and voice presets, written through our own writers (official layouts)."""
    return _write_tiny(
        tmp_path_factory.mktemp("models"), ("vibevoice_api.asr.engine.tiny", "vibevoice_api.tts.engine.tiny")
    )


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory) -> Path:
    """A spoken English phrase (espeak-ng is deterministic), 16 kHz mono wav."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.fail("espeak-ng missing: run `make system-deps`")
    out = tmp_path_factory.mktemp("speech") / "hello.wav"
    subprocess.run(
        [
            espeak,
            "-v",
            "en-us",
            "-s",
            "160",
            "-w",
            str(out),
            "Hello, this is a short test of the speech recognition service.",
        ],
        check=True,
    )
    return out


@pytest.fixture(scope="session")
def speech_webm(speech_wav: Path) -> Path:
    """The same phrase as a browser records it: webm/opus."""
    out = speech_wav.with_suffix(".webm")
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(speech_wav), "-c:a", "libopus", "-b:a", "32k", str(out)], check=True
    )
    return out


def service_env(models: Path, **extra: str) -> dict[str, str]:
    env = {
        "VIBEVOICE_CONVERTED_DIR": str(models / ".converted"),
        "VIBEVOICE_MODEL_DIR": str(models),
        "VIBEVOICE_DEVICE": "cpu",
        "VIBEVOICE_AUTO_DOWNLOAD": "false",
        "VIBEVOICE_LOG_FORMAT": "text",
        "HF_HUB_OFFLINE": "1",
        "VIBEVOICE_ASR_MIN_NEW_TOKENS": "48",
        "VIBEVOICE_ASR_TOKENS_PER_SECOND": "4",
        "VIBEVOICE_TTS_LATENTS_PER_TOKEN": "1.5",
        "VIBEVOICE_TTS_MIN_LATENTS": "12",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2"),
    }
    env.update(extra)
    return env
