"""Engines and error classes stand without the web framework: importing them loads no FastAPI/Starlette."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import REPO

SCRIPT = r"""
import json, sys
import vibevoice_api.shared.errors
import vibevoice_api.asr.engine
import vibevoice_api.tts.engine
print(json.dumps(sorted(sys.modules)))
"""


def test_errors_and_engines_import_without_fastapi():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, capture_output=True, text=True, timeout=300, check=True
    )
    loaded = {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}
    assert {"vibevoice_api", "pydantic"} <= loaded  # the list is real
    assert not loaded & {"fastapi", "starlette", "uvicorn"}, sorted(loaded & {"fastapi", "starlette", "uvicorn"})
