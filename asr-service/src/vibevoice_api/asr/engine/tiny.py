"""Tiny randomly initialised VibeVoice-ASR checkpoints, in both official layouts, for tests and laptops.

The architecture is the real one (transformers' ``VibeVoiceAsrForConditionalGeneration``), only
smaller; the tokenizer is a byte-level BPE trained offline with the special tokens of Qwen2.5 that
the model and processor use. The "original" layout is produced by renaming the keys back to
Microsoft's names and writing Microsoft's config format, so that the conversion path is exercised.

``python -m vibevoice_api.asr.engine.tiny DIR [--layout hf|original] [--size tiny|mid]`` writes
``DIR/VibeVoice-ASR/``.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from vibevoice_api.shared.tiny_tokenizer import SPECIAL_TOKENS, build_tokenizer

SIZES = {
    "tiny": {"hidden": 64, "layers": 2, "heads": 4, "kv": 2, "ffn": 128, "enc": (16, 32), "filters": 4, "vocab": 600},
    "mid": {
        "hidden": 512,
        "layers": 8,
        "heads": 8,
        "kv": 2,
        "ffn": 1536,
        "enc": (64, 128),
        "filters": 16,
        "vocab": 2000,
    },
}


def build_model(tokenizer, size: str = "tiny", seed: int = 0):
    import torch
    from transformers import (
        Qwen2Config,
        VibeVoiceAcousticTokenizerEncoderConfig,
        VibeVoiceAsrConfig,
        VibeVoiceAsrForConditionalGeneration,
    )

    s = SIZES[size]
    torch.manual_seed(seed)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    config = VibeVoiceAsrConfig(
        acoustic_tokenizer_encoder_config=VibeVoiceAcousticTokenizerEncoderConfig(
            hidden_size=s["enc"][0], num_filters=s["filters"], depths=[1] * 7
        ),
        semantic_tokenizer_encoder_config=VibeVoiceAcousticTokenizerEncoderConfig(
            hidden_size=s["enc"][1], num_filters=s["filters"], depths=[1] * 7
        ),
        text_config=Qwen2Config(
            hidden_size=s["hidden"],
            intermediate_size=s["ffn"],
            num_hidden_layers=s["layers"],
            num_attention_heads=s["heads"],
            num_key_value_heads=s["kv"],
            vocab_size=len(tokenizer),
            max_position_embeddings=32768,
            rope_theta=1_000_000.0,
            tie_word_embeddings=False,
        ),
        audio_token_id=ids["<|box_start|>"],
        audio_bos_token_id=ids["<|object_ref_start|>"],
        audio_eos_token_id=ids["<|object_ref_end|>"],
    )
    model = VibeVoiceAsrForConditionalGeneration(config).eval()
    gc = model.generation_config
    gc.do_sample = False
    gc.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    gc.pad_token_id = ids["<|image_pad|>"]
    gc.max_new_tokens = 32768
    return model


def write_tiny_asr_model(target: Path, *, layout: str = "hf", size: str = "tiny", seed: int = 0) -> Path:
    """Write a tiny checkpoint into ``target`` (created) in the given layout."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(SIZES[size]["vocab"])
    model = build_model(tokenizer, size, seed)
    if layout == "hf":
        model.save_pretrained(str(target))
        tokenizer.save_pretrained(str(target))
        _write_preprocessor(target)
        return target
    if layout != "original":
        raise ValueError("layout must be 'hf' or 'original'")
    _write_original(model, tokenizer, target)
    return target


def _write_preprocessor(target: Path) -> None:
    (target / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "feature_extractor_type": "VibeVoiceAcousticTokenizerFeatureExtractor",
                "feature_size": 1,
                "sampling_rate": 24000,
                "padding_value": 0.0,
                "normalize_audio": True,
                "target_dB_FS": -25,
                "eps": 1e-6,
                "pad_to_multiple_of": 3200,
            },
            indent=2,
        )
    )


# transformers checkpoint name → Microsoft's name (the inverse of convert.convert_key).
def original_key(key: str) -> str:
    key = key.replace(".mixer.conv.", ".mixer.conv.conv.conv.")
    rules = [
        (r"^language_model\.model\.", "model.language_model."),
        (r"^language_model\.lm_head\.", "lm_head."),
        (
            r"^(acoustic|semantic)_tokenizer_encoder\.stem\.conv\.",
            r"model.\1_tokenizer.encoder.downsample_layers.0.0.conv.",
        ),
        (r"^(acoustic|semantic)_tokenizer_encoder\.stem\.stage\.", r"model.\1_tokenizer.encoder.stages.0."),
        (r"^multi_modal_projector\.(acoustic|semantic)_linear_(\d)\.", r"model.\1_connector.fc\2."),
        (r"^multi_modal_projector\.(acoustic|semantic)_norm\.", r"model.\1_connector.norm."),
        (r"^(acoustic|semantic)_tokenizer_encoder\.head\.", r"model.\1_tokenizer.encoder.head.conv."),
    ]
    m = re.match(r"^(acoustic|semantic)_tokenizer_encoder\.conv_layers\.(\d+)\.(conv|stage)\.(.*)$", key)
    if m:
        kind, idx, part, rest = m.groups()
        base = f"model.{kind}_tokenizer.encoder."
        if part == "conv":
            return f"{base}downsample_layers.{int(idx) + 1}.0.conv.{rest}"
        return f"{base}stages.{int(idx) + 1}.{rest}"
    for pattern, repl in rules:
        new = re.sub(pattern, repl, key, count=1)
        if new != key:
            return new
    return key


def _write_original(model, tokenizer, target: Path) -> None:
    import tempfile

    import torch
    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        hf_state = load_file(str(Path(tmp) / "model.safetensors"))
        hf_cfg = json.loads((Path(tmp) / "config.json").read_text())
    state = {original_key(k): v.contiguous() for k, v in hf_state.items()}
    # The original checkpoint also carries the (unused for ASR) acoustic decoder.
    gen = torch.Generator().manual_seed(1)
    state["model.acoustic_tokenizer.decoder.head.conv.conv.weight"] = torch.randn(1, 8, 7, generator=gen)
    state["model.acoustic_tokenizer.decoder.head.conv.conv.bias"] = torch.zeros(1)
    # Two shards plus an index, like the 17 GB original.
    keys = sorted(state)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    for name, ks in shards.items():
        save_file({k: state[k] for k in ks}, str(target / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(ks, name))
    (target / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map}, indent=2)
    )

    def enc_cfg(c: dict) -> dict:
        return {
            "vae_dim": c["hidden_size"],
            "encoder_n_filters": c["num_filters"],
            "encoder_ratios": list(reversed(c["downsampling_ratios"])),
            "encoder_depths": "-".join(str(d) for d in c["depths"]),
            "layernorm_eps": c["rms_norm_eps"],
            "fix_std": c["vae_std"] * 0.8,
            "channels": c["channels"],
            "causal": True,
            "pad_mode": "constant",
            "decoder_depths": None,
            "decoder_n_filters": c["num_filters"],
            "decoder_ratios": None,
            "std_dist_type": "gaussian",
            "conv_norm": "none",
            "mixer_layer": "depthwise_conv",
        }

    text = {k: v for k, v in hf_cfg["text_config"].items() if k not in ("model_type",)}
    text["model_type"] = "qwen2"
    orig_cfg = {
        "architectures": ["VibeVoiceForASRTraining"],
        "model_type": "vibevoice",
        "acoustic_tokenizer_config": enc_cfg(hf_cfg["acoustic_tokenizer_encoder_config"]),
        "semantic_tokenizer_config": {**enc_cfg(hf_cfg["semantic_tokenizer_encoder_config"]), "std_dist_type": "none"},
        "decoder_config": text,
        "acoustic_vae_dim": hf_cfg["acoustic_tokenizer_encoder_config"]["hidden_size"],
        "semantic_vae_dim": hf_cfg["semantic_tokenizer_encoder_config"]["hidden_size"],
        "language_model_pretrained_name": "Qwen/Qwen2.5-7B",
        "torch_dtype": "float32",
    }
    (target / "config.json").write_text(json.dumps(orig_cfg, indent=2))
    # As with the real checkpoint, no tokenizer in the model folder; we keep it in tokenizer/.
    tokenizer.save_pretrained(str(target / "tokenizer"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vibevoice_api.asr.engine.tiny", description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="model dir (VIBEVOICE_MODEL_DIR); writes DIR/VibeVoice-ASR")
    ap.add_argument("--layout", choices=("hf", "original"), default="original")
    ap.add_argument("--size", choices=tuple(SIZES), default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = write_tiny_asr_model(args.dir / "VibeVoice-ASR", layout=args.layout, size=args.size, seed=args.seed)
    print(f"wrote tiny VibeVoice-ASR ({args.layout} layout, {args.size}) to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
