"""Load a model once, in the background, and answer readiness honestly meanwhile.

The process starts serving /health at once; /ready stays 503 (with the reason) until the model is
loaded and warmed up, and requests get a 503 with Retry-After instead of hanging. A load failure
is reported in /ready and in every 503 message (no stack trace to the client; the log has it).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from .errors import ServiceUnavailableError

T = TypeVar("T")
log = logging.getLogger("vibevoice_api.lifecycle")
# After a fatal CUDA error the process stops itself this long after /ready turned 503 (probes and logs see the
# reason first), so that Kubernetes and Docker Compose (restart: unless-stopped) start a fresh one.
FATAL_EXIT_SECONDS = 30.0


def _terminate() -> None:
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn's graceful shutdown, then the orchestrator restarts us


class ModelHolder(Generic[T]):
    def __init__(
        self, name: str, fatal_exit_seconds: float = FATAL_EXIT_SECONDS, terminate: Callable[[], None] = _terminate
    ) -> None:
        self.name = name
        self.fatal_exit_seconds = fatal_exit_seconds
        self._terminate = terminate
        self._exiting = False
        self.state = "starting"
        self.error: str | None = None
        self.engine: T | None = None
        self.started_at = time.monotonic()
        self.ready_at: float | None = None
        self._thread: threading.Thread | None = None

    def start(self, load: Callable[[], T], warmup: Callable[[T], Any] | None = None) -> None:
        def run() -> None:
            try:
                self.state = "loading"
                engine = load()
                if warmup is not None:
                    self.state = "warming_up"
                    warmup(engine)
                self.engine = engine
                if hasattr(engine, "on_fatal"):
                    engine.on_fatal = self._on_fatal  # type: ignore[attr-defined]
                self.state = "ready"
                self.ready_at = time.monotonic()
                log.info("%s ready after %.1f s", self.name, self.ready_at - self.started_at)
            except Exception as exc:
                self.state = "failed"
                self.error = (
                    f"{type(exc).__name__}: {exc}" if not getattr(exc, "user_message", None) else exc.user_message
                )
                log.error("%s failed to load: %s", self.name, self.error, exc_info=not _is_clear(exc))

        self._thread = threading.Thread(target=run, name=f"load-{self.name}", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.state == "ready"

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        fatal = self.fatal_error()
        state = "failed" if fatal else self.state
        details: dict[str, Any] = {"model": self.name, "state": state}
        if self.error or fatal:
            details["error"] = fatal or self.error
        if self.engine is not None:
            details["runtime"] = runtime_info(self.engine)
        return state == "ready", details

    def _on_fatal(self, reason: str) -> None:
        """The engine's GPU broke: stop the process shortly (it cannot heal), so it is started afresh."""
        if self._exiting:
            return
        self._exiting = True
        log.critical(
            "%s is out of order (%s); stopping in %.0f s for a restart", self.name, reason, self.fatal_exit_seconds
        )
        timer = threading.Timer(self.fatal_exit_seconds, self._terminate)
        timer.daemon = True
        timer.start()

    def fatal_error(self) -> str | None:
        """Set by an engine whose GPU broke after loading (see :mod:`.cuda_faults`): the service must restart."""
        return getattr(self.engine, "fatal_error", None) if self.engine is not None else None

    def require(self) -> T:
        if (fatal := self.fatal_error()) is not None:
            from .cuda_faults import EngineFailedError

            raise EngineFailedError(fatal)
        if self.state == "ready" and self.engine is not None:
            return self.engine
        if self.state == "failed":
            raise ServiceUnavailableError(
                f"The {self.name} model failed to load: {self.error}", code="model_load_failed", retry_after=30
            )
        raise ServiceUnavailableError(
            f"The {self.name} model is still loading; retry shortly.", code="model_loading", retry_after=5
        )


def runtime_info(engine: Any) -> dict[str, Any]:
    """Device, dtype and the attention implementation actually in use, from the engine's loaded model."""
    loaded = getattr(engine, "loaded", None)
    info = {k: str(getattr(loaded, k)) for k in ("device", "attention") if getattr(loaded, k, None) is not None}
    if getattr(loaded, "dtype", None) is not None:
        info["dtype"] = str(loaded.dtype).removeprefix("torch.")
    info.update(getattr(engine, "limits", None) or {})
    return info


def _is_clear(exc: BaseException) -> bool:
    """Errors whose message already says everything (missing files etc.) are logged without a trace."""
    return type(exc).__name__ in ("ModelLoadError", "ModelMissingError", "FileNotFoundError")


def model_lifespan(holder: ModelHolder[Any], load: Callable[[], Any], warmup: bool, engine: Any = None) -> Any:
    """A FastAPI lifespan: load the model in the background at start-up, close it at shutdown.

    ``engine`` (already loaded) skips loading, for embedding the app elsewhere.
    """
    import asyncio
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_: Any) -> Any:
        if engine is not None:
            holder.engine, holder.state = engine, "ready"
        else:
            holder.start(load, (lambda e: e.warmup()) if warmup else None)
        yield
        eng = holder.engine
        if eng is not None and hasattr(eng, "close"):
            await asyncio.to_thread(eng.close)

    return lifespan


def holder_readiness(app: Any) -> tuple[bool, dict[str, Any]]:
    """The readiness probe of a model service: its :class:`ModelHolder` (``app.state.holder``) decides."""
    return app.state.holder.readiness()
