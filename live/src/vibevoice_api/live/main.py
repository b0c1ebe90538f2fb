"""``vibevoice-live`` console script."""

from __future__ import annotations

from collections.abc import Sequence

from vibevoice_api.shared.server import run_server, serve_parser

from .app import build_app
from .settings import LiveSettings


def main(argv: Sequence[str] | None = None) -> None:
    args = serve_parser(
        "vibevoice-live", 8083, "Live voice sessions (OpenAI Realtime) over the VibeVoice ASR and TTS services."
    ).parse_args(argv)
    settings = LiveSettings()
    run_server(build_app, settings, args, service="live", graceful_seconds=10)


if __name__ == "__main__":
    main()
