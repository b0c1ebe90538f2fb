"""What both model services need to open a checkpoint folder: devices, attention, weight shards, tokenizer.

Every problem is a :class:`ModelLoadError` whose message names the file and what to do; the services
report it through ``/ready`` and their 503s instead of a stack trace.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

log = logging.getLogger("vibevoice_api.model_files")


class ModelLoadError(Exception):
    """The model folder is missing, incomplete or odd; the message says what and where."""

    @property
    def user_message(self) -> str:
        return str(self)


def resolve_device(name: str) -> Any:
    """``auto | cpu | cuda | cuda:N | mps`` → a torch device, or a clear error when it does not exist here."""
    import torch

    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"VIBEVOICE_DEVICE={name} but no CUDA GPU is visible to this process "
                "(check the NVIDIA runtime / CUDA_VISIBLE_DEVICES), or set VIBEVOICE_DEVICE=cpu."
            )
        idx = int(name.split(":", 1)[1]) if ":" in name else 0
        if idx >= torch.cuda.device_count():
            raise ModelLoadError(f"VIBEVOICE_DEVICE={name} but only {torch.cuda.device_count()} GPU(s) are visible.")
        return torch.device(f"cuda:{idx}")
    if name in ("cpu", "mps"):
        return torch.device(name)
    raise ModelLoadError(f"Unknown device {name!r}: use auto, cpu, cuda or cuda:N.")


def resolve_dtype(name: str | None, device: Any) -> Any:
    """``auto`` = bfloat16 on a GPU, float32 on the CPU."""
    import torch

    if name in (None, "", "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


# transformers 5 treats torch as missing below this version, and a pre-release (2.6.0a0, NGC 25.01) sorts below it.
TRANSFORMERS_TORCH_FLOOR = "2.6.0"
# FlashAttention-2 kernels exist for Ampere (8.0) and newer; ``auto`` uses them only up to Hopper (9.x), the
# architectures flash-attn's prebuilt wheels target. Blackwell (10.x, 12.x: DGX Spark) takes sdpa unless asked.
FLASH_MIN_CAPABILITY = (8, 0)
FLASH_AUTO_MAX_MAJOR = 9
ATTENTION_CHOICES = ("auto", "flash_attention_2", "sdpa", "eager")


def torch_version_problem(version: str) -> str | None:
    """Why transformers would refuse this torch version (``None`` when it accepts it)."""
    from packaging.version import InvalidVersion, Version

    try:
        ok = Version(version) >= Version(TRANSFORMERS_TORCH_FLOOR)
    except InvalidVersion:
        ok = False
    if ok:
        return None
    return (
        f"PyTorch {version} is installed, but transformers 5 needs torch >= {TRANSFORMERS_TORCH_FLOOR} and treats "
        "anything older (a pre-release such as NGC 25.01's 2.6.0a0 included) as no torch at all, so no model could "
        "load. Use a base image with a newer torch (nvcr.io/nvidia/pytorch:25.02-py3 or later: the BASE_IMAGE build "
        f"argument) or `pip install 'torch>={TRANSFORMERS_TORCH_FLOOR}'`."
    )


def check_torch() -> str:
    """The installed torch version, or a :class:`ModelLoadError` when transformers would not accept it."""
    import importlib.metadata

    try:
        version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ModelLoadError("PyTorch is not installed; the model services need torch.") from exc
    problem = torch_version_problem(version)
    if problem:
        raise ModelLoadError(problem)
    return version


def flash_attention_problem(
    device_type: str, capability: tuple[int, int] | None, dtype: str, flash_importable: bool, *, auto: bool
) -> str | None:
    """Why FlashAttention-2 cannot (or, for ``auto``, should not) run here; ``None`` when it can."""
    if device_type != "cuda":
        return f"FlashAttention-2 needs a CUDA GPU (device is {device_type})"
    if capability is None or tuple(capability) < FLASH_MIN_CAPABILITY:
        cc = "unknown" if capability is None else f"{capability[0]}.{capability[1]}"
        return f"FlashAttention-2 needs compute capability >= 8.0 (Ampere or newer); this GPU is {cc}"
    if dtype not in ("bfloat16", "float16"):
        return f"FlashAttention-2 runs in bfloat16 or float16 only (dtype is {dtype})"
    if not flash_importable:
        return "the flash-attn package is not installed or does not import (built for another torch/CUDA?)"
    if auto and capability[0] > FLASH_AUTO_MAX_MAJOR:
        return (
            f"compute capability {capability[0]}.{capability[1]} is newer than the flash-attn wheels' targets "
            "(set VIBEVOICE_ATTN_IMPLEMENTATION=flash_attention_2 to use it anyway)"
        )
    return None


def choose_attention(
    requested: str | None, device_type: str, capability: tuple[int, int] | None, dtype: str, flash_importable: bool
) -> tuple[str, str]:
    """The attention implementation and why, from the setting and what this machine has (pure).

    ``auto``: flash_attention_2 when it can run (see :func:`flash_attention_problem`), else sdpa. An explicit
    flash_attention_2 that cannot run is a :class:`ModelLoadError`, not a silent fallback.
    """
    req = (requested or "auto").strip().lower()
    if req not in ATTENTION_CHOICES:
        raise ModelLoadError(f"Unknown attention implementation {requested!r}: use {', '.join(ATTENTION_CHOICES)}.")
    if req in ("sdpa", "eager"):
        return req, "set by VIBEVOICE_ATTN_IMPLEMENTATION"
    problem = flash_attention_problem(device_type, capability, dtype, flash_importable, auto=req == "auto")
    if req == "flash_attention_2":
        if problem:
            raise ModelLoadError(f"VIBEVOICE_ATTN_IMPLEMENTATION=flash_attention_2 but {problem}; use auto or sdpa.")
        return req, "set by VIBEVOICE_ATTN_IMPLEMENTATION"
    if problem:
        return "sdpa", f"auto: {problem}"
    return "flash_attention_2", "auto: flash-attn imports and the GPU and dtype support it"


def flash_attn_importable() -> bool:
    """Whether flash-attn imports here (an ABI mismatch with torch shows as an ImportError/OSError)."""
    try:
        import flash_attn  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def dtype_name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")


def resolve_attention(name: str | None, device: Any, dtype: Any = None) -> str:
    """The attention implementation for this device and dtype (see :func:`choose_attention`); logged with why."""
    import torch

    capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
    dt = dtype_name(dtype if dtype is not None else resolve_dtype(None, device))
    wants_flash = device.type == "cuda" and (name or "auto") in ("auto", "flash_attention_2")
    attn, why = choose_attention(name, device.type, capability, dt, wants_flash and flash_attn_importable())
    log.info("attention: %s (%s)", attn, why)
    return attn


def read_json(path: Path) -> dict[str, Any]:
    if not path.parent.is_dir():
        raise ModelLoadError(f"Model folder {path.parent} does not exist.")
    if not path.is_file():
        raise ModelLoadError(f"{path.parent} has no {path.name}: it is not a model checkpoint folder.")
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ModelLoadError(f"{path} is not valid JSON ({exc}).") from exc
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} does not hold a JSON object.")
    return data


def weight_files(folder: Path) -> list[Path]:
    """``model.safetensors``, or every shard named by ``model.safetensors.index.json`` (all must exist)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (ValueError, KeyError) as exc:
            raise ModelLoadError(f"{index} is not a valid safetensors index ({exc}).") from exc
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise ModelLoadError(f"{folder} is incomplete: missing weight shard(s) {', '.join(missing)}.")
        return [folder / n for n in names]
    if (folder / "model.safetensors").is_file():
        return [folder / "model.safetensors"]
    raise ModelLoadError(f"{folder} has no model.safetensors or model.safetensors.index.json (weights missing).")


def find_tokenizer(folder: Path, hint: str) -> Path:
    """The folder holding the tokenizer files: the model folder itself or its ``tokenizer/``."""
    for cand in (folder, folder / "tokenizer"):
        if (cand / "tokenizer.json").is_file() or ((cand / "vocab.json").is_file() and (cand / "merges.txt").is_file()):
            return cand
    raise ModelLoadError(f"No tokenizer files in {folder} or {folder / 'tokenizer'}. {hint}")
