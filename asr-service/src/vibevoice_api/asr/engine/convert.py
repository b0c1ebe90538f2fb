"""Checkpoint layouts of VibeVoice-ASR, and the original → transformers conversion.

Two layouts exist on the hub:

- ``microsoft/VibeVoice-ASR-HF`` ("hf"): transformers' ``vibevoice_asr`` config and key names,
  tokenizer included.
- ``microsoft/VibeVoice-ASR`` ("original", what the seed plan downloads): Microsoft's own config
  (``model_type: vibevoice``, architecture ``VibeVoiceForASRTraining``, or
  ``VibeVoiceASRForConditionalGeneration`` for a fine-tune saved with Microsoft's code) and key names,
  unused acoustic *decoder* weights, no tokenizer files (it borrows Qwen2.5-7B's).

The conversion renames keys shard by shard (one shard in memory at a time), drops the decoder,
translates the config, and copies the tokenizer files. ``python -m vibevoice_api.asr.engine.convert
SRC DST`` (or ``vibevoice-asr convert SRC DST``) writes the transformers layout once.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vibevoice_api.shared.model_files import find_tokenizer as shared_find_tokenizer
from vibevoice_api.shared.model_files import read_json, weight_files

from .errors import ModelLoadError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
)
# The published checkpoint names Microsoft's training class; a fine-tune merged and saved with Microsoft's
# code (its finetuning-asr/README.md) names the inference class. Same config format and key names.
ORIGINAL_ARCHS = ("VibeVoiceForASRTraining", "VibeVoiceASRForConditionalGeneration")


def read_config(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        raise ModelLoadError(f"VibeVoice-ASR folder {folder} does not exist.")
    return read_json(folder / "config.json")


def detect_layout(folder: Path) -> str:
    """'hf' or 'original'; anything else is a ModelLoadError naming what was found."""
    cfg = read_config(folder)
    archs = cfg.get("architectures") or []
    if cfg.get("model_type") == "vibevoice_asr":
        return "hf"
    # The original ASR checkpoint shares model_type "vibevoice" with the TTS model: tell them apart by architecture.
    if cfg.get("model_type") == "vibevoice" and any(a in ORIGINAL_ARCHS for a in archs):
        return "original"
    raise ModelLoadError(
        f"{folder} holds a model_type={cfg.get('model_type')!r} architectures={archs} checkpoint, not VibeVoice-ASR "
        "(expected microsoft/VibeVoice-ASR or microsoft/VibeVoice-ASR-HF)."
    )


def find_tokenizer(folder: Path) -> Path:
    """The Qwen2.5 tokenizer files: in the model folder or its ``tokenizer/``."""
    return shared_find_tokenizer(
        folder,
        "The original VibeVoice-ASR checkpoint uses the Qwen2.5-7B tokenizer: put tokenizer.json, "
        f"tokenizer_config.json, vocab.json and merges.txt from Qwen/Qwen2.5-7B into {folder / 'tokenizer'} "
        f"(e.g. `huggingface-cli download Qwen/Qwen2.5-7B tokenizer.json tokenizer_config.json vocab.json merges.txt "
        f"--local-dir {folder / 'tokenizer'}`).",
    )


# Original key → transformers checkpoint key. Rules apply in order; encoder stage/downsample indices
# shift by one because transformers calls the first one the "stem".
def _encoder(name: str) -> list[tuple[re.Pattern[str], Any]]:
    src, dst = rf"^model\.{name}_tokenizer\.encoder\.", f"{name}_tokenizer_encoder."
    return [
        (re.compile(src + r"downsample_layers\.0\.0\.conv\."), dst + "stem.conv."),
        (re.compile(src + r"stages\.0\."), dst + "stem.stage."),
        (
            re.compile(src + r"downsample_layers\.(\d+)\.0\.conv\."),
            lambda m: f"{dst}conv_layers.{int(m.group(1)) - 1}.conv.",
        ),
        (re.compile(src + r"stages\.(\d+)\."), lambda m: f"{dst}conv_layers.{int(m.group(1)) - 1}.stage."),
        (re.compile(src + r"head\.conv\."), dst + "head."),
    ]


_RULES: list[tuple[re.Pattern[str], Any]] = [
    (re.compile(r"^model\.language_model\."), "language_model.model."),
    (re.compile(r"^lm_head\."), "language_model.lm_head."),
    *_encoder("acoustic"),
    *_encoder("semantic"),
    (
        re.compile(r"^model\.acoustic_connector\.fc(\d)\."),
        lambda m: f"multi_modal_projector.acoustic_linear_{m.group(1)}.",
    ),
    (re.compile(r"^model\.acoustic_connector\.norm\."), "multi_modal_projector.acoustic_norm."),
    (
        re.compile(r"^model\.semantic_connector\.fc(\d)\."),
        lambda m: f"multi_modal_projector.semantic_linear_{m.group(1)}.",
    ),
    (re.compile(r"^model\.semantic_connector\.norm\."), "multi_modal_projector.semantic_norm."),
]


def convert_key(key: str) -> str | None:
    """The transformers name of an original weight, or None for weights the ASR model does not use."""
    if key.startswith("model.acoustic_tokenizer.decoder."):
        return None
    out = key
    for pattern, repl in _RULES:
        new = pattern.sub(repl, out, count=1)
        if new != out:
            out = new
            break
    # Microsoft's convolutions nest one wrapper deeper than transformers'.
    out = out.replace(".mixer.conv.conv.conv.", ".mixer.conv.")
    out = out.replace(".conv.conv.conv.", ".conv.conv.")
    return out


def _tokenizer_encoder_config(orig: dict[str, Any]) -> dict[str, Any]:
    depths = orig.get("encoder_depths", [3, 3, 3, 3, 3, 3, 8])
    if isinstance(depths, str):
        depths = [int(x) for x in depths.split("-")]
    cfg: dict[str, Any] = {
        "channels": orig.get("channels", 1),
        "hidden_size": orig.get("vae_dim", 64),
        "num_filters": orig.get("encoder_n_filters", 32),
        "depths": list(depths),
        "downsampling_ratios": list(reversed(orig.get("encoder_ratios", [8, 5, 5, 4, 2, 2]))),
        "rms_norm_eps": orig.get("layernorm_eps", 1e-5),
        "model_type": "vibevoice_acoustic_tokenizer_encoder",
    }
    if "fix_std" in orig:
        cfg["vae_std"] = float(orig["fix_std"]) / 0.8
    return cfg


def convert_config(orig: dict[str, Any], token_ids: dict[str, int]) -> dict[str, Any]:
    """Microsoft's config.json → transformers' ``vibevoice_asr`` config (audio token ids from the tokenizer)."""
    try:
        text = dict(orig["decoder_config"])
        acoustic = _tokenizer_encoder_config(orig["acoustic_tokenizer_config"])
        semantic = _tokenizer_encoder_config(orig["semantic_tokenizer_config"])
    except (KeyError, TypeError) as exc:
        raise ModelLoadError(
            f"original VibeVoice-ASR config.json lacks {exc}: the file is damaged or not ASR."
        ) from exc
    text["model_type"] = "qwen2"
    if "rope_theta" in text or "rope_parameters" in text:
        # Microsoft's code (transformers 4.x) reads rope_theta / rope_scaling and ignores rope_parameters,
        # which its save_pretrained may nevertheless copy from a newer config: the 4.x keys decide.
        text.pop("rope_parameters", None)
        text["rope_theta"] = text.get("rope_theta", 10000.0)
    return {
        "model_type": "vibevoice_asr",
        "architectures": ["VibeVoiceAsrForConditionalGeneration"],
        "acoustic_tokenizer_encoder_config": acoustic,
        "semantic_tokenizer_encoder_config": semantic,
        "text_config": text,
        "audio_token_id": token_ids["<|box_start|>"],
        "audio_bos_token_id": token_ids["<|object_ref_start|>"],
        "audio_eos_token_id": token_ids["<|object_ref_end|>"],
        "dtype": orig.get("torch_dtype", orig.get("dtype", "bfloat16")),
    }


def token_ids_of(tokenizer_dir: Path) -> dict[str, int]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    ids = {}
    for t in (
        "<|box_start|>",
        "<|object_ref_start|>",
        "<|object_ref_end|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<|image_pad|>",
    ):
        i = tok.convert_tokens_to_ids(t)
        if i is None or i == tok.unk_token_id:
            raise ModelLoadError(
                f"The tokenizer in {tokenizer_dir} lacks the special token {t} (not a Qwen2.5 tokenizer?)."
            )
        ids[t] = i
    return ids


# The audio feature extractor's settings are fixed by the model (24 kHz mono, -25 dBFS); the HF-layout repo ships
# them as preprocessor_config.json, which vLLM (AutoProcessor) needs. Our own loader builds the processor in code.
PREPROCESSOR_CONFIG: dict[str, Any] = {
    "feature_extractor_type": "VibeVoiceAcousticTokenizerFeatureExtractor",
    "feature_size": 1,
    "sampling_rate": 24000,
    "padding_value": 0.0,
    "normalize_audio": True,
    "target_dB_FS": -25,
    "eps": 1e-6,
    "pad_to_multiple_of": 3200,
}


def write_preprocessor_config(folder: Path) -> None:
    (folder / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=2))


def convert(src: Path, dst: Path) -> Path:
    """Write the transformers layout of the original checkpoint ``src`` into ``dst``."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    if detect_layout(src) != "original":
        raise ModelLoadError(f"{src} is not an original-layout VibeVoice-ASR checkpoint.")
    orig_cfg = read_config(src)
    tok_dir = find_tokenizer(src)
    ids = token_ids_of(tok_dir)
    shards = weight_files(src)
    tmp = dst.with_name(dst.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weight_map: dict[str, str] = {}
    total = 0
    for i, shard in enumerate(shards, 1):
        out: dict[str, Any] = {}
        with safe_open(str(shard), framework="pt") as f:
            for key in f.keys():  # noqa: SIM118 - safe_open has no __iter__
                new = convert_key(key)
                if new is not None:
                    out[new] = f.get_tensor(key)
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors" if len(shards) > 1 else "model.safetensors"
        save_file(out, str(tmp / name), metadata={"format": "pt"})
        for k, v in out.items():
            weight_map[k] = name
            total += v.numel() * v.element_size()
        del out
    if len(shards) > 1:
        (tmp / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
        )
    (tmp / "config.json").write_text(json.dumps(convert_config(orig_cfg, ids), indent=2))
    (tmp / "generation_config.json").write_text(
        json.dumps(
            {
                "do_sample": False,
                "eos_token_id": [ids["<|im_end|>"], ids["<|endoftext|>"]],
                "pad_token_id": ids["<|image_pad|>"],
                "max_new_tokens": 32768,
            },
            indent=2,
        )
    )
    for name in TOKENIZER_FILES:
        if (tok_dir / name).is_file():
            shutil.copy2(tok_dir / name, tmp / name)
    write_preprocessor_config(tmp)
    (tmp / "CONVERTED_FROM").write_text(str(src.resolve()) + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)
    return dst


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vibevoice-asr convert", description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="original-layout folder (microsoft/VibeVoice-ASR)")
    ap.add_argument("dst", type=Path, help="where to write the transformers layout")
    args = ap.parse_args(argv)
    try:
        out = convert(args.src, args.dst)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
