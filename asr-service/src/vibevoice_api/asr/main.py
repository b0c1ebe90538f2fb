"""``vibevoice-asr`` console script: serve (default) or ``convert`` an original-layout checkpoint."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from vibevoice_api.shared.server import run_server, serve_parser

from .settings import ASRSettings


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "convert":
        from .engine.convert import main as convert_main

        sys.exit(convert_main(argv[1:]))
    args = serve_parser("vibevoice-asr", 8081, "VibeVoice-ASR behind the OpenAI transcription API.").parse_args(argv)
    settings = ASRSettings()

    from .app import build_app

    run_server(build_app, settings, args, service="asr", graceful_seconds=120)


if __name__ == "__main__":
    main()
