"""Prometheus series of the TTS service (served on /metrics)."""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Gauge, Histogram

FIRST_AUDIO = Histogram(
    "vibevoice_tts_time_to_first_audio_seconds",
    "Request start to first encoded audio bytes",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30),
)
RTF = Histogram(
    "vibevoice_tts_real_time_factor",
    "Generation time / audio duration per request",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5, 10),
)
ACTIVE = Gauge("vibevoice_tts_active_streams", "Speech streams being generated")
QUEUE_DEPTH = Gauge("vibevoice_tts_queue_depth", "Speech requests waiting for the engine")
CHARS = Counter("vibevoice_tts_input_characters_total", "Characters synthesized")
AUDIO_SECONDS = Counter("vibevoice_tts_audio_seconds_total", "Seconds of audio produced")


def update_gauges(engine: Any) -> None:
    try:
        stats = engine.stats()
    except Exception:  # noqa: BLE001 - metrics never fail a request
        return
    QUEUE_DEPTH.set(stats.get("queue_depth", 0))
