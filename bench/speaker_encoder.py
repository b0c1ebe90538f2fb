"""Known-speaker matching cost: the GE2E voice encoder beside the audio it listens to.

Embeds clips of 2, 10 and 30 seconds (real voices: Microsoft's toy0 podcast from ../shared/data) and
prints, side by side in one run, the time per clip, its real-time factor (seconds of compute per second of
audio, one CPU thread) and the one-off load time relative to one 10 s embedding. Also the separation the
threshold relies on: cosine similarity within a voice and between voices over the podcast's turns.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "audio"
RATE = 16000


def main() -> None:
    from vibevoice_api.asr.speakers import VoiceEncoder
    from vibevoice_api.shared.audio import decode_audio

    torch.set_num_threads(1)
    audio = decode_audio(DATA / "toy0.mp3", RATE)
    turns = json.loads((DATA / "toy0.json").read_text())["segments"]
    started = time.perf_counter()
    enc = VoiceEncoder()
    load = time.perf_counter() - started

    def clip(t: dict, seconds: float, skip: float = 2.0) -> np.ndarray:
        a = int((t["start"] + skip) * RATE)
        return audio[a : a + int(seconds * RATE)]

    out: dict[str, object] = {}
    per_ten = None
    for seconds in (2, 10, 30):
        clips = [clip(t, seconds) for t in turns]
        enc.embed(clips[0])  # warm
        times = []
        for c in clips:
            t0 = time.perf_counter()
            enc.embed(c)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        if seconds == 10:
            per_ten = med
        out[f"{seconds}s"] = {"median_s": round(med, 4), "real_time_factor": round(med / seconds, 4)}
    out["load_vs_one_10s_embedding"] = round(load / per_ten, 1) if per_ten else None
    embs = [(t["speaker"], enc.embed(clip(t, 8))) for t in turns]
    same = [float(a @ b) for i, (s, a) in enumerate(embs) for (r, b) in embs[i + 1 :] if s == r]
    diff = [float(a @ b) for i, (s, a) in enumerate(embs) for (r, b) in embs[i + 1 :] if s != r]
    out["similarity"] = {
        "same_voice_min": round(min(same), 3),
        "different_voices_max": round(max(diff), 3),
        "margin": round(min(same) - max(diff), 3),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
