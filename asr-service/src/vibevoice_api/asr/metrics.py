"""Prometheus series of the ASR service (served on /metrics)."""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import Counter, Gauge, Histogram

QUEUE_DEPTH = Gauge("vibevoice_asr_queue_depth", "Requests waiting for the model")
ACTIVE = Gauge("vibevoice_asr_active_requests", "Requests being transcribed")
BATCH_SIZE = Histogram(
    "vibevoice_asr_batch_size", "Requests per generate call", buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32, 64)
)
AUDIO_SECONDS = Counter("vibevoice_asr_audio_seconds_total", "Seconds of audio transcribed")
RTF = Histogram(
    "vibevoice_asr_real_time_factor",
    "Processing time / audio duration per request",
    buckets=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
LOOPS = Counter(
    "vibevoice_asr_repetition_loops_total",
    "Transcriptions caught repeating themselves, by outcome",
    ["outcome"],
)
for _outcome in ("retried", "cut"):
    LOOPS.labels(_outcome)  # both series exist (at 0) before the first loop
DECODE_SECONDS = Histogram("vibevoice_asr_decode_seconds", "Time to decode and resample an upload")


def update_gauges(engine: Any) -> None:
    try:
        stats = engine.stats()
    except Exception:  # noqa: BLE001 - metrics must never fail a request
        return
    QUEUE_DEPTH.set(stats.get("queue_depth", 0))


def account(duration: float, started: float) -> None:
    """One finished transcription: its audio seconds and real-time factor."""
    AUDIO_SECONDS.inc(duration)
    if duration > 0:
        RTF.observe((time.perf_counter() - started) / duration)
