"""Voice presets: prefilled KV caches of a voice prompt, read without running anybody's code.

Microsoft ships presets as ``torch.save`` pickles of ``{"lm", "tts_lm", "neg_lm", "neg_tts_lm"}``, each a
transformers-4.51 ``BaseModelOutputWithPast`` holding a ``DynamicCache`` (``key_cache``/``value_cache``
lists, one ``[1, kv_heads, T, head_dim]`` tensor per layer). ``torch.load(weights_only=True)`` refuses
them and a plain ``torch.load`` would execute whatever the pickle says, so we read the zip archive
ourselves with an unpickler that rebuilds tensors and maps exactly those two classes to inert
stand-ins; any other global is refused. Presets can also be stored as safetensors
(``python -m vibevoice_api.tts.engine.voices convert IN.pt OUT.safetensors``).
"""

from __future__ import annotations

import argparse
import io
import logging
import pickle
import re
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger("vibevoice_api.tts.voices")
STREAMS = ("lm", "tts_lm", "neg_lm", "neg_tts_lm")
VOICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class UnsafePresetError(Exception):
    """The pickle asked for something other than tensors and the two known containers."""


@dataclass
class StreamPrefill:
    """One stream's prefilled state: its last hidden states and per-layer keys/values."""

    last_hidden_state: torch.Tensor  # [1, T, H]
    keys: list[torch.Tensor]  # per layer [1, kv_heads, T, head_dim]
    values: list[torch.Tensor]

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[2]) if self.keys else int(self.last_hidden_state.shape[1])


@dataclass
class VoicePreset:
    name: str
    streams: dict[str, StreamPrefill]

    def to(self, device: Any, dtype: Any) -> VoicePreset:
        def mv(t: torch.Tensor) -> torch.Tensor:
            return t.to(device=device, dtype=dtype)

        return VoicePreset(
            self.name,
            {
                k: StreamPrefill(mv(s.last_hidden_state), [mv(x) for x in s.keys], [mv(x) for x in s.values])
                for k, s in self.streams.items()
            },
        )


# ------------------------------------------------------------------------------------------------
# The restricted unpickler


class _OutputStandIn(dict):
    """Receives what a pickled BaseModelOutputWithPast holds (positional fields and/or dict items)."""

    _FIELDS = ("last_hidden_state", "past_key_values", "hidden_states", "attentions")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()
        for name, value in zip(self._FIELDS, args, strict=False):
            if value is not None:
                self[name] = value
        self.update({k: v for k, v in kwargs.items() if v is not None})

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, dict):
            self.update({k: v for k, v in state.items() if v is not None and k in self._FIELDS})


class _CacheStandIn:
    """Receives a pickled 4.51 DynamicCache's attributes; keeps only the key/value lists."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots)
            state = state[0]
        if isinstance(state, dict):
            self.key_cache = state.get("key_cache")
            self.value_cache = state.get("value_cache")
            layers = state.get("layers")
            if self.key_cache is None and isinstance(layers, list):  # newer caches keep per-layer objects
                self.key_cache = [getattr(layer, "keys", None) for layer in layers]
                self.value_cache = [getattr(layer, "values", None) for layer in layers]


class _StorageType:
    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


_STORAGE_DTYPES = {
    "BFloat16Storage": torch.bfloat16,
    "HalfStorage": torch.float16,
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


def _rebuild_tensor(storage: torch.Tensor, offset: int, size: Any, stride: Any, *_: Any) -> torch.Tensor:
    """Our own tensor rebuild: a strided view of the storage's flat tensor (no torch internals)."""
    return torch.as_strided(storage, tuple(size), tuple(stride), int(offset)).clone()


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, zf: zipfile.ZipFile, prefix: str) -> None:
        super().__init__(io.BytesIO(data))
        self.zf = zf
        self.prefix = prefix

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _rebuild_tensor
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "collections" and name == "OrderedDict":
            return OrderedDict
        if module == "transformers.modeling_outputs" and name == "BaseModelOutputWithPast":
            return _OutputStandIn
        if module == "transformers.cache_utils" and name == "DynamicCache":
            return _CacheStandIn
        if module == "torch" and name in ("float32", "bfloat16", "float16"):
            return getattr(torch, name)
        raise UnsafePresetError(f"refused to load {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise UnsafePresetError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        dtype = storage_type.dtype if isinstance(storage_type, _StorageType) else getattr(storage_type, "dtype", None)
        if not isinstance(dtype, torch.dtype):
            raise UnsafePresetError(f"unexpected storage type {storage_type!r}")
        if not re.fullmatch(r"[0-9A-Za-z_]+", key):
            raise UnsafePresetError("bad storage key")
        raw = self.zf.read(f"{self.prefix}data/{key}")
        flat = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        if flat.numel() < numel:
            raise UnsafePresetError("storage shorter than declared")
        return flat


def _read_pickle_archive(path: Path) -> Any:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise UnsafePresetError("not a torch zip archive (legacy or damaged file)") from exc
    with zf:
        pkl = [n for n in zf.namelist() if n.endswith("data.pkl")]
        if len(pkl) != 1:
            raise UnsafePresetError("archive has no single data.pkl")
        prefix = pkl[0][: -len("data.pkl")]
        return _RestrictedUnpickler(zf.read(pkl[0]), zf, prefix).load()


def _stream_from(obj: Any, stream: str) -> StreamPrefill:
    if not isinstance(obj, dict) or "last_hidden_state" not in obj:
        raise UnsafePresetError(f"stream {stream!r} is not a model output")
    hidden = obj["last_hidden_state"]
    cache = obj.get("past_key_values")
    keys = getattr(cache, "key_cache", None)
    values = getattr(cache, "value_cache", None)
    if isinstance(cache, (tuple, list)) and cache and isinstance(cache[0], (tuple, list)):  # legacy tuple caches
        keys, values = [kv[0] for kv in cache], [kv[1] for kv in cache]
    if not isinstance(hidden, torch.Tensor) or not isinstance(keys, list) or not isinstance(values, list):
        raise UnsafePresetError(f"stream {stream!r} lacks its cache tensors")
    if not keys or len(keys) != len(values) or not all(isinstance(t, torch.Tensor) for t in keys + values):
        raise UnsafePresetError(f"stream {stream!r} has malformed key/value lists")
    return StreamPrefill(hidden, list(keys), list(values))


def load_pt(path: Path, name: str | None = None) -> VoicePreset:
    data = _read_pickle_archive(path)
    if not isinstance(data, dict) or any(s not in data for s in STREAMS):
        raise UnsafePresetError(f"expected a dict with {', '.join(STREAMS)}")
    return VoicePreset(name or path.stem, {s: _stream_from(data[s], s) for s in STREAMS})


def load_safetensors(path: Path, name: str | None = None) -> VoicePreset:
    from safetensors.torch import load_file

    flat = load_file(str(path))
    streams = {}
    for s in STREAMS:
        hidden = flat.get(f"{s}.last_hidden_state")
        n = 0
        keys, values = [], []
        while f"{s}.key.{n}" in flat:
            keys.append(flat[f"{s}.key.{n}"])
            values.append(flat[f"{s}.value.{n}"])
            n += 1
        if hidden is None or not keys:
            raise UnsafePresetError(f"safetensors preset lacks stream {s!r}")
        streams[s] = StreamPrefill(hidden, keys, values)
    return VoicePreset(name or path.stem, streams)


def save_safetensors(preset: VoicePreset, path: Path) -> None:
    from safetensors.torch import save_file

    flat: dict[str, torch.Tensor] = {}
    for s, st in preset.streams.items():
        flat[f"{s}.last_hidden_state"] = st.last_hidden_state.contiguous()
        for i, (k, v) in enumerate(zip(st.keys, st.values, strict=True)):
            flat[f"{s}.key.{i}"] = k.contiguous()
            flat[f"{s}.value.{i}"] = v.contiguous()
    save_file(flat, str(path), metadata={"format": "vibevoice-voice-preset"})


def load_preset(path: Path, name: str | None = None) -> VoicePreset:
    if path.suffix == ".safetensors":
        return load_safetensors(path, name)
    return load_pt(path, name)


# ------------------------------------------------------------------------------------------------
# The voice catalogue


@dataclass(frozen=True)
class VoiceInfo:
    id: str
    name: str
    language: str | None
    gender: str | None


def describe(voice_id: str) -> VoiceInfo:
    """``en-Carter_man`` → language en, name Carter, gender man (other names: the whole id)."""
    m = re.match(r"^([a-z]{2})-([A-Za-z0-9]+)_(man|woman)$", voice_id)
    if m:
        return VoiceInfo(voice_id, m.group(2), m.group(1), m.group(3))
    return VoiceInfo(voice_id, voice_id, None, None)


def scan(voices_dir: Path | None) -> dict[str, Path]:
    """Preset id → file, for the .pt/.safetensors files directly inside ``voices_dir`` (safetensors win)."""
    found: dict[str, Path] = {}
    if voices_dir is None or not voices_dir.is_dir():
        return found
    for p in sorted(voices_dir.iterdir()):
        ok = p.is_file() and p.suffix in (".pt", ".safetensors") and VOICE_NAME.match(p.stem)
        if ok and (p.stem not in found or p.suffix == ".safetensors"):
            found[p.stem] = p
    return found


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m vibevoice_api.tts.engine.voices")
    sub = ap.add_subparsers(dest="cmd", required=True)
    conv = sub.add_parser("convert", help="convert a .pt preset to .safetensors (through the restricted loader)")
    conv.add_argument("src", type=Path)
    conv.add_argument("dst", type=Path)
    args = ap.parse_args(argv)
    try:
        preset = load_pt(args.src)
    except UnsafePresetError as exc:
        print(f"error: {args.src}: {exc}", file=sys.stderr)
        return 2
    save_safetensors(preset, args.dst)
    print(f"wrote {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
