"""An optional compiled engine step (``VIBEVOICE_TTS_COMPILE``): ``torch.compile`` of the diffusion head.

The diffusion head runs ``steps`` times per speech latent over all streams × {positive, negative}
rows: on a GPU it is a chain of small kernels whose launch cost dominates at small batches. It is
compiled with dynamic batch size, so streams joining and leaving do not recompile it. The attention
stacks and the streaming decoder stay eager (their caches change shape as streams come and go).

Proven equal to the eager step on the CPU (tests/tts_engine/test_batching.py). What a GPU run should try
next: CUDA graphs of the whole speech step (TTS LM over both branches, head × steps, decoder) with the
batch padded to a few row counts (1, 2, 4, 8, 16) and the caches' position capacity fixed per graph —
:class:`~.kvcache.PaddedKV` already grows rows by doubling and positions in blocks of 256, the shapes such
graphs would be captured for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Compiled:
    head: Any


def compile_parts(loaded: Any) -> Compiled:
    import torch

    head = torch.compile(loaded.model.prediction_head, dynamic=True)
    return Compiled(head=head)
