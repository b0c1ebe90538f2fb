"""Tiny randomly initialised VibeVoice-ASR checkpoints, in both official layouts, for tests and laptops.

The architecture is the real one (transformers' ``VibeVoiceAsrForConditionalGeneration``), only
smaller, with attention heads of 32 dimensions (vLLM's CPU attention refuses fewer); the tokenizer is
a byte-level BPE trained offline with the special tokens of Qwen2.5 that the model and processor use.
Weights are scaled so that the model hears its input: every convolution and linear layer of the audio
path keeps its signal's scale, and the language model's layers have unit gain, so different audio gives
different greedy transcripts (a broken resampler or encoder weight mapping shows up in the tests).
The "original" layout is what Microsoft's code writes for VibeVoice-ASR (checked against it by
``tests/fidelity/``): its config format, its key names, the acoustic *decoder* that ASR does not use,
sharded with an index; the conversion path is exercised on it.

``python -m vibevoice_api.asr.engine.tiny DIR [--layout hf|original] [--size tiny|mid]`` writes
``DIR/VibeVoice-ASR/``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path

from vibevoice_api.asr.engine.convert import write_preprocessor_config
from vibevoice_api.shared.tiny_tokenizer import SPECIAL_TOKENS, build_tokenizer

SIZES = {
    "tiny": {"hidden": 64, "layers": 2, "heads": 2, "kv": 1, "ffn": 128, "enc": (16, 32), "filters": 4, "vocab": 600},
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
    make_audible(model, seed)
    gc = model.generation_config
    gc.do_sample = False
    gc.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    gc.pad_token_id = ids["<|image_pad|>"]
    gc.max_new_tokens = 32768
    return model


def make_audible(model, seed: int = 0) -> None:
    """Rescale random weights so that the audio materially moves the logits.

    Default initialisation leaves the encoders' output near 1e-8 (layer scales of 1e-6, small convolution
    weights), which the projector's RMS norm then drowns in its epsilon: every recording would give the
    same transcript. Here each convolution and linear layer of the encoders and the projector gets weights
    of variance 1/fan_in, the layer scales are near 0.5, the language model's matrices have unit gain, and
    every bias and norm weight is moved off its constant initial value (so that no layer is left at a
    value that would hide a wrong mapping).
    """
    import math

    import torch
    from torch import nn

    gen = torch.Generator().manual_seed(seed + 1)
    inner = model.model
    audio_path = (inner.acoustic_tokenizer_encoder, inner.semantic_tokenizer_encoder, inner.multi_modal_projector)
    with torch.no_grad():
        for part in audio_path:
            for mod in part.modules():
                if isinstance(mod, nn.Conv1d | nn.Linear):
                    fan_in = mod.weight[0].numel()
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) / math.sqrt(fan_in))
            for name, p in part.named_parameters():
                if name.endswith("gamma"):
                    p.copy_(0.5 + 0.1 * torch.randn(p.shape, generator=gen))
        gain = 1 / math.sqrt(model.config.text_config.hidden_size)
        for p in [*inner.language_model.parameters(), *model.lm_head.parameters()]:
            if p.dim() == 2:
                p.copy_(gain * torch.randn(p.shape, generator=gen))
        for name, p in model.named_parameters():
            if p.dim() == 1 and not name.endswith("gamma"):
                p.add_(0.02 * torch.randn(p.shape, generator=gen))


def write_tiny_asr_model(target: Path, *, layout: str = "hf", size: str = "tiny", seed: int = 0) -> Path:
    """Write a tiny checkpoint into ``target`` (created) in the given layout."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(SIZES[size]["vocab"])
    model = build_model(tokenizer, size, seed)
    if layout == "hf":
        model.save_pretrained(str(target))
        tokenizer.save_pretrained(str(target))
        write_preprocessor_config(target)
        return target
    if layout != "original":
        raise ValueError("layout must be 'hf' or 'original'")
    _write_original(model, tokenizer, target, seed)
    return target


# transformers checkpoint name → Microsoft's name (the inverse of convert.convert_key), by prefix.
_ORIGINAL_RULES = (
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
)
# transformers' acoustic decoder name → Microsoft's, inside the decoder (which only the original layout has).
_DECODER_RULES = (
    (r"^stem\.conv\.", "upsample_layers.0.0.conv."),
    (r"^stem\.stage\.", "stages.0."),
    (r"^head\.conv\.", "head.conv.conv."),
)


def _renamed(key: str, rules: Sequence[tuple[str, str]]) -> str:
    """``key`` with the first of ``rules`` (pattern, replacement) that matches it applied."""
    for pattern, repl in rules:
        new, n = re.subn(pattern, repl, key, count=1)
        if n:
            return new
    return key


def _deeper_mixers(key: str) -> str:
    """Microsoft's depthwise mixer convolutions sit two modules deeper, everywhere."""
    return key.replace(".mixer.conv.", ".mixer.conv.conv.conv.")


def original_key(key: str) -> str:
    key = _deeper_mixers(key)
    m = re.match(r"^(acoustic|semantic)_tokenizer_encoder\.conv_layers\.(\d+)\.(conv|stage)\.(.*)$", key)
    if m:
        kind, idx, part, rest = m.groups()
        base = f"model.{kind}_tokenizer.encoder."
        if part == "conv":
            return f"{base}downsample_layers.{int(idx) + 1}.0.conv.{rest}"
        return f"{base}stages.{int(idx) + 1}.{rest}"
    return _renamed(key, _ORIGINAL_RULES)


def original_decoder_key(key: str) -> str:
    key = _deeper_mixers(key)
    m = re.match(r"^conv_layers\.(\d+)\.(convtr|stage)\.(.*)$", key)
    if m:
        idx, part, rest = int(m.group(1)) + 1, m.group(2), m.group(3)
        key = f"upsample_layers.{idx}.0.convtr.{rest}" if part == "convtr" else f"stages.{idx}.{rest}"
    else:
        key = _renamed(key, _DECODER_RULES)
    return "model.acoustic_tokenizer.decoder." + key


def _decoder_state(hf_acoustic: dict, seed: int) -> dict:
    """The acoustic decoder Microsoft's model carries (unused by ASR), random, in Microsoft's key names."""
    import torch
    from transformers import VibeVoiceAcousticTokenizerDecoderConfig, VibeVoiceAcousticTokenizerDecoderModel

    torch.manual_seed(seed + 2)
    decoder = VibeVoiceAcousticTokenizerDecoderModel(
        VibeVoiceAcousticTokenizerDecoderConfig(
            channels=hf_acoustic["channels"],
            hidden_size=hf_acoustic["hidden_size"],
            num_filters=hf_acoustic["num_filters"],
            depths=list(reversed(hf_acoustic["depths"])),  # Microsoft: decoder_depths None = reversed encoder depths
            downsampling_ratios=list(hf_acoustic["downsampling_ratios"]),
            rms_norm_eps=hf_acoustic["rms_norm_eps"],
        )
    )
    return {original_decoder_key(k): v.contiguous() for k, v in decoder.state_dict().items()}


def original_config(hf_cfg: dict) -> dict:
    """Microsoft's config.json for VibeVoice-ASR, from the transformers config of the same model."""

    def tokenizer_cfg(c: dict, *, acoustic: bool) -> dict:
        out = {
            "causal": True,
            "channels": c["channels"],
            "conv_bias": True,
            "conv_norm": "none",
            "corpus_normalize": 0.0,
            "disable_last_norm": True,
            "encoder_depths": "-".join(str(d) for d in c["depths"]),
            "encoder_n_filters": c["num_filters"],
            "encoder_ratios": list(reversed(c["downsampling_ratios"])),
            "fix_std": c["vae_std"] * 0.8 if acoustic else 0,
            "layer_scale_init_value": c["layer_scale_init_value"],
            "layernorm": "RMSNorm",
            "layernorm_elementwise_affine": True,
            "layernorm_eps": c["rms_norm_eps"],
            "mixer_layer": "depthwise_conv",
            "model_type": "vibevoice_acoustic_tokenizer" if acoustic else "vibevoice_semantic_tokenizer",
            "pad_mode": "constant",
            "std_dist_type": "gaussian" if acoustic else "none",
            "vae_dim": c["hidden_size"],
            "weight_init_value": 0.01,
        }
        if acoustic:
            out |= {
                "decoder_depths": None,
                "decoder_n_filters": c["num_filters"],
                "decoder_ratios": list(reversed(c["downsampling_ratios"])),
            }
        return dict(sorted(out.items()))

    text = {k: v for k, v in hf_cfg["text_config"].items() if k not in ("model_type", "dtype", "architectures")}
    # Microsoft's code runs transformers 4.x, whose Qwen2 config reads rope_theta / rope_scaling only.
    rope = text.pop("rope_parameters", None) or {}
    text |= {"model_type": "qwen2", "rope_theta": rope.get("rope_theta", 10000.0), "rope_scaling": None}
    acoustic, semantic = hf_cfg["acoustic_tokenizer_encoder_config"], hf_cfg["semantic_tokenizer_encoder_config"]
    return {
        # The published checkpoint names its training class; Microsoft's save_pretrained of the inference
        # class (e.g. a merged fine-tune) writes VibeVoiceASRForConditionalGeneration: we read both.
        "architectures": ["VibeVoiceForASRTraining"],
        "model_type": "vibevoice",
        "acoustic_tokenizer_config": tokenizer_cfg(acoustic, acoustic=True),
        "semantic_tokenizer_config": tokenizer_cfg(semantic, acoustic=False),
        "decoder_config": text,
        "acoustic_vae_dim": acoustic["hidden_size"],
        "semantic_vae_dim": semantic["hidden_size"],
        "language_model_pretrained_name": "Qwen/Qwen2.5-7B",
        "torch_dtype": "float32",
    }


def _write_original(model, tokenizer, target: Path, seed: int = 0) -> None:
    import tempfile

    from safetensors.torch import load_file, save_file

    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        hf_state = load_file(str(Path(tmp) / "model.safetensors"))
        hf_cfg = json.loads((Path(tmp) / "config.json").read_text())
    state = {original_key(k): v.contiguous() for k, v in hf_state.items()}
    state |= _decoder_state(hf_cfg["acoustic_tokenizer_encoder_config"], seed)
    # Two shards plus an index, like the 17 GB original.
    keys = sorted(state)
    half = len(keys) // 2
    shards = {"model-00001-of-00002.safetensors": keys[:half], "model-00002-of-00002.safetensors": keys[half:]}
    weight_map = {}
    total = 0
    for name, ks in shards.items():
        save_file({k: state[k] for k in ks}, str(target / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(ks, name))
        total += sum(state[k].numel() * state[k].element_size() for k in ks)
    (target / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2)
    )
    (target / "config.json").write_text(json.dumps(original_config(hf_cfg), indent=2))
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
