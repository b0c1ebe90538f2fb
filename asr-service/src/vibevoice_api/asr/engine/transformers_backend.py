"""Generation with transformers' ``generate`` in this process: rows padded into one batch."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from .backend import GenerationRequest, TokenSink


def eos_ids(tokenizer: Any, generation_eos: Any = None) -> set[int]:
    """End-of-turn ids: the checkpoint's generation config plus Qwen's ``<|im_end|>`` / ``<|endoftext|>``."""
    ids = generation_eos if isinstance(generation_eos, list) else [generation_eos] if generation_eos is not None else []
    eos = {int(i) for i in ids}
    for t in ("<|im_end|>", "<|endoftext|>"):
        i = tokenizer.convert_tokens_to_ids(t)
        if isinstance(i, int) and i >= 0:
            eos.add(i)
    return eos


class TransformersBackend:
    name = "transformers"
    workers = 1

    def __init__(self, loaded: Any, rows_per_call: int = 4) -> None:
        self.loaded = loaded
        self.rows_per_call = rows_per_call
        self.tokenizer = loaded.tokenizer
        self.tokenizer.padding_side = "left"
        gc = loaded.model.generation_config
        self.eos_ids = eos_ids(self.tokenizer, gc.eos_token_id)
        self._pad = gc.pad_token_id
        if self._pad is None:
            self._pad = self.tokenizer.convert_tokens_to_ids("<|image_pad|>")

    def generate(self, rows: Sequence[GenerationRequest], sink: TokenSink) -> None:
        import torch
        from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList

        lo = self.loaded
        inputs = lo.processor(
            text=[r.prompt for r in rows], audio=[r.audio for r in rows], return_tensors="pt", padding=True
        )
        inputs = {k: (v.to(lo.device) if hasattr(v, "to") else v) for k, v in inputs.items()}
        if "input_values" in inputs and inputs["input_values"].is_floating_point():
            inputs["input_values"] = inputs["input_values"].to(lo.dtype)
        n = len(rows)
        # Custom processors run before the sampling warpers: these are the model's own log-probabilities.
        steps: collections.deque[Any] = collections.deque(maxlen=4)

        class Record(LogitsProcessor):
            def __call__(self, input_ids: Any, scores: Any) -> Any:
                steps.append(torch.log_softmax(scores.float(), dim=-1).cpu())
                return scores

        class Stream:
            prompt_seen = False

            def put(self, value: Any) -> None:
                if not self.prompt_seen:
                    self.prompt_seen = True  # the first call carries the prompt
                    return
                logp = steps.popleft() if steps else None
                for row, tid in enumerate(value.reshape(n, -1)[:, -1].tolist()):
                    if not sink.stopped(row):
                        sink.token(row, tid, float(logp[row, tid]) if logp is not None else None)

            def end(self) -> None:
                pass

        class StopRows(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                return torch.tensor([sink.stopped(row) for row in range(n)], device=input_ids.device)

        first = rows[0]
        sampling: dict[str, Any] = {"do_sample": False}
        if first.temperature > 0:
            sampling = {
                "do_sample": True,
                "temperature": first.temperature,
                **({"top_p": first.top_p} if first.top_p else {}),
            }
        if first.seed is not None:
            torch.manual_seed(first.seed)
        with torch.inference_mode():
            lo.model.generate(
                **inputs,
                max_new_tokens=max(r.max_new_tokens for r in rows),
                streamer=Stream(),
                sample=False,  # the audio encoders without the σ-VAE noise: the same audio, the same tokens
                logits_processor=LogitsProcessorList([Record()]),
                stopping_criteria=StoppingCriteriaList([StopRows()]),
                pad_token_id=self._pad,
                eos_token_id=sorted(self.eos_ids),
                **sampling,
            )

    def close(self) -> None:
        pass
