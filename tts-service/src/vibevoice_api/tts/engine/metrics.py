"""Prometheus metrics of the batched speech engine (module-level, on the default registry)."""

from __future__ import annotations

from prometheus_client import Gauge, Histogram

BATCH_STREAMS = Gauge("vibevoice_tts_batch_streams", "Speech streams in the engine's batch (generating now)")
BATCH_SIZE = Histogram(
    "vibevoice_tts_batch_size",
    "Streams advanced together per engine step",
    buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64),
)
STEP_SECONDS = Histogram(
    "vibevoice_tts_step_seconds",
    "Duration of one engine step (one speech latent for every stream in the batch)",
    buckets=(0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2, 2.5, 5),
)
ENGINE_FIRST_AUDIO = Histogram(
    "vibevoice_tts_engine_time_to_first_audio_seconds",
    "From a request entering the engine (queue included) to its first audio chunk",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
