"""Load VibeVoice-ASR (either layout) from a local folder onto a device, once.

The original layout is converted on first load into a cache folder (shard by shard) and loaded from
there, so both layouts go through transformers' own ``from_pretrained``. Every problem with the folder
is a :class:`ModelLoadError` that names the file and what to do.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .convert import convert, detect_layout, find_tokenizer, weight_files
from .errors import ModelLoadError

log = logging.getLogger("vibevoice_api.asr.loader")


@dataclass
class Loaded:
    model: Any
    processor: Any
    tokenizer: Any
    device: Any
    dtype: Any
    layout: str
    source: Path


def resolve_device(name: str) -> Any:
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
    if name == "mps":
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise ModelLoadError(f"Unknown device {name!r}: use auto, cpu, cuda or cuda:N.")


def resolve_dtype(name: str | None, device: Any) -> Any:
    import torch

    if name in (None, "", "auto"):
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]


def resolve_attention(name: str | None, device: Any) -> str:
    if name not in (None, "", "auto"):
        return name  # type: ignore[return-value]
    if device.type == "cuda":
        try:
            import flash_attn  # noqa: F401

            return "flash_attention_2"
        except ImportError:
            return "sdpa"
    return "sdpa"


def converted_dir(src: Path) -> Path:
    """Where the transformers layout of an original checkpoint is cached."""
    base = os.environ.get("VIBEVOICE_CONVERTED_DIR")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vibevoice-api"
    stamp = hashlib.sha256(str(src.resolve()).encode())
    for f in [src / "config.json", *weight_files(src)]:
        st = f.stat()
        stamp.update(f"{f.name}:{st.st_size}:{int(st.st_mtime)}".encode())
    return root / f"VibeVoice-ASR-converted-{stamp.hexdigest()[:16]}"


def prepare_folder(folder: Path) -> tuple[Path, str]:
    """The transformers-layout folder to load and the layout found."""
    layout = detect_layout(folder)
    weight_files(folder)  # fail early and clearly on missing shards
    if layout == "hf":
        find_tokenizer(folder)
        return folder, layout
    target = converted_dir(folder)
    if not (target / "config.json").is_file():
        log.info("converting the original VibeVoice-ASR checkpoint %s to the transformers layout in %s", folder, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        convert(folder, target)
    return target, layout


def load(
    folder: Path, device: str = "auto", dtype: str | None = None, attn_implementation: str | None = None
) -> Loaded:
    from transformers import (
        AutoTokenizer,
        VibeVoiceAcousticTokenizerFeatureExtractor,
        VibeVoiceAsrForConditionalGeneration,
        VibeVoiceAsrProcessor,
    )

    folder = Path(folder)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    attn = resolve_attention(attn_implementation, dev)
    hf_dir, layout = prepare_folder(folder)
    tok_dir = find_tokenizer(hf_dir)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    except Exception as exc:
        raise ModelLoadError(f"Could not load the tokenizer from {tok_dir}: {exc}") from exc
    processor = VibeVoiceAsrProcessor(
        feature_extractor=VibeVoiceAcousticTokenizerFeatureExtractor(), tokenizer=tokenizer
    )
    try:
        model = VibeVoiceAsrForConditionalGeneration.from_pretrained(
            str(hf_dir),
            dtype=torch_dtype,
            local_files_only=True,
            # Only the language model has attention; the conv encoders take the default.
            attn_implementation={
                "text_config": attn,
                "acoustic_tokenizer_encoder_config": "eager",
                "semantic_tokenizer_encoder_config": "eager",
                "": attn,
            },
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise ModelLoadError(f"Could not load the VibeVoice-ASR weights from {hf_dir}: {exc}") from exc
    model.to(dev).eval()
    log.info(
        "loaded VibeVoice-ASR (%s layout) from %s on %s as %s with %s attention", layout, folder, dev, torch_dtype, attn
    )
    return Loaded(model, processor, tokenizer, dev, torch_dtype, layout, folder)
