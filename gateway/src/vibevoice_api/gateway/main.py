"""``vibevoice-gateway`` console script."""

from __future__ import annotations

from collections.abc import Sequence

from vibevoice_api.shared.server import run_server, serve_parser

from .app import build_app
from .settings import GatewaySettings


def main(argv: Sequence[str] | None = None) -> None:
    args = serve_parser(
        "vibevoice-gateway", 8080, "OpenAI-compatible gateway in front of the VibeVoice ASR and TTS services."
    ).parse_args(argv)
    settings = GatewaySettings()
    run_server(build_app, settings, args, service="gateway", graceful_seconds=60)


if __name__ == "__main__":
    main()
