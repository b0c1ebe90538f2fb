"""How much audio one ``generate`` call may carry, from the GPU memory left after loading (pure).

A padded batch costs its row count times its longest row: every row is padded to the longest audio and
prompt. Generation memory (encoder activations, KV cache, attention masks) grows with that padded audio;
VibeVoice-ASR users report about 22 GB for the loaded model, 27 GB at 30 minutes and 34 GB at 60 minutes of
audio in one pass (bf16, sdpa), i.e. about 3.4 MiB per second of audio. The budget takes 3.5 MiB per padded
second and keeps 2 GiB aside for the CUDA context and fragmentation. One upload's pieces are never longer
than the budget either, so nothing the engine builds is bigger than what fits.
"""

from __future__ import annotations

from collections.abc import Sequence

MIB = 1024**2
GIB = 1024**3
BYTES_PER_AUDIO_SECOND = 3.5 * MIB
RESERVE_BYTES = 2 * GIB
MIN_BUDGET_SECONDS = 30.0
MODEL_BYTES = 17.5 * GIB  # VibeVoice-ASR in bf16 plus the CUDA context: for the table of limits only


def audio_budget_seconds(free_bytes: float) -> float:
    """Padded seconds of audio one call may carry with ``free_bytes`` of GPU memory left after loading."""
    return max(MIN_BUDGET_SECONDS, (free_bytes - RESERVE_BYTES) / BYTES_PER_AUDIO_SECOND)


def padded_seconds(durations: Sequence[float]) -> float:
    """What a batch of these rows costs: every row padded to the longest."""
    return len(durations) * max(durations, default=0.0)


def fits(batch: Sequence[float], candidate: float, budget: float | None, max_size: int) -> bool:
    """Whether a row of ``candidate`` seconds may join ``batch`` (durations) within the budget and count."""
    if len(batch) >= max_size:
        return False
    return budget is None or not batch or padded_seconds([*batch, candidate]) <= budget


def limits_table(gpu_gib: Sequence[int] = (24, 40, 48, 80, 96, 141), batch_size: int = 4) -> list[str]:
    """Markdown rows of the default limits per GPU size with the default batch size (deploy/README.md)."""
    rows = [
        "| GPU memory | audio per call | longest single pass | 60-min uploads at once | 10-min uploads at once |",
        "|---|---|---|---|---|",
    ]
    for gib in gpu_gib:
        budget = audio_budget_seconds(gib * GIB - MODEL_BYTES)
        hours = min(batch_size, int(budget // 3600)) or f"1, in {budget / 60:.0f}-min pieces"
        rows.append(
            f"| {gib} GB | {budget / 60:.0f} min | {min(3600.0, budget) / 60:.0f} min | {hours} "
            f"| {min(batch_size, int(budget // 600))} |"
        )
    return rows
