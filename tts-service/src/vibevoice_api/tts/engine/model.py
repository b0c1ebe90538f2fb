"""VibeVoice-Realtime-0.5B as torch modules, with the official checkpoint's key names.

The model is Qwen2.5-0.5B cut in two: a lower text LM (its final norm removed) and an upper TTS LM
that reads the text LM's hidden states (type embedding 1) and the model's own speech latents
(through the acoustic connector, type embedding 0). A diffusion head turns the TTS LM's last hidden
state into the next 64-dim speech latent (classifier-free guided by a negative stream), a binary
classifier says when speech ends, and a causal σ-VAE decoder turns latents into 24 kHz audio one
frame (3200 samples) at a time.

The Qwen2 stacks and the acoustic decoder are transformers' own modules; the diffusion head,
connector and classifier are small and written here with the checkpoint's parameter names.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class RealtimeConfig:
    """The parts of the official config.json the engine needs."""

    raw: dict[str, Any]

    @property
    def decoder(self) -> dict[str, Any]:
        return self.raw["decoder_config"]

    @property
    def hidden_size(self) -> int:
        return int(self.decoder["hidden_size"])

    @property
    def tts_layers(self) -> int:
        return int(self.raw.get("tts_backbone_num_hidden_layers", 20))

    @property
    def lm_layers(self) -> int:
        return int(self.decoder.get("num_hidden_layers", 24)) - self.tts_layers

    @property
    def max_positions(self) -> int:
        return int(self.decoder.get("max_position_embeddings", 8192))

    @property
    def vae_dim(self) -> int:
        return int(self.raw.get("acoustic_vae_dim", self.raw.get("acoustic_tokenizer_config", {}).get("vae_dim", 64)))

    @property
    def head(self) -> dict[str, Any]:
        return self.raw.get("diffusion_head_config", {})

    @property
    def acoustic(self) -> dict[str, Any]:
        return self.raw.get("acoustic_tokenizer_config", {})

    def qwen2(self, layers: int, attn: str) -> Any:
        from transformers import Qwen2Config

        d = {k: v for k, v in self.decoder.items() if k not in ("model_type", "architectures", "torch_dtype", "dtype")}
        d["num_hidden_layers"] = layers
        d.setdefault("max_window_layers", layers)
        d["max_window_layers"] = min(int(d["max_window_layers"]), layers)
        d.pop("layer_types", None)
        cfg = Qwen2Config(**d)
        cfg._attn_implementation = attn
        return cfg

    def decoder_config(self) -> Any:
        from transformers import VibeVoiceAcousticTokenizerDecoderConfig

        a = self.acoustic
        depths = a.get("decoder_depths")
        if depths is None:
            enc = a.get("encoder_depths", "3-3-3-3-3-3-8")
            enc = [int(x) for x in enc.split("-")] if isinstance(enc, str) else list(enc)
            depths = list(reversed(enc))
        elif isinstance(depths, str):
            depths = [int(x) for x in depths.split("-")]
        ratios = a.get("decoder_ratios") or a.get("encoder_ratios") or [8, 5, 5, 4, 2, 2]
        if a.get("disable_last_norm") is False:
            raise ValueError("acoustic decoder with a final norm (disable_last_norm=false) is not supported")
        # transformers' decoder config stores encoder-order depths/ratios and reverses them itself.
        return VibeVoiceAcousticTokenizerDecoderConfig(
            channels=int(a.get("channels", 1)),
            hidden_size=int(a.get("vae_dim", 64)),
            num_filters=int(a.get("decoder_n_filters", a.get("encoder_n_filters", 32))),
            depths=list(depths),
            downsampling_ratios=list(reversed(ratios)),
            rms_norm_eps=float(a.get("layernorm_eps", 1e-5)),
            layer_scale_init_value=float(a.get("layer_scale_init_value", 1e-6)),
        )


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float, affine: bool = True) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x)
        return y * self.weight if self.weight is not None else y


class _Mlp(nn.Module):
    """SwiGLU feed-forward (gate_proj, up_proj, down_proj)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class _Modulation(nn.Sequential):
    """SiLU then a bias-free projection (the checkpoint's ``adaLN_modulation.1``)."""

    def __init__(self, cond: int, out: int) -> None:
        super().__init__(nn.SiLU(), nn.Linear(cond, out, bias=False))


class _HeadLayer(nn.Module):
    def __init__(self, dim: int, ffn: int, eps: float) -> None:
        super().__init__()
        self.ffn = _Mlp(dim, ffn)
        self.norm = RMSNorm(dim, eps)
        self.adaLN_modulation = _Modulation(dim, 3 * dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.adaLN_modulation(c).chunk(3, dim=-1)
        return x + gate * self.ffn(self.norm(x) * (1 + scale) + shift)


class _FinalLayer(nn.Module):
    def __init__(self, dim: int, out: int, eps: float) -> None:
        super().__init__()
        self.norm_final = RMSNorm(dim, eps, affine=False)
        self.linear = nn.Linear(dim, out, bias=False)
        self.adaLN_modulation = _Modulation(dim, 2 * dim)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=-1)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class _TimestepEmbedder(nn.Module):
    """Sinusoidal features of the diffusion timestep (cos half first), then a 2-layer MLP."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim, bias=False), nn.SiLU(), nn.Linear(dim, dim, bias=False))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        if self.freq_dim % 2:
            emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
        return self.mlp(emb.to(t.dtype))


class DiffusionHead(nn.Module):
    """Predicts v (velocity) for a noisy latent, conditioned on the TTS LM state and the timestep."""

    def __init__(self, hidden: int, latent: int, layers: int, ffn_ratio: float, eps: float) -> None:
        super().__init__()
        self.noisy_images_proj = nn.Linear(latent, hidden, bias=False)
        self.cond_proj = nn.Linear(hidden, hidden, bias=False)
        self.t_embedder = _TimestepEmbedder(hidden)
        self.layers = nn.ModuleList([_HeadLayer(hidden, int(hidden * ffn_ratio), eps) for _ in range(layers)])
        self.final_layer = _FinalLayer(hidden, latent, eps)

    def forward(self, noisy: torch.Tensor, timesteps: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        x = self.noisy_images_proj(noisy)
        c = self.cond_proj(condition) + self.t_embedder(timesteps)
        for layer in self.layers:
            x = layer(x, c)
        return self.final_layer(x, c)


class SpeechConnector(nn.Module):
    """Speech latent (64) → LM embedding space."""

    def __init__(self, latent: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(latent, hidden)
        self.norm = RMSNorm(hidden, 1e-6)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.norm(self.fc1(x)))


class EosClassifier(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x)))


class RealtimeModel(nn.Module):
    def __init__(self, cfg: RealtimeConfig, attn: str = "sdpa") -> None:
        super().__init__()
        from transformers import Qwen2Model, VibeVoiceAcousticTokenizerDecoderModel

        self.cfg = cfg
        self.language_model = Qwen2Model(cfg.qwen2(cfg.lm_layers, attn))
        self.language_model.norm = nn.Identity()  # the text LM hands raw hidden states to the TTS LM
        self.tts_language_model = Qwen2Model(cfg.qwen2(cfg.tts_layers, attn))
        self.tts_language_model.embed_tokens = None  # never used: its inputs are embeddings already
        h = cfg.hidden_size
        self.tts_input_types = nn.Embedding(2, h)
        self.acoustic_connector = SpeechConnector(cfg.vae_dim, h)
        head = cfg.head
        self.prediction_head = DiffusionHead(
            int(head.get("hidden_size", h)),
            int(head.get("latent_size", cfg.vae_dim)),
            int(head.get("head_layers", 4)),
            float(head.get("head_ffn_ratio", 3.0)),
            float(head.get("rms_norm_eps", 1e-5)),
        )
        self.acoustic_decoder = VibeVoiceAcousticTokenizerDecoderModel(cfg.decoder_config())
        self.tts_eos_classifier = EosClassifier(h)
        self.register_buffer("speech_scaling_factor", torch.tensor(float("nan")))
        self.register_buffer("speech_bias_factor", torch.tensor(float("nan")))


# ------------------------------------------------------------------------------------------------
# Checkpoint key names → module names

_DECODER = "model.acoustic_tokenizer.decoder."
_UNUSED = (
    re.compile(r"^model\.tts_language_model\.embed_tokens\."),
    re.compile(r"^model\.acoustic_tokenizer\.encoder\."),
    re.compile(r"^model\.language_model\.norm\."),
)


def module_key(key: str) -> str | None:
    """Our module's parameter name for a checkpoint key; None for weights inference never reads."""
    if any(p.match(key) for p in _UNUSED):
        return None
    if key.startswith("tts_eos_classifier."):
        return key
    if key.startswith(_DECODER):
        rest = key[len(_DECODER) :].replace(".mixer.conv.conv.conv.", ".mixer.conv.")
        m = re.match(r"^upsample_layers\.(\d+)\.0\.(conv|convtr)\.(.*)$", rest)
        if m:
            i, kind, tail = int(m.group(1)), m.group(2), m.group(3)
            if i == 0:
                return f"acoustic_decoder.stem.conv.{tail}"
            return f"acoustic_decoder.conv_layers.{i - 1}.{kind}.{tail}"
        m = re.match(r"^stages\.(\d+)\.(.*)$", rest)
        if m:
            i, tail = int(m.group(1)), m.group(2)
            return (
                f"acoustic_decoder.stem.stage.{tail}"
                if i == 0
                else f"acoustic_decoder.conv_layers.{i - 1}.stage.{tail}"
            )
        if rest.startswith("head.conv."):
            return "acoustic_decoder.head." + rest[len("head.conv.") :]
        return "acoustic_decoder." + rest
    if key.startswith("model."):
        return key[len("model.") :]
    return key


def checkpoint_key(name: str) -> str:
    """The inverse of :func:`module_key` (used to write tiny checkpoints in the official layout)."""
    if name.startswith("tts_eos_classifier."):
        return name
    if name.startswith("acoustic_decoder."):
        rest = name[len("acoustic_decoder.") :].replace(".mixer.conv.", ".mixer.conv.conv.conv.")
        if rest.startswith("stem.conv."):
            return f"{_DECODER}upsample_layers.0.0.conv.{rest[len('stem.conv.') :]}"
        if rest.startswith("stem.stage."):
            return f"{_DECODER}stages.0.{rest[len('stem.stage.') :]}"
        m = re.match(r"^conv_layers\.(\d+)\.(convtr|stage)\.(.*)$", rest)
        if m:
            i, kind, tail = int(m.group(1)), m.group(2), m.group(3)
            if kind == "convtr":
                return f"{_DECODER}upsample_layers.{i + 1}.0.convtr.{tail}"
            return f"{_DECODER}stages.{i + 1}.{tail}"
        if rest.startswith("head."):
            return f"{_DECODER}head.conv.{rest[len('head.') :]}"
        return _DECODER + rest
    return "model." + name
