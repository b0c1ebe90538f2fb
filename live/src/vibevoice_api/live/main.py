"""``vibevoice-live`` console script: the live service on :8083 (``--host``, ``--port``, ``--log-level``)."""

from __future__ import annotations

from collections.abc import Sequence

from vibevoice_api.shared.server import run_server, serve_parser

from .app import build_app
from .settings import LiveSettings

DESCRIPTION = "Live voice sessions (OpenAI Realtime) over the VibeVoice ASR and TTS services."


def main(argv: Sequence[str] | None = None) -> None:
    args = serve_parser("vibevoice-live", 8083, DESCRIPTION).parse_args(argv)
    run_server(build_app, LiveSettings(), args, service="live", graceful_seconds=10)


if __name__ == "__main__":
    main()
