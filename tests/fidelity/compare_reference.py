"""Compare our VibeVoice-Realtime engine with Microsoft's reference on identical tiny random weights.

Usage (see README.md here for the set-up of the reference venv and checkout):

    python tests/fidelity/compare_reference.py --ref /work/ref --ref-python /work/refvenv/bin/python

Writes a tiny model with our own writer (perturbed weights, end-of-speech disabled, official layout,
presets pickled in the 4.51 classes), runs the reference's ``generate`` and our ``vibevoice-tts
synthesize`` with the same seed, voice, text, cfg scale and steps, and prints the largest sample
difference. Exit status 1 if it exceeds ``--tolerance``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="exported checkout of github.com/microsoft/VibeVoice")
    ap.add_argument("--ref-python", required=True, help="python of a venv with transformers==4.51.3, diffusers, torch")
    ap.add_argument("--text", default="Hello there, this is a fidelity check of the realtime engine.")
    ap.add_argument("--voice", default="en-Carter_man")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--cfg-scale", type=float, default=1.5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=60, help="reference bound (text + speech positions)")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run([str(BIN / "python"), "-m", "vibevoice_api.tts.engine.tiny", str(root)], check=True)
        model = root / "VibeVoice-Realtime-0.5B"
        voice = root / "voices" / "streaming_model" / f"{args.voice}.pt"
        ref_out, our_out = root / "ref.npy", root / "ours.npy"
        subprocess.run(
            [
                args.ref_python,
                str(HERE / "ref_driver.py"),
                "--ref",
                args.ref,
                "--model-dir",
                str(model),
                "--voice",
                str(voice),
                "--text",
                args.text,
                "--seed",
                str(args.seed),
                "--cfg-scale",
                str(args.cfg_scale),
                "--steps",
                str(args.steps),
                "--max-new-tokens",
                str(args.max_new_tokens),
                "--out",
                str(ref_out),
            ],
            check=True,
        )
        ref = np.load(ref_out)
        latents = ref.size // 3200
        subprocess.run(
            [
                str(BIN / "vibevoice-tts"),
                "synthesize",
                "--model-dir",
                str(root),
                "--voice",
                args.voice,
                "--text",
                args.text,
                "--seed",
                str(args.seed),
                "--cfg-scale",
                str(args.cfg_scale),
                "--steps",
                str(args.steps),
                "--max-latents",
                str(latents),
                "--device",
                "cpu",
                "--out",
                str(our_out),
            ],
            check=True,
        )
        ours = np.load(our_out)
    n = min(ref.size, ours.size)
    diff = float(np.abs(ref[:n] - ours[:n]).max()) if n else float("inf")
    print(f"samples compared: {n} ({n // 3200} speech latents); reference {ref.size}, ours {ours.size}")
    print(f"max |ours - reference| = {diff:.3e} (reference peak {float(np.abs(ref).max()):.3e})")
    return 0 if n and diff <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
