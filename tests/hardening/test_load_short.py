"""The load test in short form: the stack at 2x and 10x its capacity; nothing may be lost or hang."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess

import pytest

from tests.support import REPO


def _loadtest():
    spec = importlib.util.spec_from_file_location("loadtest", REPO / "bench" / "loadtest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("level", [2, 10])
def test_overload_answers_everything(stack, level):
    wav = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-f", "wav", "-"],
        capture_output=True,
        check=True,
    ).stdout
    res = asyncio.run(_loadtest().run_level(stack["gw"], level * stack["capacity"], 8.0, 90.0, wav))
    print(f"\nload x{level}: {res}")
    assert res["lost_or_hung"] == 0, res["bad"]
    assert res["answered_ok"] > 0
    if level == 10:
        assert res["answered_error"] > 0  # past capacity some requests are refused politely (429 + Retry-After)
