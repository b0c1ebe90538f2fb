"""Fail an image build (or a start-up check) unless transformers sees torch and the model classes are real.

    python -m vibevoice_api.shared.stack_check transformers:VibeVoiceAsrForConditionalGeneration [--flash require]

transformers replaces every model class by an importable dummy when it decides torch is missing (for
example NGC 25.01's torch ``2.6.0a0``): the image would build and the service would fail at load time.
This check imports each named class and requires a real ``torch.nn.Module`` subclass. ``--flash`` says
what to do about flash-attn: ``require`` (exit 1 unless it imports), ``report`` (say whether it does).
Exit status 0 when all is well, 1 with one line per problem otherwise.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .model_files import ModelLoadError, check_torch, flash_attn_importable


def problems(class_paths: list[str], flash: str = "report") -> tuple[list[str], list[str]]:
    """(what was found, what is wrong) for these ``module:Class`` paths."""
    found: list[str] = []
    wrong: list[str] = []
    try:
        found.append(f"torch {check_torch()}")
    except ModelLoadError as exc:
        return found, [str(exc)]
    import torch
    from transformers.utils import is_torch_available

    arches = " ".join(torch.cuda.get_arch_list()) or "none"
    found.append(f"CUDA {torch.version.cuda or 'none (CPU build)'}; GPU kernels for: {arches}")
    if not is_torch_available():
        wrong.append("transformers does not see torch: every model class would be a dummy.")
    for path in class_paths:
        module, _, name = path.partition(":")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as exc:
            wrong.append(f"{path} does not import: {exc}")
            continue
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            wrong.append(f"{path} is a placeholder, not a torch module (transformers did not load its torch code).")
        else:
            found.append(f"{path} imports")
    has_flash = flash_attn_importable()
    found.append(f"flash-attn {'imports' if has_flash else 'absent (sdpa will be used)'}")
    if flash == "require" and not has_flash:
        wrong.append("FLASH_ATTN=1 but flash-attn does not import (not installed, or built for another torch/CUDA).")
    return found, wrong


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vibevoice_api.shared.stack_check", description=__doc__)
    parser.add_argument("classes", nargs="*", help="module:Class paths that must be real torch modules")
    parser.add_argument("--flash", choices=("report", "require"), default="report")
    args = parser.parse_args(argv)
    found, wrong = problems(args.classes, args.flash)
    for line in found:
        print(f"ok: {line}")
    for line in wrong:
        print(f"FAILED: {line}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
