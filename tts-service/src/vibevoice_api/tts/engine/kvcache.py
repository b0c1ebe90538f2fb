"""Key/value caches of many streams of different lengths, and the batched Qwen2 stack call over them.

One :class:`PaddedKV` holds one Qwen2 stack's cache for every row of a batch: per layer a zeroed
``[row capacity, kv_heads, position capacity, head_dim]`` buffer, and each row's own length. Rows are
kept compact (row ``i`` is the ``i``-th stream of the batch); a stream that leaves is squeezed out,
one that joins is written after the last row. :func:`run_stack` feeds new tokens to some or all rows
at once: each row's new keys/values are written at its own length, and an additive mask lets query
``i`` of a row see exactly that row's ``length + i + 1`` first positions, so a row computes what it
would compute alone (rows padded to a common number of new tokens write padding that no real query
sees and that their next tokens overwrite).

The transformers Qwen2 decoder layers are called as they are; only their ``cache`` is ours.
"""

from __future__ import annotations

from typing import Any

import torch

BLOCK = 256  # positions are allocated in blocks of this many


class PaddedKV:
    def __init__(self, layers: int, kv_heads: int, head_dim: int, device: Any, dtype: torch.dtype) -> None:
        self.layers, self.kv_heads, self.head_dim = layers, kv_heads, head_dim
        self.device, self.dtype = device, dtype
        self.lengths: list[int] = []
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self._alloc(0, 0)

    @property
    def rows(self) -> int:
        return len(self.lengths)

    @property
    def row_capacity(self) -> int:
        return int(self.keys[0].shape[0])

    @property
    def capacity(self) -> int:
        return int(self.keys[0].shape[2])

    def _alloc(self, rows: int, positions: int) -> None:
        shape = (rows, self.kv_heads, positions, self.head_dim)
        old_k, old_v = self.keys, self.values
        self.keys = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(self.layers)]
        self.values = [torch.zeros(shape, device=self.device, dtype=self.dtype) for _ in range(self.layers)]
        if old_k and self.rows:
            n, p = self.rows, min(old_k[0].shape[2], positions)
            for new, old in zip(self.keys + self.values, old_k + old_v, strict=True):
                new[:n, :, :p].copy_(old[:n, :, :p])

    def reserve(self, rows: int, positions: int) -> None:
        """Make room for ``rows`` rows of ``positions`` positions (grows by doubling rows / whole blocks)."""
        r, p = self.row_capacity, self.capacity
        if rows <= r and positions <= p:
            return
        new_r = max(rows, r * 2 if rows > r else r, 1)
        new_p = max(p, -(-positions // BLOCK) * BLOCK)
        self._alloc(new_r, new_p)

    def append(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        """A new last row holding a prefilled cache (per layer [1, kv_heads, T, head_dim])."""
        t = int(keys[0].shape[2])
        self.reserve(self.rows + 1, t)
        row = self.rows
        for buf, src in zip(self.keys + self.values, list(keys) + list(values), strict=True):
            buf[row, :, :t].copy_(src[0])
            buf[row, :, t:].zero_()
        self.lengths.append(t)

    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows`` (in this order) as rows 0..len(rows)-1."""
        if rows == list(range(self.rows)):
            return
        if rows:
            idx = torch.tensor(rows, device=self.device)
            for buf in self.keys + self.values:
                buf[: len(rows)] = buf.index_select(0, idx)
        self.lengths = [self.lengths[r] for r in rows]


class _Writer:
    """The ``cache`` the Qwen2 attention layers see: writes new keys/values, returns the rows' caches."""

    def __init__(self, kv: PaddedKV, idx: torch.Tensor | None, rows: torch.Tensor, pos: torch.Tensor, span: int):
        self.kv, self.idx, self.rows, self.pos, self.span = kv, idx, rows, pos, span

    def update(self, key: torch.Tensor, value: torch.Tensor, layer: int, *args: Any, **kwargs: Any) -> Any:
        k_buf, v_buf = self.kv.keys[layer], self.kv.values[layer]
        r = self.rows.unsqueeze(1)
        k_buf[r, :, self.pos] = key.transpose(1, 2).to(k_buf.dtype)
        v_buf[r, :, self.pos] = value.transpose(1, 2).to(v_buf.dtype)
        if self.idx is None:
            n = key.shape[0]
            return k_buf[:n, :, : self.span], v_buf[:n, :, : self.span]
        return k_buf[self.idx, :, : self.span], v_buf[self.idx, :, : self.span]


def run_stack(stack: Any, kv: PaddedKV, rows: list[int] | None, embeds: torch.Tensor, valid: list[int]) -> torch.Tensor:
    """Hidden states [m, L, H] of ``embeds`` [m, L, H] fed to ``rows`` (None: all rows, in order).

    ``valid[i]`` of row ``i``'s ``L`` inputs are real (the rest is padding); its length grows by that.
    """
    dev = embeds.device
    every = rows is None
    rows = list(range(kv.rows)) if rows is None else rows
    m, n_new = embeds.shape[0], embeds.shape[1]
    lengths = [kv.lengths[r] for r in rows]
    span = max(lengths) + n_new
    kv.reserve(kv.rows, span)
    base = torch.tensor(lengths, device=dev)
    offsets = torch.arange(n_new, device=dev)
    pos = base.unsqueeze(1) + offsets.unsqueeze(0)  # [m, L]
    allowed = torch.arange(span, device=dev).view(1, 1, span) <= pos.unsqueeze(2)  # [m, L, span]
    mask = torch.zeros(allowed.shape, dtype=embeds.dtype, device=dev)
    mask.masked_fill_(~allowed, torch.finfo(embeds.dtype).min)
    mask = mask.unsqueeze(1)  # [m, 1, L, span]
    cos_sin = stack.rotary_emb(embeds, pos)
    row_t = torch.tensor(rows, device=dev)
    writer = _Writer(kv, None if every else row_t, row_t, pos, span)
    hidden = embeds
    for layer in stack.layers:
        hidden = layer(hidden, attention_mask=mask, position_embeddings=cos_sin, cache=writer)
    hidden = stack.norm(hidden)
    for i, r in enumerate(rows):
        kv.lengths[r] += valid[i]
    assert m == len(rows)
    return hidden
