"""What both model services need to open a checkpoint folder: devices, attention, weight shards, tokenizer.

Every problem is a :class:`ModelLoadError` whose message names the file and what to do; the services
report it through ``/ready`` and their 503s instead of a stack trace.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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


def resolve_attention(name: str | None, device: Any) -> str:
    """``auto`` = flash_attention_2 on a GPU when the package is installed, else sdpa."""
    if name not in (None, "", "auto"):
        return str(name)
    if device.type == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            return "sdpa"
    return "sdpa"


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
