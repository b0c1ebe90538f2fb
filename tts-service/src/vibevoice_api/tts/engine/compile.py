"""An optional compiled engine step (``VIBEVOICE_TTS_COMPILE``): ``torch.compile`` of the diffusion head.

The diffusion head runs ``steps`` times per speech latent over all streams × {positive, negative}
rows: on a GPU it is a chain of small kernels whose launch cost dominates at small batches. It is
compiled with dynamic batch size, so streams joining and leaving do not recompile it. The attention
stacks and the streaming decoder stay eager (their caches change shape as streams come and go).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class Compiled:
    head: Any


def compile_parts(loaded: Any) -> Compiled:
    import torch

    mode = "max-autotune-no-cudagraphs" if loaded.device.type == "cuda" else "default"
    head = torch.compile(loaded.model.prediction_head, dynamic=True, mode=mode)
    return Compiled(head=head)
