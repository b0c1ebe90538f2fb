"""The TTS service app: OpenAI ``POST /v1/audio/speech`` (+ realtime WebSocket) on VibeVoice-Realtime.

``build_app`` only wires: the shared app shell, the model holder (``app.state.holder``), the routes
in ``routes/`` and the shared discovery routes.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import FastAPI
from vibevoice_api.shared.model_app import Service, create_model_app

from .routes import realtime, speech, voices
from .settings import TTSSettings

TTS = Service("tts", "VibeVoice-Realtime-0.5B behind the OpenAI speech API, streaming.", ("/v1/audio/speech",))


def load_engine(settings: TTSSettings) -> Any:
    from vibevoice_api.shared.download import TOKENIZER_FILES, ensure_snapshot

    from .engine import EngineConfig, TTSEngine

    path = settings.tts_model_path
    ensure_snapshot(path, settings.tts_hf_repo, allow_download=settings.auto_download, what="VibeVoice-Realtime-0.5B")
    if not any((d / f).is_file() for d in (path, path / "tokenizer") for f in ("tokenizer.json", "vocab.json")):
        ensure_snapshot(
            path / "tokenizer",
            settings.tts_tokenizer_repo,
            allow_download=settings.auto_download,
            what="Qwen2.5 tokenizer",
            patterns=TOKENIZER_FILES,
        )
    cfg = settings.engine_config(
        EngineConfig, "tts_", model_dir=path, voices_dir=settings.voices_path, ddpm_steps=settings.tts_steps
    )
    return TTSEngine.load(cfg)


def build_app(settings: TTSSettings | None = None, engine: Any = None) -> FastAPI:
    settings = settings or TTSSettings()
    routers = [speech.router, voices.router] + ([realtime.router] if settings.tts_realtime_enabled else [])
    return create_model_app(TTS, settings, settings.identity, partial(load_engine, settings), engine, routers)
