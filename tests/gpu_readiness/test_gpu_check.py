"""`make gpu-check`: refuses clearly without a GPU; its CPU dry run goes through every step it runs on a GPU."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from tests.support import REPO

SCRIPT = REPO / "deploy" / "tools" / "gpu_check.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_so_and_fails():
    run = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert "No NVIDIA GPU is visible" in run.stderr and "--cpu" in run.stderr


def test_cpu_dry_run_runs_both_engines_with_each_attention(tiny_models):
    run = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--model-dir", str(tiny_models)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for engine in ("tts", "asr"):
        for attn in ("eager", "sdpa"):
            rows = [line for line in lines if line.split()[:3] == [engine, attn, "float32"]]
            assert len(rows) == 1, run.stdout
            assert "RTF" in rows[0]
            if engine == "tts":
                assert "first audio" in rows[0]
    assert "gpu-check: all runs worked" in run.stdout


def test_make_target_passes_model_dir_only_when_given():
    def command(*args: str) -> str:
        # Not MODEL_DIR, nor the outer make's MAKEFLAGS/MAKELEVEL (`make test` runs this: its child would
        # print "Entering/Leaving directory" lines).
        env = {k: v for k, v in os.environ.items() if k not in ("MODEL_DIR", "MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        out = subprocess.run(
            ["make", "--no-print-directory", "-n", "gpu-check", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip().splitlines()[-1]

    assert command("MODEL_DIR=/srv/models").endswith("deploy/tools/gpu_check.py --model-dir /srv/models")
    assert "--model-dir" not in command()
