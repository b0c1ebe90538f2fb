"""TTS service settings (``VIBEVOICE_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from vibevoice_api.shared.identity import ModelIdentity, from_settings
from vibevoice_api.shared.model_names import parse_patterns
from vibevoice_api.shared.model_settings import ModelServiceSettings
from vibevoice_api.shared.settings import JsonDict

#: OpenAI voice names → VibeVoice presets (documented in README; override with VIBEVOICE_TTS_VOICE_MAP).
DEFAULT_VOICE_MAP: dict[str, str] = {
    "alloy": "en-Emma_woman",
    "ash": "en-Davis_man",
    "ballad": "en-Frank_man",
    "coral": "en-Grace_woman",
    "echo": "en-Carter_man",
    "fable": "en-Mike_man",
    "nova": "en-Grace_woman",
    "onyx": "en-Frank_man",
    "sage": "en-Emma_woman",
    "shimmer": "en-Grace_woman",
    "verse": "en-Mike_man",
    "marin": "en-Emma_woman",
    "cedar": "en-Carter_man",
}


class TTSSettings(ModelServiceSettings):
    tts_model_id: str = Field("vibevoice-realtime", description="Model id served on /v1/models.")
    tts_model_subdir: str = Field("VibeVoice-Realtime-0.5B", description="Folder under VIBEVOICE_MODEL_DIR.")
    tts_voices_dir: Path | None = Field(None, description="Voice presets (default: MODEL_DIR/voices/streaming_model).")
    tts_hf_repo: str = Field("microsoft/VibeVoice-Realtime-0.5B", description="Hub repo downloaded when empty.")
    tts_tokenizer_repo: str = Field("Qwen/Qwen2.5-0.5B", description="Hub repo of the text tokenizer files.")
    tts_aliases: str = Field("tts-1,tts-1-hd,gpt-4o-mini-tts", description="Other accepted model names.")
    tts_model_patterns: str = Field(
        "tts-*,gpt-*tts*",
        description="Model-name patterns also accepted for speech (comma-separated, * and ? wildcards, "
        "case-insensitive): OpenAI's speech names, dated or not (gpt-4o-mini-tts-2025-12-15, ...).",
    )
    tts_realtime_model_patterns: str = Field(
        "gpt-realtime*,gpt-4o*-realtime*",
        description="Model-name patterns also accepted on the /v1/realtime WebSocket (gpt-realtime-2.1-mini, ...).",
    )
    tts_default_voice: str = Field("en-Carter_man", description="Voice when a request names none.")
    tts_voice_map: JsonDict = Field(
        default_factory=lambda: dict(DEFAULT_VOICE_MAP), description="JSON: OpenAI voice name → preset."
    )
    tts_max_input_chars: int = Field(4096, ge=1, le=1_000_000, description="Longest accepted input text.")
    tts_cfg_scale: float = Field(1.5, gt=0, le=10, description="Classifier-free guidance scale.")
    tts_steps: int = Field(5, ge=1, le=100, description="Diffusion steps per speech latent.")
    max_upload_mb: float = Field(8.0, gt=0, description="Largest accepted request body, in MiB.")
    tts_latents_per_token: float = Field(
        8.0, gt=0, description="Generation budget: speech latents (7.5 per second) per text token, a runaway guard."
    )
    tts_min_latents: int = Field(30, ge=1, description="Generation budget floor, in speech latents.")
    tts_max_piece_tokens: int = Field(400, ge=16, description="Longer input is split at sentence ends into pieces.")
    tts_realtime_enabled: bool = Field(True, description="Serve the /v1/realtime WebSocket.")
    tts_compile: bool = Field(
        False, description="torch.compile the diffusion head of the batched engine step (GPU; slower start)."
    )

    @property
    def tts_model_path(self) -> Path:
        return self.model_dir / self.tts_model_subdir

    @property
    def voices_path(self) -> Path:
        return self.tts_voices_dir or self.model_dir / "voices" / "streaming_model"

    @property
    def identity(self) -> ModelIdentity:
        return from_settings(self.tts_model_id, "VibeVoice-Realtime-0.5B", self.tts_aliases, self.tts_model_patterns)

    @property
    def realtime_identity(self) -> ModelIdentity:
        """The names the realtime WebSocket answers to: the speech names plus the realtime ones."""
        speech = self.identity
        return ModelIdentity(
            speech.id,
            speech.display_name,
            speech.aliases,
            speech.patterns + parse_patterns(self.tts_realtime_model_patterns),
        )
