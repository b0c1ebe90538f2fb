"""The streaming generation algorithm of VibeVoice-Realtime, one speech window at a time.

Per request three KV-cached streams continue from the voice preset: the text LM, the TTS LM, and the
negative (unconditional) TTS LM. Each step of :meth:`SpeechStream.next_window`:

1. feeds the next 5 text tokens through the text LM, and its hidden states (type 1) through the TTS LM;
2. draws 6 speech latents: each from the diffusion head, classifier-free guided by the negative
   stream (``eps = uncond + cfg·(cond − uncond)``) over a DPM-Solver++ schedule, starting from
   ``randn(2, 64)[0]`` (the reference's draw, so a seed reproduces it); each latent is decoded by the
   streaming acoustic decoder into 3200 samples and fed back (connector, type 0) into both TTS streams;
3. stops when the end-of-speech classifier fires (sigmoid > 0.5), when the positions run out, or at a
   generation budget proportional to the text length.

When the text is used up, windows of 6 latents continue until one of those stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

TEXT_WINDOW = 5
SPEECH_WINDOW = 6


def make_scheduler(head_cfg: dict[str, Any]) -> Any:
    """DPM-Solver++ (2nd order multistep, lower-order final step) with the checkpoint's schedule."""
    from diffusers import DPMSolverMultistepScheduler

    schedule = head_cfg.get("ddpm_beta_schedule", "cosine")
    return DPMSolverMultistepScheduler(
        num_train_timesteps=int(head_cfg.get("ddpm_num_steps", 1000)),
        beta_schedule="squaredcos_cap_v2" if schedule == "cosine" else schedule,
        prediction_type=head_cfg.get("prediction_type", "v_prediction"),
        solver_order=2,
        algorithm_type="dpmsolver++",
        solver_type="midpoint",
        lower_order_final=True,
        timestep_spacing="linspace",
    )


def _cache_from(keys: list[torch.Tensor], values: list[torch.Tensor]) -> Any:
    from transformers import DynamicCache

    cache = DynamicCache()
    for i, (k, v) in enumerate(zip(keys, values, strict=True)):
        cache.update(k, v, i)
    return cache


@dataclass
class SpeechStream:
    """The state of one utterance; not thread-safe (one worker thread drives all streams)."""

    engine: Any  # the Loaded model bundle (model, device, dtype, scheduler)
    text_ids: list[int]
    preset: Any  # VoicePreset already on the device
    cfg_scale: float
    steps: int
    generator: torch.Generator | None
    max_latents: int
    window: int = 0
    latents: int = 0
    finished: bool = False
    stop_reason: str | None = None
    _state: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = self.preset.streams
        self._state = {
            "lm": _cache_from(p["lm"].keys, p["lm"].values),
            "tts": _cache_from(p["tts_lm"].keys, p["tts_lm"].values),
            "neg": _cache_from(p["neg_tts_lm"].keys, p["neg_tts_lm"].values),
            "lm_pos": p["lm"].length,
            "tts_pos": p["tts_lm"].length,
            "neg_pos": p["neg_tts_lm"].length,
            "tts_last": p["tts_lm"].last_hidden_state[:, -1, :],
            "neg_last": p["neg_tts_lm"].last_hidden_state[:, -1, :],
            "audio_cache": None,
        }

    # -------------------------------------------------------------- model calls

    def _run(self, lm: Any, embeds: torch.Tensor, cache: Any, pos: int) -> torch.Tensor:
        n = embeds.shape[1]
        position_ids = torch.arange(pos, pos + n, device=embeds.device).unsqueeze(0)
        out = lm(inputs_embeds=embeds, cache=cache, use_cache=True, position_ids=position_ids)
        return out.last_hidden_state

    def _tts(self, embeds: torch.Tensor, kind: int, which: str) -> torch.Tensor:
        m = self.engine.model
        types = m.tts_input_types(torch.full(embeds.shape[:2], kind, dtype=torch.long, device=embeds.device))
        pos_key = "tts_pos" if which == "tts" else "neg_pos"
        hidden = self._run(m.tts_language_model, embeds + types, self._state[which], self._state[pos_key])
        self._state[pos_key] += embeds.shape[1]
        return hidden

    def _sample_latent(self) -> torch.Tensor:
        m = self.engine.model
        sched = self.engine.scheduler
        sched.set_timesteps(self.steps)
        cond = torch.cat([self._state["tts_last"], self._state["neg_last"]], dim=0)
        # The reference draws two rows and keeps the first: draw the same to follow a seed exactly.
        x = torch.randn(2, m.cfg.vae_dim, generator=self.generator).to(cond)[:1]
        for t in sched.timesteps:
            both = torch.cat([x, x], dim=0)
            eps = m.prediction_head(both, t.repeat(2).to(both), condition=cond)
            cond_eps, uncond_eps = eps[:1], eps[1:]
            guided = uncond_eps + self.cfg_scale * (cond_eps - uncond_eps)
            x = sched.step(guided, t, x).prev_sample
        return x  # [1, vae_dim]

    def _decode(self, latent: torch.Tensor) -> torch.Tensor:
        m = self.engine.model
        scaled = latent / m.speech_scaling_factor - m.speech_bias_factor
        out = m.acoustic_decoder(scaled.unsqueeze(-1), padding_cache=self._state["audio_cache"], use_cache=True)
        self._state["audio_cache"] = out.padding_cache
        return out.audio.reshape(-1)

    # -------------------------------------------------------------- the algorithm

    def next_window(self) -> np.ndarray | None:
        """Audio of the next speech window (up to 6 × 3200 samples), or None when finished."""
        if self.finished:
            return None
        m = self.engine.model
        max_pos = m.cfg.max_positions
        with torch.inference_mode():
            chunk = self.text_ids[self.window * TEXT_WINDOW : (self.window + 1) * TEXT_WINDOW]
            self.window += 1
            if chunk:
                if self._state["tts_pos"] + len(chunk) > max_pos:
                    return self._finish("max_positions")
                ids = torch.tensor([chunk], dtype=torch.long, device=self.engine.device)
                embeds = m.language_model.embed_tokens(ids)
                lm_hidden = self._run(m.language_model, embeds, self._state["lm"], self._state["lm_pos"])
                self._state["lm_pos"] += len(chunk)
                self._state["tts_last"] = self._tts(lm_hidden, 1, "tts")[:, -1, :]
            pieces = []
            for _ in range(SPEECH_WINDOW):
                latent = self._sample_latent()
                pieces.append(self._decode(latent))
                self.latents += 1
                if self._state["tts_pos"] + 1 > max_pos:
                    self._finish("max_positions")
                    break
                embed = m.acoustic_connector(latent).unsqueeze(1)
                self._state["tts_last"] = self._tts(embed, 0, "tts")[:, -1, :]
                self._state["neg_last"] = self._tts(embed, 0, "neg")[:, -1, :]
                eos = torch.sigmoid(m.tts_eos_classifier(self._state["tts_last"]))
                if eos[0].item() > 0.5:
                    self._finish("eos")
                    break
                if self.latents >= self.max_latents:
                    self._finish("budget")
                    break
            audio = torch.cat(pieces).float().cpu().numpy()
        return audio

    def _finish(self, reason: str) -> None:
        self.finished = True
        self.stop_reason = reason
        return None
