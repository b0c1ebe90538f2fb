"""ASR service settings (``VIBEVOICE_*`` environment variables)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from vibevoice_api.shared.identity import ModelIdentity, from_settings
from vibevoice_api.shared.model_settings import ModelServiceSettings


class ASRSettings(ModelServiceSettings):
    asr_model_id: str = Field("vibevoice-asr", description="Model id served on /v1/models.")
    asr_model_subdir: str = Field(
        "VibeVoice-ASR", description="Folder under VIBEVOICE_MODEL_DIR holding the checkpoint."
    )
    asr_hf_repo: str = Field("microsoft/VibeVoice-ASR-HF", description="Hub repo downloaded when the folder is empty.")
    asr_aliases: str = Field(
        "whisper-1,gpt-4o-transcribe,gpt-4o-mini-transcribe,gpt-4o-transcribe-diarize",
        description="Other model names accepted on this service (comma-separated).",
    )
    asr_backend: Literal["transformers", "vllm"] = Field(
        "transformers",
        description="Who generates: transformers in this process, or a vLLM server at VIBEVOICE_ASR_VLLM_URL "
        "(continuous batching; everything else stays here).",
    )
    asr_vllm_url: str = Field(
        "http://127.0.0.1:8000", description="Base URL of the vLLM server (VIBEVOICE_ASR_BACKEND=vllm)."
    )
    asr_vllm_model: str = Field(
        "vibevoice-asr", description="Model name the vLLM server serves (its --served-model-name)."
    )
    asr_vllm_api_key: str | None = Field(None, description="API key of the vLLM server (its --api-key), if any.")
    asr_vllm_max_concurrency: int = Field(
        64, ge=1, le=1024, description="Transcription passes in flight at the vLLM server at once (its --max-num-seqs)."
    )
    asr_model_patterns: str = Field(
        "whisper-*,gpt-*transcribe*",
        description="Model-name patterns also accepted (comma-separated, * and ? wildcards, case-insensitive): "
        "OpenAI's transcription names, dated or not (gpt-transcribe, gpt-4o-mini-transcribe-2025-12-15, ...).",
    )
    asr_max_batch_size: int = Field(4, ge=1, le=64, description="Requests padded into one generate call.")
    asr_batch_audio_seconds: float | None = Field(
        None,
        gt=0,
        description="Padded seconds of audio one generate call may carry (rows x longest row); also the longest "
        "single pass. Unset: derived from the GPU memory free after loading (logged; see deploy/README.md).",
    )
    asr_max_batch_wait_ms: float = Field(50.0, ge=0, le=5000, description="How long a batch waits to fill.")
    asr_max_single_pass_seconds: float = Field(
        3600.0, gt=0, description="Longest audio sent to the model in one pass; longer audio is split at silences."
    )
    asr_longform_overlap_seconds: float = Field(
        30.0,
        ge=0,
        description="Audio each split piece re-reads before its cut, to carry speaker ids across pieces "
        "(capped at a quarter of the single-pass limit; 0: ids restart in every piece).",
    )
    asr_max_audio_seconds: float = Field(4 * 3600.0, gt=0, description="Longest accepted upload (400 beyond).")
    asr_min_new_tokens: int = Field(256, ge=1, description="Generation budget floor (tokens) per request.")
    asr_tokens_per_second: float = Field(12.0, gt=0, description="Generation budget per second of audio.")
    asr_loop_detection: bool = Field(
        True, description="Stop a transcription caught repeating itself and retry it from its last segment."
    )
    asr_loop_retries: int = Field(
        3, ge=0, le=10, description="Retries of a looping transcription (temperature 0.2, 0.3, 0.4, ...)."
    )
    asr_speaker_match_threshold: float = Field(
        0.8,
        ge=-1.0,
        le=1.0,
        description="Known speakers: the voice similarity (cosine of GE2E embeddings; same person ~0.9, "
        "different people ~0.5-0.7) a diarized speaker needs to take a reference's name.",
    )
    asr_subtitle_speakers: bool = Field(False, description="Prefix srt/vtt cues with speaker labels.")
    asr_word_timestamps: str = Field(
        "approximate",
        pattern="^(approximate|error)$",
        description="timestamp_granularities[]=word: approximate (spread over each segment) or error (400).",
    )
    max_upload_mb: float = Field(2048.0, gt=0, description="Largest accepted upload, in MiB.")
    converted_dir: Path | None = Field(
        None, description="Where the transformers layout of an original checkpoint is written (default ~/.cache)."
    )
    tmp_dir: Path | None = Field(None, description="Where uploads are spooled (default: the system temp dir).")

    @field_validator("asr_batch_audio_seconds", mode="before")
    @classmethod
    def _unset_when_empty(cls, v: object) -> object:
        return None if isinstance(v, str) and not v.strip() else v  # `VIBEVOICE_ASR_BATCH_AUDIO_SECONDS=` = auto

    @property
    def asr_model_path(self) -> Path:
        return self.model_dir / self.asr_model_subdir

    @property
    def identity(self) -> ModelIdentity:
        return from_settings(self.asr_model_id, "VibeVoice-ASR", self.asr_aliases, self.asr_model_patterns)
