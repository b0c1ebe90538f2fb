"""Known speakers: name the diarized speakers whose voice matches a reference clip.

OpenAI's ``gpt-4o-transcribe-diarize`` accepts up to four ``known_speaker_names[]`` with
``known_speaker_references[]`` (data URLs of 2–10 s clips). VibeVoice-ASR numbers speakers itself; here
each of its speakers is compared with the references by voice, and a speaker whose voice is close enough
to one reference (cosine similarity at least the configured threshold, each name used once, best pairs
first) takes that name. The others keep ``A``, ``B``, ...

The voice encoder is the GE2E speaker encoder (3-layer LSTM over 40-band mel frames, 256-d embedding)
whose trained weights ship inside the ``resemblyzer`` wheel on PyPI (Apache-2.0, 17 MB, trained on
LibriSpeech + VoxCeleb 1/2). The package itself is never imported (it would pull librosa and webrtcvad):
its ``pretrained.pt`` is read with ``torch.load(weights_only=True)`` into our own copy of the network,
with our own mel front end (same frame, hop and filterbank parameters) and an energy gate in place of
its webrtcvad silence trimming.
"""

from __future__ import annotations

import base64
import binascii
import importlib.util
import io
import math
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from vibevoice_api.shared.audio import AudioDecodeError, decode_audio
from vibevoice_api.shared.errors import APIError, InvalidRequestError

from .once import loaded_once

MAX_KNOWN_SPEAKERS = 4
MIN_CLIP_SECONDS = 2.0
MAX_CLIP_SECONDS = 10.0
CLIP_TOLERANCE_SECONDS = 0.05  # codec priming/padding around an exactly 2 s or 10 s clip
MAX_NAME_CHARS = 64
ENCODER_RATE = 16000
MAX_SPEAKER_SECONDS = 30.0  # audio of one diarized speaker used for its voice (its first turns)
MIN_SPEAKER_SECONDS = 0.5  # less than this is not enough voice to name anyone

# GE2E front end and partial-utterance windows (the encoder's training setup).
N_FFT = 400  # 25 ms
HOP = 160  # 10 ms
N_MELS = 40
PARTIAL_FRAMES = 160  # 1.6 s
PARTIAL_STEP = 77  # frames between partials (1.3 partials per second)
MIN_COVERAGE = 0.75
GATE_WINDOW = 480  # 30 ms
TARGET_DBFS = -30.0

_DATA_URL = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+-]+=[\w.+-]+)*);base64,(?P<data>.*)$", re.S
)


class EncoderUnavailableError(APIError, status=501, code="speaker_encoder_unavailable"):
    """This installation has no speaker-encoder weights (the resemblyzer wheel is not installed)."""


@dataclass(frozen=True)
class KnownSpeaker:
    name: str
    samples: np.ndarray  # mono float32 at ENCODER_RATE


# ---------------------------------------------------------------------------------------------- request side


def parse_known_speakers(names: Sequence[Any], references: Sequence[Any]) -> list[KnownSpeaker]:
    """Validate ``known_speaker_names[]`` / ``known_speaker_references[]``; decode each clip.

    Every problem is an OpenAI 400 naming the parameter (and the item)."""
    names, references = list(names), list(references)
    if not names and not references:
        return []
    weights_path()  # a server without the encoder says so before transcribing
    if len(names) > MAX_KNOWN_SPEAKERS:
        raise InvalidRequestError(
            f"At most {MAX_KNOWN_SPEAKERS} known speakers are supported (got {len(names)}).",
            param="known_speaker_names",
            code="too_many_known_speakers",
        )
    if len(references) != len(names):
        raise InvalidRequestError(
            f"known_speaker_names has {len(names)} items but known_speaker_references has {len(references)}: "
            "give one reference clip per name.",
            param="known_speaker_references",
            code="known_speakers_mismatch",
        )
    out: list[KnownSpeaker] = []
    seen: set[str] = set()
    for i, (name, ref) in enumerate(zip(names, references, strict=True)):
        out.append(KnownSpeaker(_name(name, i, seen), _clip(ref, i)))
    return out


def _name(name: Any, i: int, seen: set[str]) -> str:
    param = f"known_speaker_names[{i}]"
    if not isinstance(name, str) or not name.strip():
        raise InvalidRequestError(
            "Each known speaker name must be a non-empty string.", param=param, code="invalid_value"
        )
    clean = " ".join(name.split())
    if len(clean) > MAX_NAME_CHARS or any(ord(c) < 32 for c in name.replace("\t", " ")):
        raise InvalidRequestError(
            f"Known speaker names are single lines of at most {MAX_NAME_CHARS} characters.",
            param=param,
            code="invalid_value",
        )
    if clean.lower() in seen:
        raise InvalidRequestError(f"The name {clean!r} is given twice.", param=param, code="duplicate_value")
    seen.add(clean.lower())
    return clean


def decode_data_url(url: Any, param: str) -> bytes:
    """The bytes of a ``data:audio/...;base64,...`` URL (400 naming ``param`` when it is not one)."""
    if not isinstance(url, str):
        raise InvalidRequestError("Expected a data URL string.", param=param, code="invalid_type")
    m = _DATA_URL.match(url.strip())
    if m is None:
        raise InvalidRequestError(
            "Expected a data URL such as data:audio/wav;base64,<base64 audio>.", param=param, code="invalid_data_url"
        )
    mime = (m.group("mime") or "").lower()
    if mime and not (mime.startswith("audio/") or mime in ("video/webm", "video/mp4", "application/octet-stream")):
        raise InvalidRequestError(f"The data URL holds {mime}, not audio.", param=param, code="invalid_data_url")
    try:
        data = base64.b64decode(re.sub(r"\s+", "", m.group("data")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestError("The data URL's base64 is not valid.", param=param, code="invalid_data_url") from exc
    if not data:
        raise InvalidRequestError("The data URL holds no data.", param=param, code="invalid_data_url")
    return data


def _clip(ref: Any, i: int) -> np.ndarray:
    param = f"known_speaker_references[{i}]"
    data = decode_data_url(ref, param)
    try:
        samples = decode_audio(io.BytesIO(data), ENCODER_RATE, max_seconds=MAX_CLIP_SECONDS + 5)
    except AudioDecodeError as exc:
        raise InvalidRequestError(
            f"Reference clip {i} is not audio we can read: {exc.message}", param=param, code="invalid_audio"
        ) from exc
    seconds = samples.shape[0] / ENCODER_RATE
    if not MIN_CLIP_SECONDS - CLIP_TOLERANCE_SECONDS <= seconds <= MAX_CLIP_SECONDS + CLIP_TOLERANCE_SECONDS:
        raise InvalidRequestError(
            f"Reference clip {i} lasts {seconds:.2f} s: clips must be {MIN_CLIP_SECONDS:g} to "
            f"{MAX_CLIP_SECONDS:g} seconds long.",
            param=param,
            code="invalid_clip_duration",
        )
    return samples


# ---------------------------------------------------------------------------------------------- the encoder


def weights_path() -> Path:
    """``pretrained.pt`` inside the installed ``resemblyzer`` package (found without importing it)."""
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise EncoderUnavailableError(
            "Known speakers need the GE2E voice-encoder weights from the resemblyzer wheel, which this server "
            "does not have (operator: pip install --no-deps resemblyzer==0.1.4).",
            param="known_speaker_references",
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pretrained.pt"


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((math.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)


def mel_filterbank(rate: int = ENCODER_RATE, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """Triangular, area-normalised (Slaney) mel filters over 0..rate/2, shape (n_mels, n_fft // 2 + 1)."""
    bins = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2))
    widths = np.diff(edges)
    rising = (bins[None, :] - edges[:-2, None]) / widths[:-1, None]
    falling = (edges[2:, None] - bins[None, :]) / widths[1:, None]
    fb = np.maximum(0.0, np.minimum(rising, falling))
    fb *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return fb.astype(np.float32)


_FILTERS = mel_filterbank()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic Hann


def mel_frames(samples: np.ndarray) -> np.ndarray:
    """Power mel spectrogram, frames centred every 10 ms (zero padded), shape (frames, 40)."""
    x = np.pad(np.asarray(samples, dtype=np.float32), N_FFT // 2)
    n = 1 + (x.shape[0] - N_FFT) // HOP
    idx = np.arange(N_FFT)[None, :] + HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * _WINDOW, axis=1)) ** 2
    return (spec @ _FILTERS.T).astype(np.float32)


def prepare(samples: np.ndarray) -> np.ndarray:
    """Raise quiet audio to -30 dBFS and drop long silences (energy gate over 30 ms windows)."""
    x = np.asarray(samples, dtype=np.float32)
    rms = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) if x.size else 0.0
    if rms <= 0:
        return x[:0]
    gain = 10 ** ((TARGET_DBFS - 20 * math.log10(rms)) / 20)
    if gain > 1:
        x = x * gain
    n = x.shape[0] // GATE_WINDOW
    if n == 0:
        return x
    win = np.sqrt(np.mean(x[: n * GATE_WINDOW].reshape(n, GATE_WINDOW).astype(np.float64) ** 2, axis=1))
    level = np.percentile(win, 90)
    voiced = win > max(level * 10 ** (-30 / 20), 10 ** (-60 / 20))
    keep = np.convolve(voiced.astype(np.float64), np.ones(13), mode="same") > 0  # keep 6 windows around speech
    return x[: n * GATE_WINDOW].reshape(n, GATE_WINDOW)[keep].reshape(-1)


def partial_windows(n_samples: int) -> list[tuple[int, int]]:
    """Frame ranges of the 1.6 s partial utterances covering ``n_samples`` (at least one)."""
    n_frames = int(math.ceil((n_samples + 1) / HOP))
    steps = max(1, n_frames - PARTIAL_FRAMES + PARTIAL_STEP + 1)
    windows = [(i, i + PARTIAL_FRAMES) for i in range(0, steps, PARTIAL_STEP)]
    last = windows[-1]
    coverage = (n_samples - last[0] * HOP) / (PARTIAL_FRAMES * HOP)
    if coverage < MIN_COVERAGE and len(windows) > 1:
        windows.pop()
    return windows


class VoiceEncoder:
    """GE2E speaker encoder: 16 kHz speech → unit-length 256-d voice embedding."""

    def __init__(self, path: Path | None = None) -> None:
        import torch

        state = torch.load(path or weights_path(), map_location="cpu", weights_only=True)["model_state"]
        self.lstm = torch.nn.LSTM(N_MELS, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})
        self.lstm.eval()
        self.linear.eval()
        self._lock = threading.Lock()

    def embed(self, samples: np.ndarray) -> np.ndarray | None:
        """The voice of ``samples`` (mono float32, 16 kHz); ``None`` when they hold no sound."""
        import torch

        x = prepare(samples)
        if x.shape[0] < HOP * 10:
            return None
        windows = partial_windows(x.shape[0])
        stop = windows[-1][1] * HOP
        if stop > x.shape[0]:
            x = np.pad(x, (0, stop - x.shape[0]))
        mels = mel_frames(x)
        batch = torch.from_numpy(np.stack([mels[a:b] for a, b in windows]))
        with self._lock, torch.inference_mode():
            _, (hidden, _) = self.lstm(batch)
            e = torch.relu(self.linear(hidden[-1]))
            e = e / e.norm(dim=1, keepdim=True).clamp_min(1e-9)
        mean = e.mean(dim=0).numpy()
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else None


@loaded_once
def encoder() -> VoiceEncoder:
    """The process's encoder, loaded on first use (a few hundred ms)."""
    return VoiceEncoder()


# ---------------------------------------------------------------------------------------------- matching


def resample(samples: np.ndarray, rate: int, target: int = ENCODER_RATE) -> np.ndarray:
    """Mono float32 ``samples`` from ``rate`` to ``target`` Hz (FFmpeg's resampler)."""
    if rate == target or samples.size == 0:
        return np.asarray(samples, dtype=np.float32)
    import av

    frame = av.AudioFrame.from_ndarray(
        np.ascontiguousarray(samples, dtype=np.float32)[None, :], format="flt", layout="mono"
    )
    frame.sample_rate = rate
    rs = av.AudioResampler(format="flt", layout="mono", rate=target)
    parts = [f.to_ndarray().reshape(-1) for f in rs.resample(frame)]
    parts += [f.to_ndarray().reshape(-1) for f in rs.resample(None)]
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def speaker_audio(
    audio: np.ndarray, rate: int, turns: Iterable[tuple[float, float, Any]], max_seconds: float = MAX_SPEAKER_SECONDS
) -> dict[Any, np.ndarray]:
    """Each speaker's turns ``(start, end, speaker)`` cut from ``audio`` and joined (its first ``max_seconds``)."""
    spans: dict[Any, list[np.ndarray]] = {}
    used: dict[Any, int] = {}
    limit = int(max_seconds * rate)
    for start, end, speaker in turns:
        a, b = max(0, int(start * rate)), min(audio.shape[0], int(math.ceil(end * rate)))
        room = limit - used.get(speaker, 0)
        if b <= a or room <= 0:
            continue
        piece = audio[a : min(b, a + room)]
        spans.setdefault(speaker, []).append(piece)
        used[speaker] = used.get(speaker, 0) + piece.shape[0]
    return {k: np.concatenate(v) for k, v in spans.items()}


def assign(similarity: dict[tuple[Any, str], float], threshold: float) -> dict[Any, str]:
    """One name per speaker and one speaker per name, best pairs first, only pairs at or above ``threshold``."""
    out: dict[Any, str] = {}
    taken: set[str] = set()
    for (speaker, name), score in sorted(similarity.items(), key=lambda kv: -kv[1]):
        if score < threshold or speaker in out or name in taken:
            continue
        out[speaker] = name
        taken.add(name)
    return out


def similarities(
    voices: dict[Any, np.ndarray], rate: int, known: Sequence[KnownSpeaker], enc: VoiceEncoder | None = None
) -> dict[tuple[Any, str], float]:
    """Cosine similarity of every diarized speaker's voice (``rate`` Hz audio) with every reference."""
    return SpeakerMatcher(known, 0.0, enc).similarities(voices, rate)


def name_speakers(
    audio: np.ndarray,
    rate: int,
    turns: Iterable[tuple[float, float, Any]],
    known: Sequence[KnownSpeaker],
    threshold: float,
) -> dict[Any, str]:
    """Diarized speaker id → known name, for the speakers whose voice matches a reference."""
    if not known:
        return {}
    return SpeakerMatcher(known, threshold).name_all(audio, rate, turns)


class SpeakerMatcher:
    """One request's references, embedded once; names whole transcripts or speakers one at a time."""

    def __init__(self, known: Sequence[KnownSpeaker], threshold: float, enc: VoiceEncoder | None = None) -> None:
        self.known = list(known)
        self.threshold = threshold
        self._enc = enc
        self._refs: list[tuple[str, np.ndarray]] | None = None
        self.taken: dict[Any, str] = {}  # speakers named so far (streaming)

    @property
    def enc(self) -> VoiceEncoder:
        if self._enc is None:
            self._enc = encoder()
        return self._enc

    def refs(self) -> list[tuple[str, np.ndarray]]:
        if self._refs is None:
            self._refs = [(k.name, e) for k in self.known if (e := self.enc.embed(k.samples)) is not None]
        return self._refs

    def similarities(self, voices: dict[Any, np.ndarray], rate: int) -> dict[tuple[Any, str], float]:
        out: dict[tuple[Any, str], float] = {}
        refs = self.refs()
        for speaker, samples in voices.items():
            if samples.shape[0] < MIN_SPEAKER_SECONDS * rate:
                continue
            voice = self.enc.embed(resample(samples, rate))
            if voice is None:
                continue
            for name, ref in refs:
                out[(speaker, name)] = float(np.dot(voice, ref))
        return out

    def name_all(self, audio: np.ndarray, rate: int, turns: Iterable[tuple[float, float, Any]]) -> dict[Any, str]:
        """Every diarized speaker of a whole transcript: best pairs first, one name each."""
        return assign(self.similarities(speaker_audio(audio, rate, turns), rate), self.threshold)

    def name_new(self, audio: np.ndarray, rate: int, speaker: Any, turns: Iterable[tuple[float, float]]) -> str | None:
        """A speaker heard for the first time (streaming): the best free name its first turns match, if any."""
        voices = speaker_audio(audio, rate, [(a, b, speaker) for a, b in turns])
        free = {n for n, _ in self.refs()} - set(self.taken.values())
        sims = {k: v for k, v in self.similarities(voices, rate).items() if k[1] in free}
        name = assign(sims, self.threshold).get(speaker)
        if name is not None:
            self.taken[speaker] = name
        return name
