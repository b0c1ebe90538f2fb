"""``vibevoice-tts`` console script: serve (default), ``synthesize`` to a file, or ``convert-voice``."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vibevoice_api.shared.server import run_server, serve_parser

from .settings import TTSSettings


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "synthesize":
        from .engine.cli import main as synth_main

        sys.exit(synth_main(argv[1:]))
    if argv and argv[0] == "convert-voice":
        from .engine.voices import main as voices_main

        sys.exit(voices_main(["convert", *argv[1:]]))
    parser = serve_parser("vibevoice-tts", 8082, "VibeVoice-Realtime-0.5B behind the OpenAI speech API.")
    parser.epilog = (
        "Subcommands: `vibevoice-tts synthesize --help`, `vibevoice-tts convert-voice IN.pt OUT.safetensors`."
    )
    args = parser.parse_args(argv)
    settings = TTSSettings()

    from .app import build_app

    run_server(build_app, settings, args, service="tts", graceful_seconds=60)


if __name__ == "__main__":
    main()
