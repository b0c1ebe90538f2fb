"""What a failed model call means (out of memory, a broken GPU, an ordinary error) and what is retried."""

from __future__ import annotations

import pytest
import torch
from vibevoice_api.shared import cuda_faults as cf


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"), cf.OOM),
        (RuntimeError("CUDA error: out of memory"), cf.OOM),
        (RuntimeError("CUDA error: CUBLAS_STATUS_ALLOC_FAILED when calling `cublasCreate(handle)`"), cf.OOM),
        (torch.AcceleratorError("CUDA error: device-side assert triggered"), cf.FATAL),
        (RuntimeError("CUDA error: an illegal memory access was encountered"), cf.FATAL),
        (RuntimeError("CUDA error: unspecified launch failure"), cf.FATAL),
        (RuntimeError("CUBLAS_STATUS_EXECUTION_FAILED when calling cublasGemmEx"), cf.FATAL),
        (RuntimeError("shape '[2, -1]' is invalid for input of size 3"), cf.OTHER),
        (ValueError("mentions a CUDA error in its text but is no CUDA failure"), cf.OTHER),
        (KeyError("input_ids"), cf.OTHER),
    ],
)
def test_classify(exc, kind):
    assert cf.classify(exc) == kind


@pytest.mark.parametrize(
    ("kind", "untouched", "retry", "fail"),
    [
        (cf.OOM, [True, True, True], [0, 1, 2], []),
        (cf.OOM, [True, False, True], [0, 2], [1]),  # row 1 already streamed to its client: it cannot start over
        (cf.OOM, [True], [], [0]),  # it failed alone already
        (cf.OTHER, [True, True], [0, 1], []),  # one bad request must not fail its batch-mates
        (cf.FATAL, [True, True], [], [0, 1]),  # nothing runs on a broken GPU
    ],
)
def test_what_is_retried_alone_after_a_failed_batch(kind, untouched, retry, fail):
    assert cf.after_failure(kind, untouched) == (retry, fail)


def test_fatal_reason_names_the_error_and_the_remedy():
    reason = cf.fatal_reason(torch.AcceleratorError("CUDA error: device-side assert triggered\nmore detail"))
    assert "device-side assert triggered" in reason and "more detail" not in reason and "restart" in reason


def test_errors_are_openai_shaped_with_the_right_status():
    oom = cf.GPUOutOfMemoryError("too long", param="file")
    assert oom.status_code == 413 and oom.body()["error"]["code"] == "gpu_out_of_memory"
    broken = cf.EngineFailedError("a CUDA error")
    assert broken.status_code == 503 and broken.body()["error"]["code"] == "engine_failed"
