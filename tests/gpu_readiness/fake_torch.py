"""Make a child process see another torch version (as NGC images report theirs), through importlib.metadata."""

from __future__ import annotations

from pathlib import Path

NGC_25_01 = "2.6.0a0+ecf3bae40a.nv25.01"

SITECUSTOMIZE = """
import importlib.metadata as _m

_real = _m.version


def _version(name):
    return {version!r} if name == "torch" else _real(name)


_m.version = _version
"""


def reporting(version: str, folder: Path) -> str:
    """A folder to put first on PYTHONPATH: every Python started with it reports torch as ``version``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(version=version))
    return str(folder)
