"""A real headless Chromium (Debian's `chromium`, driven by playwright) against the stack on tiny models."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import service_env
from tests.support import BIN, REPO, free_port, running

ARTIFACTS = REPO / ".cache" / "artifacts" / "playground"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # A microphone that plays a file, and no permission prompt for it.
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
KEY = "sk-playground-test-key"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("Debian's chromium is missing: run `make system-deps`")
    return path


@pytest.fixture(scope="session")
def mic_wav(speech_wav: Path, tmp_path_factory) -> Path:
    """The phrase, then silence, as Chromium's fake microphone plays it (it loops the file)."""
    import subprocess

    out = tmp_path_factory.mktemp("mic") / "mic.wav"
    subprocess.run(
        ["sox", str(speech_wav), "-r", "48000", "-c", "1", "-b", "16", str(out), "pad", "0.5", "2.5"], check=True
    )
    return out


@pytest.fixture(scope="module")
def stack(tiny_models, tmp_path_factory) -> Iterator[dict[str, str]]:
    """ASR + TTS on tiny models, the live service, and two gateways in front: one open, one that requires a key."""
    logs = tmp_path_factory.mktemp("playground-stack")
    p = {k: free_port() for k in ("asr", "tts", "live", "gw", "gw_key")}
    env = service_env(tiny_models, VIBEVOICE_TTS_MIN_LATENTS="6", VIBEVOICE_TTS_LATENTS_PER_TOKEN="0.2")
    upstreams = {
        "VIBEVOICE_ASR_URL": f"http://127.0.0.1:{p['asr']}",
        "VIBEVOICE_TTS_URL": f"http://127.0.0.1:{p['tts']}",
    }
    gateway_env = {**env, **upstreams, "VIBEVOICE_LIVE_URL": f"http://127.0.0.1:{p['live']}"}
    with (
        running(
            [str(BIN / "vibevoice-asr"), "--host", "127.0.0.1", "--port", str(p["asr"])],
            env,
            logs / "asr.log",
            f"http://127.0.0.1:{p['asr']}/ready",
            timeout=240,
        ),
        running(
            [str(BIN / "vibevoice-tts"), "--host", "127.0.0.1", "--port", str(p["tts"])],
            env,
            logs / "tts.log",
            f"http://127.0.0.1:{p['tts']}/ready",
            timeout=240,
        ),
        running(
            [str(BIN / "vibevoice-live"), "--host", "127.0.0.1", "--port", str(p["live"])],
            {**env, **upstreams},
            logs / "live.log",
            f"http://127.0.0.1:{p['live']}/ready",
            timeout=120,
        ),
        running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(p["gw"])],
            gateway_env,
            logs / "gw.log",
            f"http://127.0.0.1:{p['gw']}/ready",
        ),
        running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(p["gw_key"])],
            {**gateway_env, "VIBEVOICE_API_KEYS": KEY},
            logs / "gw_key.log",
            f"http://127.0.0.1:{p['gw_key']}/ready",
        ),
    ):
        yield {k: f"http://127.0.0.1:{v}" for k, v in p.items()}


@pytest.fixture(scope="module")
def browser(mic_wav: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=chromium_path(),
            args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={mic_wav}"],
        )
        try:
            yield b
        finally:
            b.close()


class Console:
    """Everything the page logged as an error, and uncaught exceptions."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page) -> None:
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))


@pytest.fixture()
def console(page) -> Console:
    """Console errors of ``page`` (attached before the test navigates)."""
    c = Console()
    c.attach(page)
    return c


@pytest.fixture()
def page(browser, request):
    """A fresh page (own context, microphone allowed); a screenshot is saved as an artifact at the end."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["microphone"])
    pg = context.new_page()
    try:
        yield pg
    finally:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        try:
            pg.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
        finally:
            context.close()
