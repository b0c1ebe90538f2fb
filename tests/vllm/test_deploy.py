"""The vllm service in Docker Compose and Kubernetes, checked offline: what it mounts exists, its manifest is
generated from the files it carries, the ASR service is pointed at it, every manifest validates."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.deploy.test_configs import all_settings_env, compose_binary
from tests.support import BIN, REPO

DEPLOY = REPO / "deploy"
OVERLAY = DEPLOY / "k8s" / "overlays" / "vllm"


def _compose_config(**env: str) -> dict:
    r = subprocess.run(
        [str(compose_binary()), "-f", "docker-compose.yml", "--profile", "vllm", "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=DEPLOY,
        env={"MODEL_DIR": "/srv/models", "PATH": "/usr/bin:/bin", **env},
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_compose_vllm_service_serves_the_asr_service():
    cfg = _compose_config(ASR_BACKEND="vllm")
    vllm, asr = cfg["services"]["vllm"], cfg["services"]["asr"]
    assert vllm["image"].startswith("vllm/vllm-openai:")  # the stock image, no build of ours
    flags = dict(
        a.removeprefix("--").split("=", 1) if "=" in a else (a.removeprefix("--"), "") for a in vllm["command"]
    )
    assert flags["served-model-name"] == "vibevoice-asr" and flags["port"] == "8000"
    assert flags["max-model-len"] == "65536" and flags["max-num-seqs"] == "64"
    assert "enable-chunked-prefill" in flags and flags["tensor-parallel-size"] == "1"
    for volume in vllm["volumes"][1:]:  # our plugin + chat template, and the audio encoding: files of this repo
        assert Path(volume["source"]).exists() and volume["read_only"], volume
    mounts = {v["target"]: v["source"] for v in vllm["volumes"]}
    assert mounts["/opt/vibevoice-vllm"].endswith("deploy/vllm")
    assert mounts[vllm["environment"]["ASR_ENCODING_PY"]].endswith("asr/engine/encoding.py")
    assert vllm["environment"]["PYTHONPATH"] == "/opt/vibevoice-vllm/plugin"
    assert "--chat-template=/opt/vibevoice-vllm/vibevoice-asr.jinja" in vllm["command"]
    assert asr["environment"]["VIBEVOICE_ASR_BACKEND"] == "vllm"
    assert asr["environment"]["VIBEVOICE_ASR_VLLM_URL"] == "http://vllm:8000"
    # Without the profile and the variable: the transformers backend, no vllm service.
    r = subprocess.run(
        [str(compose_binary()), "-f", "docker-compose.yml", "config", "--format", "json"],
        capture_output=True,
        text=True,
        cwd=DEPLOY,
        env={"MODEL_DIR": "/srv/models", "PATH": "/usr/bin:/bin"},
    )
    plain = json.loads(r.stdout)
    assert "vllm" not in plain["services"]
    assert plain["services"]["asr"]["environment"]["VIBEVOICE_ASR_BACKEND"] == "transformers"


def test_k8s_vllm_manifest_is_generated_from_the_files_it_carries():
    r = subprocess.run(
        [sys.executable, str(DEPLOY / "tools" / "gen_k8s_vllm.py")], capture_output=True, text=True, check=True
    )
    assert r.stdout == (OVERLAY / "vllm.yaml").read_text(), "run: python deploy/tools/gen_k8s_vllm.py > ..."
    docs = list(yaml.safe_load_all((OVERLAY / "vllm.yaml").read_text()))
    config = next(d for d in docs if d["kind"] == "ConfigMap")
    assert config["data"]["encoding.py"] == (REPO / "asr-service/src/vibevoice_api/asr/engine/encoding.py").read_text()
    r = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", str(OVERLAY / "vllm.yaml")], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stdout + r.stderr


def _apply_json_patch(doc: dict, ops: list[dict]) -> dict:
    out = copy.deepcopy(doc)
    for op in ops:
        *parents, last = [p for p in op["path"].split("/")[1:]]
        node = out
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        if op["op"] == "add" and last == "-":
            node.append(op["value"])
        elif op["op"] in ("add", "replace"):
            if isinstance(node, list):
                node[int(last)] = op["value"]
            else:
                assert op["op"] == "add" or last in node, op
                node[last] = op["value"]
        elif op["op"] == "remove":
            del node[int(last) if isinstance(node, list) else last]
    return out


def test_k8s_overlay_points_asr_at_vllm_without_a_gpu(tmp_path):
    kust = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    assert kust["resources"] == ["../..", "vllm.yaml"]
    base = next(d for d in yaml.safe_load_all((DEPLOY / "k8s" / "asr.yaml").read_text()) if d["kind"] == "Deployment")
    ops = yaml.safe_load((OVERLAY / kust["patches"][0]["path"]).read_text())
    # the one positional op replaces the device variable: it must still be where the patch expects it
    replaced = [op for op in ops if op["op"] == "replace" and "/env/" in op["path"]]
    for op in replaced:
        index = int(op["path"].rsplit("/", 1)[1])
        assert base["spec"]["template"]["spec"]["containers"][0]["env"][index]["name"] == op["value"]["name"]
    patched = _apply_json_patch(base, ops)
    c = patched["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["VIBEVOICE_ASR_BACKEND"] == "vllm" and env["VIBEVOICE_ASR_VLLM_URL"] == "http://vllm:8000"
    assert env["VIBEVOICE_DEVICE"] == "cpu" and "nvidia.com/gpu" not in json.dumps(c["resources"])
    assert {n for n in env if n.startswith("VIBEVOICE_")} <= all_settings_env()
    out = tmp_path / "asr-vllm.yaml"
    out.write_text(yaml.safe_dump(patched))
    r = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
