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

from vibevoice_api.shared.model_files import check_torch, resolve_attention, resolve_device, resolve_dtype

from .convert import convert, detect_layout, find_tokenizer, weight_files
from .encoding import use_reference_encoding
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
    attention: str = "sdpa"


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
    check_torch()  # before transformers decides torch is missing and hands out dummy classes
    from transformers import (
        AutoTokenizer,
        VibeVoiceAcousticTokenizerFeatureExtractor,
        VibeVoiceAsrForConditionalGeneration,
        VibeVoiceAsrProcessor,
    )

    folder = Path(folder)
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    attn = resolve_attention(attn_implementation, dev, torch_dtype)
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
            device_map=dev,  # each shard straight to the device: no whole copy in host memory first
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
    model.eval()
    use_reference_encoding(model)  # each recording at its own length, as the model was trained
    attn = getattr(model.config.text_config, "_attn_implementation", None) or attn  # what the model really runs
    log.info(
        "loaded VibeVoice-ASR (%s layout) from %s on %s as %s with %s attention", layout, folder, dev, torch_dtype, attn
    )
    return Loaded(model, processor, tokenizer, dev, torch_dtype, layout, folder, attn)
