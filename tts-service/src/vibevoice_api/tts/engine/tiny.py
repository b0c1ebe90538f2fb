"""Tiny randomly initialised VibeVoice-Realtime checkpoints and voice presets, in the official formats.

The checkpoint is the real architecture, smaller, written as the official folder: ``config.json`` in
Microsoft's format, one ``model.safetensors`` with the official key names (including the unused upper
``embed_tokens``), Qwen2-style tokenizer files. Weights are perturbed so no layer is left at zero, the
speech scaling/bias factors are set, and the end-of-speech classifier is biased so that lengths come
from the generation budget. Voice presets are made the reference's way (prefill of a short prompt;
the negative branch on ``<|image_pad|>``) and pickled in the transformers-4.51 class layout
Microsoft's files use, so the restricted loader is exercised for real.

``python -m vibevoice_api.tts.engine.tiny DIR [--size tiny|mid]`` writes ``DIR/VibeVoice-Realtime-0.5B/``
and ``DIR/voices/streaming_model/*.pt``.
"""

from __future__ import annotations

import argparse
import copyreg
import io
import json
import pickle
from pathlib import Path
from typing import Any

import torch

from .model import RealtimeConfig, RealtimeModel, checkpoint_key

DEFAULT_VOICES = ["en-Carter_man", "en-Emma_woman", "en-Davis_man", "in-Samuel_man", "de-Spk0_man"]
SIZES = {
    "tiny": {
        "hidden": 64,
        "layers": 4,
        "tts": 2,
        "heads": 2,  # head dim 32 (vLLM's CPU attention refuses smaller heads)
        "kv": 1,
        "ffn": 128,
        "vae": 8,
        "filters": 4,
        "depths": "1-1-1-1-1-1-1",
        "head_layers": 1,
    },
    "mid": {
        "hidden": 384,
        "layers": 12,
        "tts": 8,
        "heads": 6,
        "kv": 2,
        "ffn": 1024,
        "vae": 64,
        "filters": 16,
        "depths": "2-2-2-2-2-2-4",
        "head_layers": 2,
    },
}


def tiny_config(vocab: int, size: str = "tiny") -> dict[str, Any]:
    s = SIZES[size]
    return {
        "architectures": ["VibeVoiceStreamingForConditionalGenerationInference"],
        "model_type": "vibevoice_streaming",
        "acoustic_vae_dim": s["vae"],
        "tts_backbone_num_hidden_layers": s["tts"],
        "torch_dtype": "float32",
        "acoustic_tokenizer_config": {
            "model_type": "vibevoice_acoustic_tokenizer",
            "causal": True,
            "channels": 1,
            "conv_bias": True,
            "conv_norm": "none",
            "corpus_normalize": 0.0,
            "decoder_depths": None,
            "decoder_n_filters": s["filters"],
            "decoder_ratios": [8, 5, 5, 4, 2, 2],
            "disable_last_norm": True,
            "encoder_depths": s["depths"],
            "encoder_n_filters": s["filters"],
            "encoder_ratios": [8, 5, 5, 4, 2, 2],
            "fix_std": 0.5,
            "layer_scale_init_value": 1e-6,
            "layernorm": "RMSNorm",
            "layernorm_elementwise_affine": True,
            "layernorm_eps": 1e-5,
            "mixer_layer": "depthwise_conv",
            "pad_mode": "constant",
            "std_dist_type": "gaussian",
            "vae_dim": s["vae"],
            "weight_init_value": 0.01,
        },
        "decoder_config": {
            "model_type": "qwen2",
            "hidden_size": s["hidden"],
            "intermediate_size": s["ffn"],
            "max_position_embeddings": 8192,
            "num_hidden_layers": s["layers"],
            "num_attention_heads": s["heads"],
            "num_key_value_heads": s["kv"],
            "vocab_size": vocab,
            "rope_theta": 1000000.0,
            "rms_norm_eps": 1e-6,
            "tie_word_embeddings": False,
            "max_window_layers": s["layers"],
            "sliding_window": None,
            "use_cache": True,
            "hidden_act": "silu",
            "attention_dropout": 0.0,
        },
        "diffusion_head_config": {
            "model_type": "vibevoice_diffusion_head",
            "ddpm_beta_schedule": "cosine",
            "ddpm_num_steps": 1000,
            "ddpm_num_inference_steps": 20,
            "prediction_type": "v_prediction",
            "hidden_size": s["hidden"],
            "latent_size": s["vae"],
            "speech_vae_dim": s["vae"],
            "head_layers": s["head_layers"],
            "head_ffn_ratio": 3.0,
            "rms_norm_eps": 1e-5,
            "ddpm_batch_mul": 4,
            "diffusion_type": "ddpm",
        },
    }


def write_tiny_realtime_model(target: Path, *, size: str = "tiny", seed: int = 0, eos_bias: float = -20.0) -> Path:
    from safetensors.torch import save_file
    from vibevoice_api.shared.tiny_tokenizer import build_tokenizer

    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(600 if size == "tiny" else 2000)
    raw = tiny_config(len(tokenizer), size)
    torch.manual_seed(seed)
    model = RealtimeModel(RealtimeConfig(raw), "eager").eval()
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen))  # no layer stays at its zero init
        model.tts_eos_classifier.fc2.bias.fill_(eos_bias)
        model.speech_scaling_factor.fill_(0.2)
        model.speech_bias_factor.fill_(-0.05)
    state = {checkpoint_key(k): v.contiguous() for k, v in model.state_dict().items() if not k.endswith("inv_freq")}
    # The official file keeps the upper stack's (unused) token embedding.
    state["model.tts_language_model.embed_tokens.weight"] = (
        torch.randn(len(tokenizer), raw["decoder_config"]["hidden_size"], generator=gen) * 0.02
    )
    save_file(state, str(target / "model.safetensors"), metadata={"format": "pt"})
    (target / "config.json").write_text(json.dumps(raw, indent=2))
    tokenizer.save_pretrained(str(target / "tokenizer"))
    return target


# ------------------------------------------------------------------------------------------------
# Presets pickled like Microsoft's (transformers 4.51 classes), without needing transformers 4.51.


class _Output451:
    """Pickles as transformers 4.51's BaseModelOutputWithPast (an OrderedDict-based ModelOutput)."""

    def __init__(self, hidden: torch.Tensor, cache: _Cache451) -> None:
        self.hidden, self.cache = hidden, cache

    def __reduce__(self) -> Any:
        fields = {
            "last_hidden_state": self.hidden,
            "past_key_values": self.cache,
            "hidden_states": None,
            "attentions": None,
        }
        items = [("last_hidden_state", self.hidden), ("past_key_values", self.cache)]
        return (_Output451, (self.hidden, self.cache, None, None), fields, None, iter(items))


class _Cache451:
    """Pickles as transformers 4.51's DynamicCache (attributes key_cache / value_cache / _seen_tokens)."""

    def __init__(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        self.keys, self.values = keys, values

    def __reduce__(self) -> Any:
        state = {"_seen_tokens": int(self.keys[0].shape[2]), "key_cache": self.keys, "value_cache": self.values}
        return (copyreg.__newobj__, (_Cache451,), state)


_NAMES = {
    _Output451: ("transformers.modeling_outputs", "BaseModelOutputWithPast"),
    _Cache451: ("transformers.cache_utils", "DynamicCache"),
}


class _Pickler451(pickle._Pickler):  # the pure-Python pickler lets us name classes as the reference's
    def save_global(self, obj: Any, name: str | None = None) -> None:
        if obj in _NAMES:
            module, qual = _NAMES[obj]
            self.write(pickle.GLOBAL + f"{module}\n{qual}\n".encode())
            self.memoize(obj)
            return
        super().save_global(obj, name)


class _PickleModule:
    __name__ = "pickle"
    Pickler = _Pickler451
    Unpickler = pickle.Unpickler
    HIGHEST_PROTOCOL = pickle.HIGHEST_PROTOCOL
    dump = staticmethod(pickle.dump)
    load = staticmethod(pickle.load)


def _prefill(model: RealtimeModel, ids: list[int]) -> dict[str, Any]:
    from transformers import DynamicCache

    def run(lm: Any, embeds: torch.Tensor) -> tuple[torch.Tensor, Any]:
        cache = DynamicCache()
        pos = torch.arange(embeds.shape[1]).unsqueeze(0)
        out = lm(inputs_embeds=embeds, cache=cache, use_cache=True, position_ids=pos)
        return out.last_hidden_state, cache

    def kv(cache: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        return [layer.keys.clone() for layer in cache.layers], [layer.values.clone() for layer in cache.layers]

    with torch.no_grad():
        ids_t = torch.tensor([ids])
        lm_h, lm_c = run(model.language_model, model.language_model.embed_tokens(ids_t))
        types = model.tts_input_types(torch.ones_like(ids_t))
        tts_h, tts_c = run(model.tts_language_model, lm_h + types)
    return {"lm": (lm_h, *kv(lm_c)), "tts_lm": (tts_h, *kv(tts_c))}


def write_tiny_voice_presets(model_dir: Path, voices_dir: Path, names: list[str] | None = None) -> list[Path]:
    from transformers import AutoTokenizer

    from .loader import read_config, weight_files

    model = RealtimeModel(read_config(model_dir), "eager").eval()
    from safetensors.torch import load_file

    from .model import module_key

    state = {}
    for f in weight_files(model_dir):
        for k, v in load_file(str(f)).items():
            name = module_key(k)
            if name is not None:
                state[name] = v
    model.load_state_dict(state, strict=False)
    tok = AutoTokenizer.from_pretrained(str(model_dir / "tokenizer"), local_files_only=True)
    voices_dir.mkdir(parents=True, exist_ok=True)
    written = []
    neg = _prefill(model, [tok.convert_tokens_to_ids("<|image_pad|>")])
    for i, name in enumerate(names or DEFAULT_VOICES):
        prompt = tok.encode(f"<|im_start|>system\nSpeaker {i}: {name.split('-')[-1]} reads aloud.<|im_end|>\n")
        pos = _prefill(model, prompt)
        data = {
            "lm": _Output451(pos["lm"][0], _Cache451(pos["lm"][1], pos["lm"][2])),
            "tts_lm": _Output451(pos["tts_lm"][0], _Cache451(pos["tts_lm"][1], pos["tts_lm"][2])),
            "neg_lm": _Output451(neg["lm"][0], _Cache451(neg["lm"][1], neg["lm"][2])),
            "neg_tts_lm": _Output451(neg["tts_lm"][0], _Cache451(neg["tts_lm"][1], neg["tts_lm"][2])),
        }
        buf = io.BytesIO()
        torch.save(data, buf, pickle_module=_PickleModule, _use_new_zipfile_serialization=True)
        path = voices_dir / f"{name}.pt"
        path.write_bytes(buf.getvalue())
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vibevoice_api.tts.engine.tiny", description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", type=Path, help="model dir (VIBEVOICE_MODEL_DIR)")
    ap.add_argument("--size", choices=tuple(SIZES), default="tiny")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eos-bias", type=float, default=-20.0)
    args = ap.parse_args(argv)
    model_dir = write_tiny_realtime_model(
        args.dir / "VibeVoice-Realtime-0.5B", size=args.size, seed=args.seed, eos_bias=args.eos_bias
    )
    presets = write_tiny_voice_presets(model_dir, args.dir / "voices" / "streaming_model")
    print(f"wrote tiny VibeVoice-Realtime ({args.size}) to {model_dir} and {len(presets)} voice presets")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
