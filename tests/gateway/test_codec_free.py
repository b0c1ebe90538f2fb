"""The gateway is a thin router: starting it and serving requests loads no codec (PyAV) and no torch."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO

# Build the real app, run its lifespan, and call the routes a client uses (the services are absent:
# the gateway answers from itself, with 503s for the proxied paths), then list what got imported.
SCRIPT = r"""
import json, sys
from starlette.testclient import TestClient
from vibevoice_api.gateway.main import main  # the console script's module, as `vibevoice-gateway` imports it
from vibevoice_api.gateway.app import build_app
from vibevoice_api.gateway.settings import GatewaySettings

app = build_app(GatewaySettings(asr_url="http://127.0.0.1:9", tts_url="http://127.0.0.1:9", connect_timeout=0.5))
with TestClient(app) as client:
    statuses = [
        client.get("/v1/models").status_code,
        client.get("/openapi.json").status_code,
        client.post("/v1/audio/speech", json={"input": "hi", "voice": "carter"}).status_code,
        client.post("/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF", "audio/wav")}).status_code,
    ]
print(json.dumps({"statuses": statuses, "modules": sorted(sys.modules)}))
"""


def test_gateway_imports_neither_av_nor_torch():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [200, 200, 503, 503]
    loaded = {m.split(".")[0] for m in report["modules"]}
    assert "fastapi" in loaded  # the list is real
    assert not loaded & {"av", "torch", "numpy", "transformers"}, sorted(loaded & {"av", "torch", "numpy"})
