"""vLLM general plugin for serving VibeVoice-ASR (transformers layout) on stock vLLM.

Found by vLLM through the ``vllm.general_plugins`` entry point of the ``.dist-info`` folder beside this
file: put this folder on ``PYTHONPATH`` (no install needed). Two small adjustments, both idempotent:

- The audio encoders are used deterministically, as our transformers backend uses them (no Gaussian
  noise added to the acoustic latents; transformers before 5.21 always adds it), so both backends hear
  the same audio features.
- On CPU, vLLM's oneDNN matmul needs a row-contiguous input; the audio encoder hands it a transposed
  view. The input is made contiguous first (CPU builds only; GPU kernels are untouched).
"""

from __future__ import annotations

import functools
import inspect

_DONE = False


def register() -> None:
    global _DONE
    if _DONE:
        return
    _DONE = True
    _deterministic_audio_features()
    _contiguous_onednn_input()


def _deterministic_audio_features() -> None:
    try:
        from transformers.models.vibevoice_asr import modeling_vibevoice_asr as m
    except ImportError:  # a transformers without VibeVoice-ASR: nothing to adjust
        return
    original = m.VibeVoiceAsrModel.get_audio_features
    if getattr(original, "_vibevoice_deterministic", False):
        return

    @functools.wraps(original)
    def get_audio_features(self, *args, **kwargs):
        # transformers < 5.21 always adds the noise (no `sample` argument): a zero scale removes it in any version.
        if "sample" in inspect.signature(original).parameters:
            kwargs["sample"] = False
        enc = self.config.acoustic_tokenizer_encoder_config
        saved, enc.vae_std = enc.vae_std, 0.0
        try:
            return original(self, *args, **kwargs)
        finally:
            enc.vae_std = saved

    get_audio_features._vibevoice_deterministic = True
    m.VibeVoiceAsrModel.get_audio_features = get_audio_features


def _contiguous_onednn_input() -> None:
    try:
        from vllm import _custom_ops as ops
    except ImportError:
        return
    original = getattr(ops, "onednn_mm", None)
    if original is None or getattr(original, "_vibevoice_contiguous", False):
        return

    @functools.wraps(original)
    def onednn_mm(handler, x, bias):
        return original(handler, x.contiguous(), bias)

    onednn_mm._vibevoice_contiguous = True
    ops.onednn_mm = onednn_mm
