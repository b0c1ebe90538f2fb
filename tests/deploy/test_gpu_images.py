"""The GPU images: base images transformers accepts, flash-attn failures that fail the build, the build's
own check that the model classes are real (run here with a stub pip, the real Python and our real check)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.gpu_readiness.fake_torch import NGC_25_01, reporting
from tests.support import BIN, REPO

DOCKER = REPO / "deploy" / "docker"
GPU_DOCKERFILES = [DOCKER / "Dockerfile.asr", DOCKER / "Dockerfile.tts"]
INSTALL = DOCKER / "install-runtime.sh"
COMPOSE = [REPO / "deploy" / "docker-compose.yml", REPO / "deploy" / "docker-compose.dgx-spark.yml"]


def ngc_release(image: str) -> tuple[int, int]:
    m = re.fullmatch(r"nvcr\.io/nvidia/pytorch:(\d\d)\.(\d\d)-py3", image)
    assert m, f"{image} is not an NGC PyTorch image"
    return int(m[1]), int(m[2])


def default_base(dockerfile: Path) -> str:
    return re.search(r"^ARG BASE_IMAGE=(\S+)$", dockerfile.read_text(), re.M)[1]


@pytest.mark.parametrize("dockerfile", GPU_DOCKERFILES, ids=lambda p: p.name)
def test_default_base_images_ship_a_torch_transformers_accepts(dockerfile):
    assert ngc_release(default_base(dockerfile)) >= (25, 2)  # 25.01's torch 2.6.0a0 is refused by transformers 5


def test_compose_defaults_use_accepted_base_images():
    for file in COMPOSE:
        services = yaml.safe_load(file.read_text())["services"]
        for name in ("asr", "tts"):
            base = services[name]["build"]["args"]["BASE_IMAGE"]
            default = re.fullmatch(r"\$\{\w+:-(.+)\}", base)[1]
            assert ngc_release(default) >= (25, 2), (file.name, name, base)


@pytest.mark.parametrize("dockerfile", GPU_DOCKERFILES, ids=lambda p: p.name)
def test_every_gpu_image_uses_the_expandable_allocator_and_checks_its_model_classes(dockerfile):
    text = dockerfile.read_text()
    assert "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True" in text
    named = re.search(r"install-runtime\.sh((?:\s+\\?\s*[\w.]+:[A-Z]\w+)+)", text)
    assert named, "the build must name the model classes to check"
    classes = re.findall(r"[\w.]+:[A-Z]\w+", named[1])
    assert any(c.startswith("transformers:") for c in classes)
    # The classes the build checks are real here (a typo would make every build fail).
    run = subprocess.run(
        [sys.executable, "-m", "vibevoice_api.shared.stack_check", *classes], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.parametrize("path", [*GPU_DOCKERFILES, INSTALL], ids=lambda p: p.name)
def test_no_install_failure_is_swallowed(path):
    text = path.read_text()
    assert not re.search(r"\|\|\s*(echo|true|:)\b", text), "a failing command must fail the build"
    if path == INSTALL:
        assert "set -euo pipefail" in text


def test_install_script_passes_shellcheck():
    run = subprocess.run([str(BIN / "shellcheck"), str(INSTALL)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout


def run_install(
    tmp_path: Path, flash: str, *, flash_pip_fails: bool, torch_version: str | None = None, **extra_env: str
):
    """install-runtime.sh with a pip that installs nothing (and fails for flash-attn when asked)."""
    stub = tmp_path / "bin"
    stub.mkdir(exist_ok=True)
    fail = 'case "$*" in *flash-attn*) echo "no wheel for this torch; build failed" >&2; exit 1;; esac\n'
    (stub / "pip").write_text(
        '#!/bin/sh\necho "pip $*" >> "$PIP_LOG"\n' + (fail if flash_pip_fails else "") + "exit 0\n"
    )
    (stub / "pip").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{stub}:{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PIP_LOG": str(tmp_path / "pip.log"),
        "FLASH_ATTN": flash,
        "NODEPS_EXTRA": "resemblyzer==0.1.4",
        "NGC_CONSTRAINTS": str(tmp_path / "no-ngc-constraints.txt"),
        **extra_env,
    }
    if torch_version:
        env["PYTHONPATH"] = reporting(torch_version, tmp_path / "site")
    return subprocess.run(
        ["bash", str(INSTALL), "transformers:VibeVoiceAsrForConditionalGeneration"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_flash_attn_required_but_not_installable_fails_the_build(tmp_path):
    run = run_install(tmp_path, "1", flash_pip_fails=True)
    assert run.returncode != 0
    assert "flash-attn" in (tmp_path / "pip.log").read_text()


def test_flash_attn_that_installs_but_does_not_import_fails_the_build(tmp_path):
    run = run_install(tmp_path, "1", flash_pip_fails=False)  # "installed", yet `import flash_attn` fails
    assert run.returncode != 0
    assert "FLASH_ATTN=1 but flash-attn does not import" in run.stderr


def test_auto_builds_without_flash_attn_and_says_sdpa(tmp_path):
    run = run_install(tmp_path, "auto", flash_pip_fails=True)
    assert run.returncode == 0, run.stderr
    assert "flash-attn absent (sdpa will be used)" in run.stdout
    assert "flash-attn" not in (tmp_path / "pip.log").read_text()  # nothing compiled behind the user's back
    assert "torch==" in run.stdout  # the base image's torch is pinned for the resolve
    pip_calls = (tmp_path / "pip.log").read_text().splitlines()
    assert any("--no-deps resemblyzer==0.1.4" in c and "keep-torch" in c for c in pip_calls)


def test_a_base_image_with_ngc_25_01_torch_fails_the_build(tmp_path):
    run = run_install(tmp_path, "auto", flash_pip_fails=False, torch_version=NGC_25_01)
    assert run.returncode != 0
    assert NGC_25_01 in run.stderr and "25.02" in run.stderr


def test_unknown_flash_attn_value_is_refused(tmp_path):
    run = run_install(tmp_path, "yes", flash_pip_fails=False)
    assert run.returncode == 2 and "FLASH_ATTN must be" in run.stderr


def test_ngc_constraints_are_honoured_and_unpin_drops_only_the_named_pins(tmp_path):
    ngc = tmp_path / "constraint.txt"
    ngc.write_text("torch==2.7.0a0+79aa17489c.nv25.02\nhuggingface_hub==0.26.0\nnumpy==1.26.4\n")
    run = run_install(tmp_path, "auto", flash_pip_fails=False, NGC_CONSTRAINTS=str(ngc), UNPIN="huggingface-hub")
    assert run.returncode == 0, run.stderr
    assert ngc.read_text().splitlines() == ["torch==2.7.0a0+79aa17489c.nv25.02", "numpy==1.26.4"]
    wheels = next(c for c in (tmp_path / "pip.log").read_text().splitlines() if "/wheels/" in c)
    assert f"-c {ngc}" in wheels and "keep-torch" in wheels
