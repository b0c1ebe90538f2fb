"""Load the official ``VibeVoice-Realtime-0.5B`` folder (config.json + safetensors + tokenizer) once.

Every problem with the folder is a :class:`ModelLoadError` naming the file. The checkpoint's keys
are mapped to our modules by :func:`model.module_key`; anything missing, unexpected or of the wrong
shape is reported, never silently left at random initialisation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from vibevoice_api.shared.model_files import (
    check_torch,
    read_json,
    resolve_attention,
    resolve_device,
    resolve_dtype,
    weight_files,
)
from vibevoice_api.shared.model_files import find_tokenizer as shared_find_tokenizer

from .errors import ModelLoadError
from .generate import make_scheduler
from .model import RealtimeConfig, RealtimeModel, module_key

log = logging.getLogger("vibevoice_api.tts.loader")
BATCH_ATTENTION = ("sdpa", "eager")  # attention implementations that take the batch's 4D padding masks
TOKENIZER_HINT = (
    "VibeVoice-Realtime uses the Qwen2.5 tokenizer, which its model repo does not ship: put tokenizer.json, "
    "tokenizer_config.json, vocab.json and merges.txt from Qwen/Qwen2.5-0.5B into {dir} "
    "(`make models` does this)."
)


@dataclass
class Loaded:
    model: RealtimeModel
    tokenizer: Any
    device: torch.device
    dtype: torch.dtype
    scheduler: Any
    folder: Path
    attention: str = "sdpa"


def read_config(folder: Path) -> RealtimeConfig:
    path = folder / "config.json"
    raw = read_json(path)
    if raw.get("model_type") != "vibevoice_streaming":
        found = raw.get("model_type")
        raise ModelLoadError(f"{path} describes model_type={found!r}, not VibeVoice-Realtime (vibevoice_streaming).")
    if not isinstance(raw.get("decoder_config"), dict):
        raise ModelLoadError(f"{path} lacks decoder_config: the file is damaged.")
    return RealtimeConfig(raw)


def find_tokenizer(folder: Path) -> Path:
    return shared_find_tokenizer(folder, TOKENIZER_HINT.format(dir=folder / "tokenizer"))


def load_state(model: RealtimeModel, files: list[Path], device: torch.device | None = None) -> None:
    """Copy the checkpoint's tensors into ``model``; read straight onto ``device`` (no host copy on a GPU)."""
    from safetensors import SafetensorError, safe_open

    expected = model.state_dict()
    seen: set[str] = set()
    unexpected: list[str] = []
    for f in files:
        try:
            handle = safe_open(str(f), framework="pt", device=str(device or "cpu"))
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(f"{f} is not a readable safetensors file ({exc}); it may be truncated.") from exc
        with handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                name = module_key(key)
                if name is None:
                    continue
                if name not in expected:
                    unexpected.append(key)
                    continue
                try:
                    tensor = handle.get_tensor(key)
                except Exception as exc:
                    raise ModelLoadError(f"{f}: tensor {key} could not be read ({exc}).") from exc
                if tuple(tensor.shape) != tuple(expected[name].shape):
                    raise ModelLoadError(
                        f"{f}: {key} has shape {tuple(tensor.shape)}, the config implies "
                        f"{tuple(expected[name].shape)} (config.json and weights disagree)."
                    )
                with torch.no_grad():
                    expected[name].copy_(tensor.to(expected[name].dtype))
                seen.add(name)
    missing = [k for k in expected if k not in seen and not k.endswith("inv_freq")]
    if unexpected:
        raise ModelLoadError(
            f"The checkpoint has {len(unexpected)} unexpected weights, e.g. {unexpected[:3]}: "
            "not a VibeVoice-Realtime-0.5B checkpoint?"
        )
    if missing:
        raise ModelLoadError(
            f"The checkpoint lacks {len(missing)} weights, e.g. {missing[:3]}: the files are incomplete."
        )
    if not torch.isfinite(model.speech_scaling_factor) or not torch.isfinite(model.speech_bias_factor):
        raise ModelLoadError("speech_scaling_factor / speech_bias_factor are missing or NaN in the checkpoint.")


def load(
    folder: Path, device: str = "auto", dtype: str | None = None, attn_implementation: str | None = None
) -> Loaded:
    check_torch()  # before transformers decides torch is missing and hands out dummy classes
    from transformers import AutoTokenizer

    folder = Path(folder)
    cfg = read_config(folder)
    files = weight_files(folder)
    tok_dir = find_tokenizer(folder)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"Could not load the tokenizer in {tok_dir}: {exc}") from exc
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    attn = resolve_attention(attn_implementation, dev, torch_dtype)
    if attn not in BATCH_ATTENTION:
        # The batched engine gives every stream its own padded cache and mask (batch.py / kvcache.py):
        # flash-attn would need packed variable-length calls instead.
        log.info("attention: sdpa, not %s: the batched speech streams attend through padding masks", attn)
        attn = "sdpa"
    # Built on the device and filled there: the weights never pass through host RAM (which the DGX Spark
    # shares with the GPU). Casting before the copy equals copying then casting (bf16 -> fp32 -> bf16 is exact).
    with torch.device(dev):
        model = RealtimeModel(cfg, attn).eval()
    model.to(dtype=torch_dtype)
    load_state(model, files, dev)
    log.info("loaded VibeVoice-Realtime from %s on %s as %s with %s attention", folder, dev, torch_dtype, attn)
    return Loaded(model, tokenizer, dev, torch_dtype, make_scheduler(cfg.head), folder, attn)
