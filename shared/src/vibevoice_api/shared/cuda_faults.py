"""What a failed GPU call means and how an engine recovers from it (used by both model services).

* ``oom``: out of memory. The caller leaves its ``except`` block first (the exception's traceback keeps the
  failed call's frames, hence its tensors, alive), drops its references, calls :func:`release_memory`, then
  retries each request alone once; a request that still does not fit gets :class:`GPUOutOfMemoryError`.
* ``fatal``: a CUDA error that poisons the process (device-side assert, illegal address, launch failure).
  Nothing on this GPU context works any more: the engine records :func:`fatal_reason`, ``/ready`` turns
  503 with it, and the orchestrator restarts the service.
* ``other``: an ordinary failure of one request.

:func:`classify` looks at the exception only (no torch import), so it is tested on the CPU.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence

from .errors import APIError, ServiceUnavailableError

OOM = "oom"
FATAL = "fatal"
OTHER = "other"

_OOM_MARKERS = (
    "out of memory",
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "cudaerrormemoryallocation",
)
_FATAL_MARKERS = (
    "cuda error",
    "device-side assert",
    "illegal memory access",
    "illegal instruction",
    "misaligned address",
    "unspecified launch failure",
    "launch timed out",
    "cublas_status_execution_failed",
    "cublas_status_internal_error",
    "cudnn_status_execution_failed",
    "uncorrectable ecc",
    "cuda driver error",
    "nccl error",
)


def classify(exc: BaseException) -> str:
    """``oom``, ``fatal`` or ``other`` for an exception raised by a model call."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    text = str(exc).lower()
    if "OutOfMemoryError" in names or any(m in text for m in _OOM_MARKERS):
        return OOM
    if "AcceleratorError" in names or ("RuntimeError" in names and any(m in text for m in _FATAL_MARKERS)):
        return FATAL
    return OTHER


def after_failure(kind: str, untouched: Sequence[bool]) -> tuple[list[int], list[int]]:
    """``(rows to retry alone, rows to fail now)`` after a batch failed with ``kind``.

    ``untouched[i]``: row ``i`` has sent nothing to its client yet, so it can start over. Nothing is retried
    after a fatal error, nor when the batch was a single row already (it failed alone).
    """
    rows = range(len(untouched))
    if kind == FATAL or len(untouched) == 1:
        return [], list(rows)
    return [i for i in rows if untouched[i]], [i for i in rows if not untouched[i]]


def fatal_reason(exc: BaseException) -> str:
    """What ``/ready`` says after a fatal CUDA error."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    return (
        f"a non-recoverable CUDA error broke this process ({type(exc).__name__}: {first}); "
        "restart the service (Kubernetes and Docker Compose do so when /ready keeps failing)"
    )


def release_memory() -> None:
    """Free what a failed call left: unreachable objects first, then the CUDA allocator's cached blocks."""
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


class GPUOutOfMemoryError(APIError):
    """413: the request alone does not fit in the GPU's memory; the message says what to lower."""

    status_code = 413
    error_type = "invalid_request_error"
    default_code = "gpu_out_of_memory"


class EngineFailedError(ServiceUnavailableError):
    """503 for requests after a fatal CUDA error (until the service is restarted)."""

    default_code = "engine_failed"

    def __init__(self, reason: str) -> None:
        super().__init__(f"The model service is out of order: {reason}.", retry_after=30)
