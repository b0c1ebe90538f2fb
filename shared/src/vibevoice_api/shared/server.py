"""Console-script plumbing: ``--host/--port`` flags, the rest from the environment, then uvicorn."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from typing import Any

import uvicorn

from .logs import setup_logging
from .settings import CommonSettings


def serve_parser(prog: str, default_port: int, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=description + " Other settings come from VIBEVOICE_* environment variables (see README)."
    )
    parser.add_argument("--host", default="0.0.0.0", help="interface to bind (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=default_port, help=f"port to listen on (default {default_port})")
    parser.add_argument("--log-level", default=None, help="override VIBEVOICE_LOG_LEVEL")
    return parser


def run_server(
    app_factory: Callable[[Any], Any],
    settings: CommonSettings,
    args: argparse.Namespace,
    *,
    service: str,
    graceful_seconds: float = 30.0,
) -> None:
    """Start uvicorn on our app with the flags of :func:`serve_parser`; SIGTERM lets in-flight requests
    finish for ``graceful_seconds`` (or ``VIBEVOICE_SHUTDOWN_GRACE_SECONDS``)."""
    host, port = args.host, args.port
    if args.log_level:
        settings.log_level = args.log_level
    setup_logging(settings.log_level, settings.log_format, service)
    app = app_factory(settings)
    logging.getLogger("vibevoice_api").info(
        "starting %s on %s:%d", service, host, port, extra={"fields": {"service": service, "port": port}}
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=settings.shutdown_grace_seconds or graceful_seconds,
        timeout_keep_alive=30,
        ws_max_size=16 * 1024 * 1024,
    )
