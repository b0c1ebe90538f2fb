"""A service started on NGC 25.01's torch says so at once, instead of loading transformers' dummy classes."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import service_env
from tests.gpu_readiness.fake_torch import NGC_25_01, reporting
from tests.support import BIN, Proc, free_port


@pytest.mark.parametrize("service", ["asr", "tts"])
def test_start_up_on_ngc_25_01_torch_fails_fast_with_a_clear_message(service, tiny_models, tmp_path):
    port = free_port()
    env = service_env(tiny_models, PYTHONPATH=reporting(NGC_25_01, tmp_path / "site"))
    proc = Proc([str(BIN / f"vibevoice-{service}"), "--port", str(port)], env, tmp_path / "log.txt")
    try:
        body = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.proc.poll() is None:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=2)
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            body = r.json()
            assert r.status_code == 503
            if body["state"] == "failed":
                break
            time.sleep(0.2)
        assert body is not None and body["state"] == "failed", (body, proc.log()[-3000:])
        assert NGC_25_01 in body["error"] and "25.02" in body["error"] and "transformers" in body["error"]
        log = proc.log()
        assert "Traceback" not in log  # one clear line, not a stack trace
        assert "loaded VibeVoice" not in log  # nothing was loaded first
    finally:
        proc.stop()
