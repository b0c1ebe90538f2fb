"""``vibevoice-tts synthesize``: one utterance to a file, on the same engine the server uses.

``--seed N`` seeds torch's global generator right before generation, exactly as Microsoft's demo
does, so the diffusion noise draws line up with the reference implementation.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import ModelLoadError
from .runtime import EngineConfig, TTSEngine


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="vibevoice-tts synthesize", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model-dir", type=Path, required=True, help="VibeVoice-Realtime-0.5B folder (or MODEL_DIR holding it)"
    )
    ap.add_argument("--voice", required=True, help="preset name (carter, en-Carter_man) or a .pt/.safetensors file")
    ap.add_argument(
        "--voices-dir", type=Path, default=None, help="presets folder (default: MODEL_DIR/voices/streaming_model)"
    )
    ap.add_argument("--text", required=True)
    ap.add_argument("--out", type=Path, required=True, help="output .wav (24 kHz PCM16) or .npy (float32 samples)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--cfg-scale", type=float, default=1.5)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-latents-per-token", type=float, default=8.0, help="generation budget (runaway guard)")
    ap.add_argument("--max-latents", type=int, default=None, help="hard cap on speech latents (comparisons)")
    args = ap.parse_args(argv)

    model_dir = args.model_dir
    if not (model_dir / "config.json").is_file() and (model_dir / "VibeVoice-Realtime-0.5B" / "config.json").is_file():
        model_dir = model_dir / "VibeVoice-Realtime-0.5B"
    voice_file = Path(args.voice) if args.voice.endswith((".pt", ".safetensors")) else None
    voices_dir = (
        voice_file.parent if voice_file else (args.voices_dir or model_dir.parent / "voices" / "streaming_model")
    )
    cfg = EngineConfig(
        model_dir=model_dir,
        voices_dir=voices_dir,
        device=args.device,
        cfg_scale=args.cfg_scale,
        ddpm_steps=args.steps,
        latents_per_token=args.max_latents_per_token,
        max_piece_tokens=100_000,
    )
    try:
        engine = TTSEngine.load(cfg)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        voice = voice_file.stem if voice_file else engine.resolve_voice(args.voice)
        if args.max_latents is not None:
            engine.cfg.min_latents, engine.cfg.latents_per_token = args.max_latents, 0.0
        audio = engine.synthesize(args.text, voice, seed=args.seed)
    except Exception as exc:  # noqa: BLE001 - a CLI reports, it does not trace
        print(f"error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 2
    finally:
        engine.close()
    if args.out.suffix == ".npy":
        np.save(args.out, audio.astype(np.float32))
    else:
        from vibevoice_api.shared.audio import encode_audio

        args.out.write_bytes(encode_audio(audio, "wav", engine.sample_rate))
    print(f"wrote {args.out} ({audio.shape[0] / engine.sample_rate:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
