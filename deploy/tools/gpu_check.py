"""GPU smoke check: both engines on this machine's GPU, once per usable attention implementation.

    python deploy/tools/gpu_check.py                      # tiny random models, written to a temp folder
    python deploy/tools/gpu_check.py --model-dir /models  # the real weights (VIBEVOICE_MODEL_DIR layout)
    python deploy/tools/gpu_check.py --cpu                # the same steps on the CPU in float32 (a dry run)

For each attention implementation the GPU can run (eager, sdpa, and flash_attention_2 where
``choose_attention`` allows it) it loads the TTS engine, speaks one sentence, then loads the ASR engine and
transcribes that speech, printing attention, dtype, peak GPU memory, time to first audio and the real-time
factor. Exit status: 0 when every run worked, 1 when one failed or no GPU is visible (without ``--cpu``).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SENTENCE = "Hello from the GPU check. This sentence is spoken first, then transcribed again."


def attention_candidates(device: Any, dtype: str) -> list[str]:
    from vibevoice_api.shared.model_files import flash_attention_problem, flash_attn_importable

    out = ["eager", "sdpa"]
    if device.type == "cuda":
        import torch

        cc = torch.cuda.get_device_capability(device)
        problem = flash_attention_problem("cuda", cc, dtype, flash_attn_importable(), auto=False)
        if problem is None:
            out.append("flash_attention_2")
        else:
            print(f"  flash_attention_2 skipped: {problem}")
    return out


class Meter:
    """Peak GPU memory of one step (host side: not measured)."""

    def __init__(self, device: Any) -> None:
        self.device = device

    def __enter__(self) -> Meter:
        import torch

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def peak(self) -> str:
        import torch

        if self.device.type != "cuda":
            return "peak n/a (CPU)"
        return f"peak {torch.cuda.max_memory_allocated(self.device) / 1024**3:.2f} GiB"


def run_tts(models: Path, device: Any, dtype: str, attn: str, tiny: bool) -> tuple[Any, str]:
    import numpy as np
    from vibevoice_api.tts.engine import EngineConfig, TTSEngine

    extra = {"latents_per_token": 1.5, "min_latents": 12} if tiny else {}
    with Meter(device) as meter:
        engine = TTSEngine.load(
            EngineConfig(
                model_dir=models / "VibeVoice-Realtime-0.5B",
                voices_dir=models / "voices" / "streaming_model",
                device=str(device),
                dtype=dtype,
                attn_implementation=attn,
                **extra,
            )
        )
        try:
            if not engine.voices:
                raise RuntimeError(f"no voice presets in {models / 'voices' / 'streaming_model'}")
            voice = next((v for v in sorted(engine.voices) if v.startswith("en-")), sorted(engine.voices)[0])
            engine.warmup()

            async def speak() -> tuple[float, list[Any]]:
                chunks: list[Any] = []
                first = 0.0
                started = time.perf_counter()
                async for chunk in engine.stream(SENTENCE, voice, seed=0):
                    if not chunks:
                        first = time.perf_counter() - started
                    chunks.append(chunk)
                return first, chunks

            started = time.perf_counter()
            first, chunks = asyncio.run(speak())
            elapsed = time.perf_counter() - started
            audio = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)
            seconds = audio.shape[0] / engine.sample_rate
            used = engine.loaded.attention
        finally:
            engine.close()
        rtf = elapsed / seconds if seconds else float("inf")
        line = (
            f"tts  {used:<18} {dtype:<9} {meter.peak():<22} first audio {first:.3f} s  RTF {rtf:.3f} "
            f"({seconds:.1f} s of audio, voice {voice})"
        )
    return audio, line


def run_asr(models: Path, device: Any, dtype: str, attn: str, tiny: bool, audio: Any) -> str:
    from vibevoice_api.asr.engine import ASREngine, EngineConfig

    extra = {"min_new_tokens": 32, "tokens_per_second": 4.0} if tiny else {}
    with Meter(device) as meter:
        engine = ASREngine.load(
            EngineConfig(
                model_dir=models / "VibeVoice-ASR", device=str(device), dtype=dtype, attn_implementation=attn, **extra
            )
        )
        try:
            engine.warmup()
            started = time.perf_counter()
            segments = asyncio.run(engine.transcribe(audio))
            elapsed = time.perf_counter() - started
            used = engine.loaded.attention
        finally:
            engine.close()
        seconds = audio.shape[0] / 24000
        text = " ".join(s.text for s in segments).strip() if not tiny else "(random weights: not words)"
        return (
            f"asr  {used:<18} {dtype:<9} {meter.peak():<22} RTF {elapsed / seconds:.3f} "
            f"({seconds:.1f} s of audio) text: {text[:70]!r}"
        )


def write_tiny(folder: Path) -> Path:
    from vibevoice_api.asr.engine.tiny import write_tiny_asr_model
    from vibevoice_api.tts.engine.tiny import write_tiny_realtime_model, write_tiny_voice_presets

    write_tiny_asr_model(folder / "VibeVoice-ASR", layout="hf")
    tts = write_tiny_realtime_model(folder / "VibeVoice-Realtime-0.5B")
    write_tiny_voice_presets(tts, folder / "voices" / "streaming_model")
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", type=Path, help="real models (VIBEVOICE_MODEL_DIR layout); default: tiny ones")
    ap.add_argument("--cpu", action="store_true", help="dry run on the CPU in float32 when there is no GPU")
    args = ap.parse_args(argv)

    import torch

    if torch.cuda.is_available():
        device = torch.device("cuda", 0)
        dtype = "bfloat16"
        props = torch.cuda.get_device_properties(device)
        print(
            f"GPU: {props.name}, compute capability {props.major}.{props.minor}, "
            f"{props.total_memory / 1024**3:.1f} GiB; torch {torch.__version__}, CUDA {torch.version.cuda}"
        )
    elif args.cpu:
        device = torch.device("cpu")
        dtype = "float32"
        print(f"No GPU: dry run on the CPU in float32 (torch {torch.__version__}).")
    else:
        print(
            f"No NVIDIA GPU is visible to this process (torch {torch.__version__}, "
            f"CUDA build: {torch.version.cuda or 'none, this is a CPU build of torch'}). gpu-check needs a GPU; "
            "`--cpu` runs the same steps on the CPU as a dry run.",
            file=sys.stderr,
        )
        return 1

    failures = 0
    with tempfile.TemporaryDirectory(prefix="vibevoice-gpu-check-") as tmp:
        tiny = args.model_dir is None
        models = write_tiny(Path(tmp)) if tiny else args.model_dir
        print(f"models: {'tiny random models' if tiny else models}")
        for attn in attention_candidates(device, dtype):
            try:
                audio, line = run_tts(models, device, dtype, attn, tiny)
                print(line, flush=True)
                print(run_asr(models, device, dtype, attn, tiny, audio), flush=True)
            except Exception as exc:  # noqa: BLE001 - every failure is reported, the others still run
                failures += 1
                print(f"FAILED with {attn}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    print("gpu-check: all runs worked" if not failures else f"gpu-check: {failures} run(s) failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
