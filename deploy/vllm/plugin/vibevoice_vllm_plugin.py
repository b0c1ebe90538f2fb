"""vLLM general plugin for serving VibeVoice-ASR (transformers layout) on stock vLLM.

Found by vLLM through the ``vllm.general_plugins`` entry point of the ``.dist-info`` folder beside this
file: put this folder on ``PYTHONPATH`` (no install needed). Two small adjustments, both idempotent:

- Audio is encoded exactly as our transformers backend encodes it: each recording at its own length the
  way Microsoft's code does (``audio_features`` of ``asr/engine/encoding.py``, loaded from the file named by
  ``ASR_ENCODING_PY``), without the σ-VAE noise (transformers before 5.21 always adds it). Without
  that file, transformers' own encoding is used, still without the noise.
- On CPU, vLLM's oneDNN matmul needs a row-contiguous input; the audio encoder hands it a transposed
  view. The input is made contiguous first (CPU builds only; GPU kernels are untouched).
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import logging
import os
from typing import Any

_DONE = False
log = logging.getLogger("vibevoice_vllm_plugin")


def register() -> None:
    global _DONE
    if _DONE:
        return
    _DONE = True
    _deterministic_audio_features()
    _contiguous_onednn_input()


def _reference_encoding() -> Any:
    """``audio_features`` of vibevoice-api's ``asr/engine/encoding.py`` (the file named by
    ``ASR_ENCODING_PY``), or None when it is not provided."""
    path = os.environ.get("ASR_ENCODING_PY", "")
    if not path or not os.path.isfile(path):
        log.warning("ASR_ENCODING_PY not set or missing: audio is encoded the transformers way")
        return None
    spec = importlib.util.spec_from_file_location("vibevoice_encoding", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.audio_features


def _deterministic_audio_features() -> None:
    try:
        from transformers.models.vibevoice_asr import modeling_vibevoice_asr as m
    except ImportError:  # a transformers without VibeVoice-ASR: nothing to adjust
        return
    original = m.VibeVoiceAsrModel.get_audio_features
    if getattr(original, "_vibevoice_deterministic", False):
        return
    reference = _reference_encoding()

    @functools.wraps(original)
    def get_audio_features(self, *args, **kwargs):
        mask = kwargs.get("padding_mask")
        if isinstance(mask, (list, tuple)):  # vLLM hands audios of different lengths over one by one, as lists
            import torch

            kwargs["padding_mask"] = torch.stack([torch.as_tensor(m).reshape(-1) for m in mask])
        if reference is not None:
            kwargs.pop("sample", None)
            kwargs.pop("acoustic_tokenizer_chunk_size", None)
            return reference(self, *args, sample=False, **kwargs)
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
