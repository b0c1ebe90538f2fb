"""Fetch model folders from the Hugging Face hub (first start with an empty MODEL_DIR, or ahead of time).

``python -m vibevoice_api.shared.download --model-dir DIR [--asr] [--tts] [--voices NAME ...]``
writes the layout the services read: ``DIR/VibeVoice-ASR/``, ``DIR/VibeVoice-Realtime-0.5B/`` (with
the Qwen2.5 tokenizer files in its ``tokenizer/``), ``DIR/voices/streaming_model/*.pt``.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger("vibevoice_api.download")

TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt"]
VOICE_URL = "https://github.com/microsoft/VibeVoice/raw/main/demo/voices/streaming_model/{name}.pt"
DEFAULT_VOICES = ["en-Carter_man", "en-Davis_man", "en-Emma_woman", "en-Frank_man", "en-Grace_woman", "en-Mike_man"]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class ModelMissingError(RuntimeError):
    """The model folder is empty and downloading is off (offline, or disabled)."""


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "VIBEVOICE_OFFLINE", ""
    ).lower() in ("1", "true", "yes")


def has_weights(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def ensure_snapshot(
    folder: Path, repo_id: str, *, allow_download: bool, what: str, patterns: list[str] | None = None
) -> None:
    """Make sure ``folder`` holds ``repo_id``'s files; download them if allowed, else explain."""
    if has_weights(folder) and patterns is None:
        return
    if patterns is not None and all((folder / p).is_file() for p in patterns if "*" not in p):
        return
    if not allow_download or offline():
        raise ModelMissingError(
            f"{what}: {folder} has no model files and downloading is off "
            f"(VIBEVOICE_AUTO_DOWNLOAD=false or HF_HUB_OFFLINE=1). Download it with "
            f"`make models MODEL_DIR=...` or `huggingface-cli download {repo_id} --local-dir {folder}`."
        )
    from huggingface_hub import snapshot_download

    folder.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s (%s) into %s; progress follows", what, repo_id, folder)
    snapshot_download(repo_id=repo_id, local_dir=str(folder), allow_patterns=patterns)
    log.info("downloaded %s into %s", what, folder)


def download_voice(voices_dir: Path, name: str) -> Path:
    """One preset from Microsoft's GitHub repo (the presets are not on the hub)."""
    if not _SAFE_NAME.match(name):
        raise ValueError(f"invalid voice name {name!r}")
    import httpx

    voices_dir.mkdir(parents=True, exist_ok=True)
    target = voices_dir / f"{name}.pt"
    if target.is_file():
        return target
    url = VOICE_URL.format(name=name)
    log.info("downloading voice preset %s from %s", name, url)
    with httpx.stream("GET", url, follow_redirects=True, timeout=60) as r:
        r.raise_for_status()
        fd, tmp = tempfile.mkstemp(dir=voices_dir, suffix=".part")
        with os.fdopen(fd, "wb") as f:
            for chunk in r.iter_bytes():
                f.write(chunk)
    os.replace(tmp, target)
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vibevoice_api.shared.download", description=__doc__)
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("VIBEVOICE_MODEL_DIR", "models")))
    parser.add_argument("--asr", action="store_true", help="VibeVoice-ASR (transformers layout, ~17 GB)")
    parser.add_argument("--asr-repo", default=os.environ.get("VIBEVOICE_ASR_HF_REPO", "microsoft/VibeVoice-ASR-HF"))
    parser.add_argument("--tts", action="store_true", help="VibeVoice-Realtime-0.5B + Qwen2.5 tokenizer (~2 GB)")
    parser.add_argument(
        "--tts-repo", default=os.environ.get("VIBEVOICE_TTS_HF_REPO", "microsoft/VibeVoice-Realtime-0.5B")
    )
    parser.add_argument("--tokenizer-repo", default=os.environ.get("VIBEVOICE_TTS_TOKENIZER_REPO", "Qwen/Qwen2.5-0.5B"))
    parser.add_argument("--voices", nargs="*", default=None, help="voice presets (default: the English ones)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    everything = not (args.asr or args.tts or args.voices is not None)
    try:
        if args.asr or everything:
            ensure_snapshot(args.model_dir / "VibeVoice-ASR", args.asr_repo, allow_download=True, what="VibeVoice-ASR")
        if args.tts or everything:
            tts_dir = args.model_dir / "VibeVoice-Realtime-0.5B"
            ensure_snapshot(tts_dir, args.tts_repo, allow_download=True, what="VibeVoice-Realtime-0.5B")
            ensure_snapshot(
                tts_dir / "tokenizer",
                args.tokenizer_repo,
                allow_download=True,
                what="Qwen2.5 tokenizer",
                patterns=TOKENIZER_FILES,
            )
        if args.voices is not None or args.tts or everything:
            for name in args.voices or DEFAULT_VOICES:
                download_voice(args.model_dir / "voices" / "streaming_model", name)
    except ModelMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
