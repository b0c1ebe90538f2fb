"""Which attention a service uses, from the GPU's compute capability, the dtype and whether flash-attn imports."""

from __future__ import annotations

import pytest
from vibevoice_api.shared.model_files import ModelLoadError, choose_attention, torch_version_problem

FA2 = "flash_attention_2"

# (setting, device, compute capability, dtype, flash-attn imports) -> implementation used
TABLE = [
    ("auto", "cuda", (9, 0), "bfloat16", True, FA2),  # H100
    ("auto", "cuda", (8, 0), "bfloat16", True, FA2),  # A100
    ("auto", "cuda", (8, 9), "float16", True, FA2),  # L40S / RTX 4090
    ("auto", "cuda", (8, 6), "bfloat16", False, "sdpa"),  # A10 without flash-attn installed
    ("auto", "cuda", (7, 5), "float16", True, "sdpa"),  # T4 / RTX 20xx: no FlashAttention-2
    ("auto", "cuda", (7, 0), "float16", True, "sdpa"),  # V100
    ("auto", "cuda", (9, 0), "float32", True, "sdpa"),  # float32: FlashAttention-2 has no kernel
    ("auto", "cuda", (12, 1), "bfloat16", True, "sdpa"),  # DGX Spark GB10: beyond the wheels' targets
    ("auto", "cuda", (10, 0), "bfloat16", True, "sdpa"),  # B200
    ("auto", "cpu", None, "float32", False, "sdpa"),
    ("auto", "mps", None, "float16", False, "sdpa"),
    (None, "cuda", (9, 0), "bfloat16", True, FA2),
    ("sdpa", "cuda", (9, 0), "bfloat16", True, "sdpa"),
    ("eager", "cuda", (9, 0), "bfloat16", True, "eager"),
    ("eager", "cpu", None, "float32", False, "eager"),
    (FA2, "cuda", (8, 0), "bfloat16", True, FA2),
    (FA2, "cuda", (12, 1), "bfloat16", True, FA2),  # asked for explicitly: the operator knows the build
]


@pytest.mark.parametrize(("setting", "device", "cc", "dtype", "flash", "expected"), TABLE)
def test_attention_choice(setting, device, cc, dtype, flash, expected):
    attn, why = choose_attention(setting, device, cc, dtype, flash)
    assert attn == expected
    assert why  # the start-up log says why


@pytest.mark.parametrize(
    ("device", "cc", "dtype", "flash", "reason"),
    [
        ("cuda", (7, 5), "float16", True, "compute capability >= 8.0"),
        ("cuda", (9, 0), "float32", True, "bfloat16 or float16"),
        ("cuda", (9, 0), "bfloat16", False, "does not import"),
        ("cpu", None, "float32", False, "CUDA GPU"),
    ],
)
def test_flash_attention_asked_for_but_impossible_is_a_clear_load_error(device, cc, dtype, flash, reason):
    with pytest.raises(ModelLoadError, match=reason):
        choose_attention(FA2, device, cc, dtype, flash)


def test_unknown_attention_is_refused():
    with pytest.raises(ModelLoadError, match="Unknown attention"):
        choose_attention("flash_attention_3", "cuda", (9, 0), "bfloat16", True)


def test_sdpa_fallback_names_its_reason():
    assert "compute capability" in choose_attention("auto", "cuda", (7, 5), "float16", True)[1]
    assert "flash-attn" in choose_attention("auto", "cuda", (9, 0), "bfloat16", False)[1]


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        ("2.6.0a0+ecf3bae40a.nv25.01", False),  # NGC 25.01
        ("2.5.1", False),
        ("2.4.0", False),
        ("2.6.0", True),
        ("2.7.0a0+79aa17489c.nv25.02", True),  # NGC 25.02
        ("2.9.0a0+50eac811a6.nv25.09", True),  # NGC 25.09 (DGX Spark default)
        ("2.13.0+cpu", True),
        ("not-a-version", False),
    ],
)
def test_torch_versions_transformers_accepts(version, accepted, monkeypatch):
    """Our check agrees with transformers' own is_torch_available() on the same version string."""
    import importlib.metadata

    from transformers.utils import import_utils

    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: version if name == "torch" else real(name))
    assert import_utils.is_torch_available.__wrapped__() is accepted  # (uncached: the real function)
    problem = torch_version_problem(version)
    assert (problem is None) is accepted
    if not accepted:
        assert version in problem and "25.02" in problem
