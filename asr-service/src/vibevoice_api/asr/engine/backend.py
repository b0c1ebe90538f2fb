"""What the engine asks of whatever generates tokens: transformers in this process, or a vLLM server.

The engine owns everything around generation (prompt, duration, budgets, segment parsing, loop recovery,
long-form splitting, cancellation); a backend only turns rows of ``(prompt text, audio)`` into tokens.
Each new token reaches the engine at once through a :class:`TokenSink` with its id and the model's
log-probability for it, and the backend stops a row as soon as the sink says so (client gone, loop,
token budget).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

DURATION_PLACEHOLDER = "<|AUDIO_DURATION|>"


def fill_duration(prompt: str, seconds: float) -> str:
    """The prompt with its duration placeholder written out the way the model was trained (two decimals)."""
    return prompt.replace(DURATION_PLACEHOLDER, f"{seconds:.2f}")


@dataclass(frozen=True)
class GenerationRequest:
    """One row: the full text before the answer (audio placeholder once, duration filled in), its audio."""

    prompt: str
    audio: np.ndarray  # mono float32 at the model's sample rate
    max_new_tokens: int
    temperature: float = 0.0
    top_p: float | None = None
    seed: int | None = None


@dataclass(frozen=True)
class TokenStep:
    token_id: int
    logprob: float | None  # natural log of the model's probability for the token (before sampling settings)


class TokenSink(Protocol):
    def token(self, row: int, token_id: int, logprob: float | None) -> None:
        """A new token of ``row`` (end-of-turn tokens included)."""

    def stopped(self, row: int) -> bool:
        """Whether ``row`` must stop now (the backend stops it at its next step)."""


@runtime_checkable
class GenerationBackend(Protocol):
    name: str  # "transformers" or "vllm"
    tokenizer: Any  # decodes the token ids (a transformers tokenizer of the checkpoint)
    eos_ids: set[int]
    rows_per_call: int  # how many rows one ``generate`` call takes
    workers: int  # ``generate`` calls the engine may run at once

    def generate(self, rows: Sequence[GenerationRequest], sink: TokenSink) -> None:
        """Generate every row to its end (an end-of-turn token, its budget, or ``sink.stopped``); blocks."""

    def close(self) -> None: ...
