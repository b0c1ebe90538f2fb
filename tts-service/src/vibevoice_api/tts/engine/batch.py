"""Continuous batching of VibeVoice-Realtime speech streams: all active streams advance together.

A :class:`Batch` holds every active :class:`Utterance` as one row of batched state: the text LM's
cache, the TTS LM's cache (two rows per stream: the positive branch, then the negative one), the last
hidden states of both TTS branches, and the streaming acoustic decoder's convolution caches. One
:meth:`Batch.window` is the reference algorithm's window for every row at once:

1. the streams that still have text feed their next 5 tokens (fewer at the end, padded) through the
   text LM and the positive TTS branch (type 1) — one call each over those streams;
2. six speech steps, each over all rows: start noise from each stream's own generator
   (``randn(2, D)[0]``, the reference's draw), the diffusion head over all streams × {positive,
   negative} per solver step (each row with its own cfg scale and step count), the acoustic decoder
   over all streams, then the connector and one TTS LM call over both branches of all streams, and
   the end-of-speech classifier.

A stream stops on end of speech, at the position limit, or at its generation budget, and leaves the
batch at once; the runtime can also drop streams (cancelled clients) before any speech step. New
streams join between windows. Rows never see each other (per-row masks, positions and generators),
so a stream's audio is the same alone or in any batch, up to float rounding.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .kvcache import PaddedKV, run_stack
from .solver import BatchSolver

TEXT_WINDOW = 5
SPEECH_WINDOW = 6


@dataclass(eq=False)
class Utterance:
    """One piece of text spoken with one voice; its progress and this window's audio."""

    text_ids: list[int]
    preset: Any  # VoicePreset already on the device
    cfg_scale: float
    steps: int
    generator: torch.Generator
    max_latents: int
    owner: Any = None  # the runtime's request
    window: int = 0
    latents: int = 0
    finished: bool = False
    stop_reason: str | None = None
    pieces: list[torch.Tensor] = field(default_factory=list)

    def finish(self, reason: str) -> None:
        self.finished, self.stop_reason = True, reason

    def take_audio(self) -> np.ndarray | None:
        """This window's audio (float32), or None when the window produced none."""
        if not self.pieces:
            return None
        audio = torch.cat(self.pieces).float().cpu().numpy()
        self.pieces = []
        return audio


class DecoderCache:
    """The streaming acoustic decoder's convolution caches, one row per stream, in place."""

    def __init__(self, decoder: Any, vae_dim: int, device: Any, dtype: torch.dtype) -> None:
        from transformers.models.vibevoice_acoustic_tokenizer.modeling_vibevoice_acoustic_tokenizer import (
            VibeVoiceAcousticTokenizerConv1dCacheLayer,
            VibeVoiceAcousticTokenizerConv1dPaddingCache,
        )

        self._layer_cls, self._cache_cls = (
            VibeVoiceAcousticTokenizerConv1dCacheLayer,
            VibeVoiceAcousticTokenizerConv1dPaddingCache,
        )
        self.decoder, self.device, self.dtype = decoder, device, dtype
        with torch.inference_mode():
            probe = decoder(torch.zeros(1, vae_dim, 1, device=device, dtype=dtype), use_cache=True).padding_cache
        self.shapes = {k: (layer.in_channels, layer.left_pad) for k, layer in probe.layers.items()}
        self.samples = None
        self.rows = 0
        self.bufs: dict[str, torch.Tensor] = {}
        self._alloc(1)

    def _alloc(self, rows: int) -> None:
        old, n = self.bufs, self.rows
        self.bufs = {
            k: torch.zeros(rows, c, p, device=self.device, dtype=self.dtype) for k, (c, p) in self.shapes.items()
        }
        for k, buf in old.items():
            self.bufs[k][:n].copy_(buf[:n])

    def append(self) -> None:
        cap = next(iter(self.bufs.values())).shape[0]
        if self.rows + 1 > cap:
            self._alloc(max(2 * cap, self.rows + 1))
        for buf in self.bufs.values():
            buf[self.rows].zero_()  # a fresh stream: the causal convolutions' zero history
        self.rows += 1

    def keep(self, rows: list[int]) -> None:
        if rows == list(range(self.rows)):
            return
        if rows:
            idx = torch.tensor(rows, device=self.device)
            for buf in self.bufs.values():
                buf[: len(rows)] = buf.index_select(0, idx)
        self.rows = len(rows)

    def decode(self, scaled: torch.Tensor) -> torch.Tensor:
        """Audio [n, samples] of one latent frame [n, D] per row (all rows), updating the caches."""
        n = scaled.shape[0]
        cache = self._cache_cls()
        for k, buf in self.bufs.items():
            layer = self._layer_cls()
            layer.cache = buf[:n]  # a view: the layer's in-place update lands in our buffer
            layer.in_channels, layer.left_pad = self.shapes[k]
            layer.is_initialized = True
            cache.layers[k] = layer
        out = self.decoder(scaled.unsqueeze(-1), padding_cache=cache, use_cache=True)
        return out.audio.reshape(n, -1)


class Batch:
    """The batched state of the active streams; driven by one thread."""

    def __init__(self, loaded: Any, solver: BatchSolver | None = None, compiled: Any = None) -> None:
        self.loaded = loaded
        m = loaded.model
        self.model = m
        self.solver = solver or BatchSolver(loaded.scheduler)
        self.compiled = compiled  # optional compiled callables (see compile.py)
        dev, dtype = loaded.device, loaded.dtype

        def kv(stack: Any) -> PaddedKV:
            c = stack.config
            head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
            return PaddedKV(c.num_hidden_layers, c.num_key_value_heads, head_dim, dev, dtype)

        self.lm = kv(m.language_model)
        self.tts = kv(m.tts_language_model)  # rows 2i (positive) and 2i+1 (negative) of stream i
        self.audio = DecoderCache(m.acoustic_decoder, m.cfg.vae_dim, dev, dtype)
        self.streams: list[Utterance] = []
        h = m.cfg.hidden_size
        self.last = torch.zeros(0, h, device=dev, dtype=dtype)  # [2n, H]: positive/negative last hidden
        self.steps_run = 0

    def __len__(self) -> int:
        return len(self.streams)

    # ------------------------------------------------------------------ membership

    @torch.inference_mode()
    def add(self, u: Utterance) -> None:
        p = u.preset.streams
        self.lm.append(p["lm"].keys, p["lm"].values)
        self.tts.append(p["tts_lm"].keys, p["tts_lm"].values)
        self.tts.append(p["neg_tts_lm"].keys, p["neg_tts_lm"].values)
        self.audio.append()
        new = torch.cat([p["tts_lm"].last_hidden_state[:, -1, :], p["neg_tts_lm"].last_hidden_state[:, -1, :]])
        self.last = torch.cat([self.last, new.to(self.last)])
        self.streams.append(u)

    @torch.inference_mode()
    def drop(self, gone: Callable[[Utterance], bool]) -> list[Utterance]:
        """Remove the streams for which ``gone`` is true (at once); returns them."""
        keep = [i for i, u in enumerate(self.streams) if not gone(u)]
        if len(keep) == len(self.streams):
            return []
        out = [u for i, u in enumerate(self.streams) if i not in set(keep)]
        pairs = [j for i in keep for j in (2 * i, 2 * i + 1)]
        self.lm.keep(keep)
        self.tts.keep(pairs)
        self.audio.keep(keep)
        self.last = self.last.index_select(0, torch.tensor(pairs, device=self.last.device, dtype=torch.long))
        self.streams = [self.streams[i] for i in keep]
        return out

    # ------------------------------------------------------------------ the algorithm

    def _text(self) -> None:
        m = self.model
        max_pos = m.cfg.max_positions
        rows, chunks = [], []
        for i, u in enumerate(self.streams):
            chunk = u.text_ids[u.window * TEXT_WINDOW : (u.window + 1) * TEXT_WINDOW]
            u.window += 1
            if not chunk:
                continue
            if self.tts.lengths[2 * i] + len(chunk) > max_pos:
                u.finish("max_positions")
                continue
            rows.append(i)
            chunks.append(chunk)
        if rows:
            dev = self.loaded.device
            width = max(len(c) for c in chunks)
            valid = [len(c) for c in chunks]
            ids = torch.tensor([c + [0] * (width - len(c)) for c in chunks], dtype=torch.long, device=dev)
            hidden = run_stack(m.language_model, self.lm, rows, m.language_model.embed_tokens(ids), valid)
            types = m.tts_input_types(torch.ones_like(ids))
            hidden = run_stack(m.tts_language_model, self.tts, [2 * r for r in rows], hidden + types, valid)
            last = hidden[torch.arange(len(rows), device=dev), torch.tensor(valid, device=dev) - 1]
            pos_rows = torch.tensor([2 * r for r in rows], device=dev)
            self.last = self.last.index_copy(0, pos_rows, last.to(self.last))
        self.drop(lambda u: u.finished)

    def _speech_step(self) -> None:
        m = self.model
        n = len(self.streams)
        dev, dtype = self.loaded.device, self.loaded.dtype
        vae = m.cfg.vae_dim
        # The reference draws two rows and keeps the first: draw the same to follow a seed exactly.
        noise = torch.cat([torch.randn(2, vae, generator=u.generator)[:1] for u in self.streams]).to(dev, dtype)
        cfg = torch.tensor([u.cfg_scale for u in self.streams], dtype=dtype, device=dev).unsqueeze(1)
        head = self.compiled.head if self.compiled is not None else m.prediction_head
        latents = self.solver.sample(
            head, noise, self.last[0::2], self.last[1::2], cfg, tuple(u.steps for u in self.streams)
        )
        scaled = latents / m.speech_scaling_factor - m.speech_bias_factor
        audio = self.audio.decode(scaled)
        max_pos = m.cfg.max_positions
        for i, u in enumerate(self.streams):
            u.pieces.append(audio[i])
            u.latents += 1
            if self.tts.lengths[2 * i] + 1 > max_pos:
                u.finish("max_positions")
        if any(u.finished for u in self.streams):
            keep = [i for i, u in enumerate(self.streams) if not u.finished]
            latents = latents.index_select(0, torch.tensor(keep, device=dev, dtype=torch.long))
            self.drop(lambda u: u.finished)
            if not self.streams:
                return
        n = len(self.streams)
        embed = m.acoustic_connector(latents).unsqueeze(1).repeat_interleave(2, dim=0)  # [2n, 1, H]
        types = m.tts_input_types(torch.zeros(2 * n, 1, dtype=torch.long, device=dev))
        hidden = run_stack(m.tts_language_model, self.tts, None, embed + types, [1] * (2 * n))
        self.last = hidden[:, -1, :]
        eos = torch.sigmoid(m.tts_eos_classifier(self.last[0::2]))[:, 0].float().cpu().tolist()
        for u, p in zip(self.streams, eos, strict=True):
            if p > 0.5:
                u.finish("eos")
            elif u.latents >= u.max_latents:
                u.finish("budget")
        self.drop(lambda u: u.finished)

    def window(
        self,
        before_step: Callable[[], None] | None = None,
        after_step: Callable[[int, float], None] | None = None,
    ) -> list[Utterance]:
        """One window for every active stream; returns the streams that took part (audio in ``pieces``).

        ``before_step`` runs before each speech step (the runtime drops cancelled streams there);
        ``after_step(batch size, seconds)`` after it (the text phase counts in the first step).
        """
        taking_part = list(self.streams)
        with torch.inference_mode():
            started = time.perf_counter()
            self._text()
            for _ in range(SPEECH_WINDOW):
                if before_step is not None:
                    before_step()
                if not self.streams:
                    break
                size = len(self.streams)
                self.steps_run += 1
                self._speech_step()
                if after_step is not None:
                    now = time.perf_counter()
                    after_step(size, now - started)
                    started = now
                else:
                    started = time.perf_counter()
        return taking_part
