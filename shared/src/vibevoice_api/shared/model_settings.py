"""Settings every model service has: where the weights are, which device, which precision."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, field_validator

from .settings import CommonSettings

C = TypeVar("C")


class ModelServiceSettings(CommonSettings):
    model_dir: Path = Field(
        Path("/models"),
        description="Folder holding VibeVoice-ASR/, VibeVoice-Realtime-0.5B/ and voices/streaming_model/.",
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="auto = bfloat16 on GPU, float32 on CPU."
    )
    attn_implementation: Literal["auto", "sdpa", "flash_attention_2", "eager"] = Field(
        "auto",
        description="auto = flash_attention_2 on an Ampere-to-Hopper GPU in bf16/fp16 when flash-attn imports, "
        "else sdpa.",
    )
    auto_download: bool = Field(
        True,
        description="Download the model from the Hugging Face hub when its folder is empty (unless HF_HUB_OFFLINE=1).",
    )
    warmup: bool = Field(True, description="Run one tiny request at start-up before reporting ready.")
    max_concurrency: int = Field(4, ge=1, le=256, description="Requests worked on at once (batched or interleaved).")
    max_queue: int = Field(32, ge=0, le=10_000, description="Requests waiting beyond max_concurrency before 429.")

    @field_validator("device")
    @classmethod
    def _device(cls, v: str) -> str:
        v = v.strip().lower()
        if v in ("auto", "cpu", "cuda", "mps") or (v.startswith("cuda:") and v[5:].isdigit()):
            return v
        raise ValueError(f"VIBEVOICE_DEVICE must be auto, cpu, cuda or cuda:N (got {v!r})")

    def engine_config(self, config_type: type[C], prefix: str, **explicit: Any) -> C:
        """An engine's config (a dataclass) from these settings: each field from the setting named
        ``prefix + field`` or ``field`` (``asr_min_new_tokens`` → ``min_new_tokens``), ``explicit`` for the
        rest (paths, renamed settings). ``dtype`` auto becomes None (the engine's choice)."""
        names = [f.name for f in dataclasses.fields(config_type)]  # type: ignore[arg-type]
        values: dict[str, Any] = {}
        for name in names:
            setting = next((n for n in (prefix + name, name) if n in type(self).model_fields), None)
            if setting is not None:
                values[name] = getattr(self, setting)
        if values.get("dtype") == "auto":
            values["dtype"] = None
        return config_type(**{**values, **explicit})
