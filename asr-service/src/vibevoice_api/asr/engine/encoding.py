"""Audio → audio embeddings the way VibeVoice-ASR was trained: each recording at its own length.

transformers' feature extractor zero-pads every recording to a multiple of the encoders' hop (3200
samples) and to the longest one in the batch, and its causal convolutions pad only on the left. Microsoft's
code (which trained the model) encodes the recording as it is and lets every strided convolution pad its
own input on the right up to a whole number of strides. The two agree on every audio frame but the last
(whose window reaches past the end of the recording): there transformers' encoders read their own outputs
on padding samples where Microsoft's read zeros. So the last audio token of almost every upload differs
from training unless we encode the Microsoft way, which :func:`audio_features` does.

:func:`use_reference_encoding` installs it on a loaded ``VibeVoiceAsrForConditionalGeneration`` (both
checkpoint layouts load into that class), so ``generate`` and a plain forward use it; the processor's
``padding_mask`` tells each row's true length. Any server that runs this model class (e.g. vLLM's
Transformers backend) can install it the same way.
"""

from __future__ import annotations

import types
from typing import Any


def strided_right_pad(length: int, stride: int) -> int:
    """Zeros a causal convolution of ``stride`` appends so that it emits ceil(length / stride) frames."""
    return -length % stride


def _encode(encoder: Any, samples: Any, chunk: int) -> Any:
    """Latents [1, frames, dim] of one recording [1, 1, n]; ``chunk`` samples at a time with a carried
    convolution cache (identical to one pass), the right padding applied to the final piece only."""
    import torch
    from torch.nn import functional as F

    n = samples.shape[-1]
    cache = None
    out = []
    for start in range(0, n, chunk):
        piece = samples[..., start : start + chunk]
        final = start + chunk >= n
        if cache is None:
            from transformers.models.vibevoice_acoustic_tokenizer.modeling_vibevoice_acoustic_tokenizer import (
                VibeVoiceAcousticTokenizerConv1dPaddingCache,
            )

            cache = VibeVoiceAcousticTokenizerConv1dPaddingCache()
        hidden = encoder.stem(piece, padding_cache=cache)
        for layer in encoder.conv_layers:
            if final:
                hidden = F.pad(hidden, (0, strided_right_pad(hidden.shape[-1], layer.conv.conv.stride[0])))
            hidden = layer(hidden, padding_cache=cache)
        hidden = encoder.head(hidden, padding_cache=cache)
        out.append(hidden.permute(0, 2, 1))
    return torch.cat(out, dim=1)


def audio_features(self: Any, input_values: Any, padding_mask: Any = None, sample: bool = True, **kwargs: Any) -> Any:
    """Drop-in for ``VibeVoiceAsrModel.get_audio_features`` that encodes each row at its true length.

    ``pooler_output`` is the projected embeddings: one row per audio token of every recording, in batch
    order (with ``padding_mask``), or [batch, tokens, hidden] without it (all rows then count as full).
    """
    import torch
    from transformers.modeling_outputs import BaseModelOutputWithPooling

    cfg = self.config
    hop = cfg.acoustic_tokenizer_encoder_config.hop_length
    chunk = max(hop, cfg.acoustic_tokenizer_chunk_size // hop * hop)
    values = input_values if input_values.dim() == 3 else input_values.unsqueeze(1)
    lengths = (
        padding_mask.reshape(values.shape[0], -1).sum(dim=-1).tolist()
        if padding_mask is not None
        else [values.shape[-1]] * values.shape[0]
    )
    acoustic_rows, features = [], []
    with torch.no_grad():
        for row, n in enumerate(lengths):
            samples = values[row : row + 1, :, : max(1, int(n))]
            acoustic = _encode(self.acoustic_tokenizer_encoder, samples, chunk)
            semantic = _encode(self.semantic_tokenizer_encoder, samples, chunk)
            if sample:  # σ-VAE noise, one scale per recording (as transformers and Microsoft draw it)
                scale = cfg.acoustic_tokenizer_encoder_config.vae_std * torch.randn(
                    1, device=acoustic.device, dtype=acoustic.dtype
                )
                acoustic = acoustic + scale * torch.randn_like(acoustic)
            acoustic_rows.append(acoustic[0])
            features.append((acoustic, semantic))
    projected = [self.multi_modal_projector(a, s)[0] for a, s in features]
    pooled = torch.cat(projected, dim=0) if padding_mask is not None else torch.stack(projected, dim=0)
    latents = torch.nn.utils.rnn.pad_sequence(acoustic_rows, batch_first=True)
    return BaseModelOutputWithPooling(last_hidden_state=latents, pooler_output=pooled)


def use_reference_encoding(model: Any) -> Any:
    """Make a loaded ``VibeVoiceAsrForConditionalGeneration`` (or its inner ``VibeVoiceAsrModel``) encode
    audio as Microsoft's code does. Returns the model."""
    inner = getattr(model, "model", model)
    inner.get_audio_features = types.MethodType(audio_features, inner)
    return model
