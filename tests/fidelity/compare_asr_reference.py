"""Compare our VibeVoice-ASR serving path with Microsoft's own code, token by token, on a tiny model.

Usage (see README.md here for the reference checkout and venv; ``make fidelity-asr REF=...`` does both):

    python tests/fidelity/compare_asr_reference.py --ref /work/ref --ref-python /work/refvenv-asr/bin/python

1. Our tiny original-layout writer's folder is loaded by Microsoft's ``from_pretrained``: no key may be
   missing, unexpected or of another shape (the writer writes what Microsoft's code writes).
2. Microsoft's code builds a tiny VibeVoice-ASR from that config, with weights scaled so that the audio
   matters, and saves it its own way (``save_pretrained``: sharded, index, acoustic decoder included).
3. Microsoft's processor and prompt + greedy ``generate`` transcribe a few recordings whose lengths are
   not multiples of 3200 samples (one over 60 s, where Microsoft encodes in segments), with the acoustic
   sampling noise off.
4. Our engine (the code the ASR service runs) on that folder — original layout, converted at load — and
   on the output of ``vibevoice-asr convert`` (transformers layout) must give the same prompt ids and the
   same generated tokens, request by request and batched together.

Exit status 1 on any difference. ``--show-unpadded`` also reports how many tokens transformers' own
encoding (zero-padding to a multiple of 3200 before the encoders) gets right, for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
SR = 24000


def recordings(root: Path) -> list[Path]:
    """A few deterministic recordings; none is a multiple of 3200 samples long."""
    rng = np.random.default_rng(11)
    t = lambda s: np.arange(int(s * SR)) / SR  # noqa: E731
    clips = {
        "tone-3.0s": 0.1 * np.sin(2 * np.pi * 300 * t(3.0)),
        "chirp-2.3s": 0.2 * np.sin(2 * np.pi * (200 + 400 * t(2.3)) * t(2.3)),
        "noise-1.7s": 0.05 * rng.standard_normal(int(1.7 * SR)),
        "short-0.5s": 0.3 * np.sin(2 * np.pi * 90 * t(0.5)) * np.hanning(int(0.5 * SR)),
        "long-61.3s": 0.1 * np.sin(2 * np.pi * 220 * t(61.3)) + 0.02 * rng.standard_normal(int(61.3 * SR)),
    }
    paths = []
    for name, audio in clips.items():
        path = root / f"{name}.npy"
        np.save(path, audio.astype(np.float32))
        paths.append(path)
    return paths


def ref(args: argparse.Namespace, *extra: str) -> str:
    cmd = [args.ref_python, str(HERE / "asr_ref_driver.py"), *extra, "--ref", args.ref]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def our_tokens(model_dir: Path, audios: list[Path], max_new: int, *, batched: bool, reference: bool = True):
    """Prompt ids and generated ids of our engine (what the service runs) for each recording, as the
    engine really handed them to the model (recorded at the processor) and got them back (its streamer)."""
    from vibevoice_api.asr.engine import runtime

    prompts: dict[int, list[int]] = {}
    tokens: dict[int, list[int]] = {}

    class Capture(runtime._RowStreamer):
        def end(self) -> None:
            super().end()
            for job, ids in zip(self.jobs, self.ids, strict=True):
                tokens[id(job.audio)] = list(ids)

    runtime._RowStreamer = Capture
    eng = runtime.ASREngine.load(
        runtime.EngineConfig(
            model_dir=model_dir,
            device="cpu",
            min_new_tokens=max_new,
            max_new_tokens=max_new,
            tokens_per_second=0,
            loop_detection=False,
            max_batch_size=len(audios) if batched else 1,
            max_batch_wait_ms=2000 if batched else 0,
        )
    )
    real = eng.loaded.processor

    class Recording:
        def __getattr__(self, name: str):
            return getattr(real, name)

        def __call__(self, *args, **kwargs):
            out = real(*args, **kwargs)
            for ids, mask, audio in zip(out["input_ids"], out["attention_mask"], kwargs["audio"], strict=True):
                prompts[id(audio)] = ids[mask.bool()].tolist()
            return out

    eng.loaded.processor = Recording()
    try:
        if not reference:
            del eng.loaded.model.model.get_audio_features  # back to transformers' own encoding
        clips = [np.ascontiguousarray(np.load(p), dtype=np.float32) for p in audios]

        async def go():
            if batched:
                await asyncio.gather(*(eng._collect(a, None, 0.0) for a in clips))
            else:
                for a in clips:
                    await eng._collect(a, None, 0.0)

        asyncio.run(go())
        out = [
            {"audio": p.name, "prompt": prompts[id(a)], "tokens": tokens[id(a)]}
            for p, a in zip(audios, clips, strict=True)
        ]
        return out, {eng.loaded.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
    finally:
        eng.close()
        runtime._RowStreamer = Capture.__mro__[1]


def until_eos(tokens: list[int], eos: set[int]) -> list[int]:
    for i, t in enumerate(tokens):
        if t in eos:
            return tokens[:i]
    return tokens


def compare(name: str, ours: list[dict], theirs: list[dict], eos: set[int]) -> bool:
    ok = True
    for o, r in zip(ours, theirs, strict=True):
        mine, want = o["tokens"], until_eos(r["tokens"], eos)
        same = next((i for i, (a, b) in enumerate(zip(mine, want, strict=False)) if a != b), min(len(mine), len(want)))
        match = o["prompt"] == r["prompt"] and mine == want
        ok &= match
        print(
            f"  {name:<34} {o['audio']:<14} prompt {'==' if o['prompt'] == r['prompt'] else '!='} "
            f"({len(r['prompt'])} ids)  tokens {same}/{len(want)} identical{'' if match else '  <-- DIFFERS'}"
        )
    return ok


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ref", required=True, help="exported checkout of github.com/microsoft/VibeVoice")
    ap.add_argument("--ref-python", required=True, help="python of a venv with transformers>=4.51.3,<5 and torch")
    ap.add_argument("--max-new-tokens", type=int, default=60)
    ap.add_argument("--show-unpadded", action="store_true")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (for a closer look)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        os.environ["VIBEVOICE_CONVERTED_DIR"] = str(root / "converted-cache")
        subprocess.run([str(BIN / "python"), "-m", "vibevoice_api.asr.engine.tiny", str(root / "ours")], check=True)
        ours_dir = root / "ours" / "VibeVoice-ASR"
        info = json.loads(ref(args, "check", str(ours_dir)))
        bad = {k: v for k, v in info.items() if v}
        print(f"1. Microsoft's from_pretrained on our tiny original-layout folder: {bad or 'every key, right shapes'}")
        ms_dir = root / "ms" / "VibeVoice-ASR"
        built = json.loads(
            ref(
                args,
                "build",
                str(ms_dir),
                "--config",
                str(ours_dir / "config.json"),
                "--tokenizer",
                str(ours_dir / "tokenizer"),
            )
        )
        print(f"2. Microsoft's code built and saved a tiny VibeVoice-ASR: {len(built['shards'])} shards + index")
        audios = recordings(root)
        ref(
            args,
            "transcribe",
            str(ms_dir),
            "--audio",
            *map(str, audios),
            "--out",
            str(root / "ref.json"),
            "--max-new-tokens",
            str(args.max_new_tokens),
        )
        theirs = json.loads((root / "ref.json").read_text())
        print(
            f"3. Microsoft's processor + greedy generate: {len(theirs)} recordings, up to {args.max_new_tokens} tokens"
        )
        converted = root / "converted"
        subprocess.run([str(BIN / "vibevoice-asr"), "convert", str(ms_dir), str(converted)], check=True)
        print("4. Ours (the ASR service's engine):")
        ok = not bad
        for name, folder, batched in (
            ("original layout, converted at load", ms_dir, False),
            ("`vibevoice-asr convert` output", converted, False),
            ("original layout, all in one batch", ms_dir, True),
        ):
            mine, eos = our_tokens(folder, audios, args.max_new_tokens, batched=batched)
            ok &= compare(name, mine, theirs, eos)
            (root / f"ours-{len(name)}.json").write_text(json.dumps(mine))
        if args.show_unpadded:
            mine, eos = our_tokens(ms_dir, audios, args.max_new_tokens, batched=False, reference=False)
            print("   for comparison, transformers' own encoding (samples zero-padded to a multiple of 3200):")
            compare("transformers' padding", mine, theirs, eos)
    print("IDENTICAL" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
