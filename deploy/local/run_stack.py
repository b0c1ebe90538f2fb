"""`make run`: gateway + ASR + TTS + live as local processes, logs interleaved with a prefix, Ctrl-C stops all.

Ports come from VIBEVOICE_GATEWAY_PORT / VIBEVOICE_ASR_PORT / VIBEVOICE_TTS_PORT / VIBEVOICE_LIVE_PORT
(8080/8081/8082/8083); set VIBEVOICE_RUN_ONLY=asr or tts to start one service without the other (and
without the live service, which needs both). With VIBEVOICE_ASR_BACKEND=vllm (`make run ASR_BACKEND=vllm`)
and no VIBEVOICE_ASR_VLLM_URL, a local vLLM server starts beside them on VIBEVOICE_VLLM_PORT (8000), from
its own venv under .cache/ (installed on first use), see vllm_server.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

BIN = Path(sys.executable).parent
COLORS = {"gateway": "\033[36m", "asr": "\033[35m", "tts": "\033[33m", "live": "\033[32m", "vllm": "\033[34m"}


def pump(name: str, stream) -> None:
    color = COLORS[name] if sys.stdout.isatty() else ""
    reset = "\033[0m" if color else ""
    for line in iter(stream.readline, b""):
        sys.stdout.write(f"{color}{name:>7} |{reset} {line.decode(errors='replace')}")
        sys.stdout.flush()


def main() -> int:
    host = os.environ.get("VIBEVOICE_HOST", "127.0.0.1")
    ports = {
        "gateway": os.environ.get("VIBEVOICE_GATEWAY_PORT", "8080"),
        "asr": os.environ.get("VIBEVOICE_ASR_PORT", "8081"),
        "tts": os.environ.get("VIBEVOICE_TTS_PORT", "8082"),
        "live": os.environ.get("VIBEVOICE_LIVE_PORT", "8083"),
    }
    only = os.environ.get("VIBEVOICE_RUN_ONLY", "").strip()
    names = [n for n in ("asr", "tts") if not only or n == only] + ([] if only else ["live"]) + ["gateway"]
    env = dict(os.environ)
    env.setdefault("VIBEVOICE_LOG_FORMAT", "text")
    env.setdefault("VIBEVOICE_ASR_URL", f"http://127.0.0.1:{ports['asr']}" if "asr" in names else "")
    env.setdefault("VIBEVOICE_TTS_URL", f"http://127.0.0.1:{ports['tts']}" if "tts" in names else "")
    env.setdefault("VIBEVOICE_LIVE_URL", f"http://127.0.0.1:{ports['live']}" if "live" in names else "")
    procs: dict[str, subprocess.Popen] = {}
    if (
        "asr" in names
        and env.get("VIBEVOICE_ASR_BACKEND", "transformers") == "vllm"
        and not env.get("VIBEVOICE_ASR_VLLM_URL")
    ):
        import vllm_server  # beside this script

        port = int(os.environ.get("VIBEVOICE_VLLM_PORT", "8000"))
        model = Path(env.get("VIBEVOICE_MODEL_DIR", "/models")) / env.get("VIBEVOICE_ASR_MODEL_SUBDIR", "VibeVoice-ASR")
        procs["vllm"] = vllm_server.start(model, port, stdout=subprocess.PIPE)
        threading.Thread(target=pump, args=("vllm", procs["vllm"].stdout), daemon=True).start()
        env["VIBEVOICE_ASR_VLLM_URL"] = f"http://127.0.0.1:{port}"
    for name in names:
        cmd = [str(BIN / f"vibevoice-{name}"), "--host", host, "--port", ports[name]]
        procs[name] = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=pump, args=(name, procs[name].stdout), daemon=True).start()
    print(f"vibevoice-api: gateway on http://{host}:{ports['gateway']}/v1 (Ctrl-C stops all)", flush=True)

    def stop(*_: object) -> None:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    try:
        while True:
            for name, p in procs.items():
                code = p.poll()
                if code is not None:
                    print(f"vibevoice-api: {name} exited with {code}; stopping the others", flush=True)
                    stop()
                    for q in procs.values():
                        q.wait(timeout=60)
                    return code or 1
            threading.Event().wait(0.5)
    except KeyboardInterrupt:
        stop()
        for q in procs.values():
            try:
                q.wait(timeout=60)
            except subprocess.TimeoutExpired:
                q.kill()
        return 0


if __name__ == "__main__":
    sys.exit(main())
