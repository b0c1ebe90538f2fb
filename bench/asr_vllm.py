"""ASR on vLLM vs ASR on transformers, side by side in one run: 8 concurrent requests, same model, same audio,
same token budget; wall time of each backend and their ratio, plus one request alone; and whether the two
backends wrote the same transcripts (greedy).

Default: a mid-size random VibeVoice-ASR (transformers layout, written by our tiny writer) and a local vLLM
server from `.cache/vllm-venv` (CPU build here; the CUDA build on a machine with `nvidia-smi`). On a GPU with
real weights: `--model-dir /models/VibeVoice-ASR --device cuda` (original layout is converted once), or
`--vllm-url` for a vLLM server already running (e.g. the compose `vllm` service). Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from asr_rtf import speechlike
from common import ROOT, free_port

sys.path.insert(0, str(ROOT / "deploy" / "local"))
import vllm_server  # deploy/local/vllm_server.py: the launcher `make run ASR_BACKEND=vllm` uses


async def _timed(eng, clips: list[np.ndarray]) -> tuple[float, list]:
    t0 = time.perf_counter()
    out = await asyncio.gather(*(eng.transcribe(c) for c in clips))
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model-dir", type=Path, default=None, help="VibeVoice-ASR folder with real weights")
    ap.add_argument("--device", default="auto", help="the transformers backend's device")
    ap.add_argument("--size", default="mid", choices=("tiny", "mid"))
    ap.add_argument("--requests", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=8.0, help="length of each request's audio")
    ap.add_argument("--new-tokens", type=int, default=96, help="token budget of every request")
    ap.add_argument("--vllm-url", default=None, help="use this vLLM server instead of starting one")
    args = ap.parse_args()
    from vibevoice_api.asr.engine import ASREngine, EngineConfig
    from vibevoice_api.asr.engine.vllm_backend import connect

    out: dict = {"requests": args.requests, "audio_seconds_each": args.seconds, "new_tokens_each": args.new_tokens}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model_dir
        if folder is None:
            from vibevoice_api.asr.engine.tiny import write_tiny_asr_model

            folder = write_tiny_asr_model(Path(tmp) / "VibeVoice-ASR", layout="hf", size=args.size)
        folder = vllm_server.transformers_layout(folder)
        server = None
        url = args.vllm_url
        if url is None:
            port = free_port()
            log = open(Path(tmp) / "vllm.log", "wb")  # noqa: SIM115 - the server writes it until stopped
            server = vllm_server.start(folder, port, max_num_seqs=max(8, args.requests), stdout=log)
            url = f"http://127.0.0.1:{port}"
        # A fixed budget (random weights do not stop on their own); no loop recovery, so both do the same work.
        cfg = dict(
            model_dir=folder,
            device=args.device,
            min_new_tokens=args.new_tokens,
            tokens_per_second=0.0001,
            max_batch_size=args.requests,
            max_batch_wait_ms=200,
            loop_detection=False,
        )
        try:
            hf = ASREngine.load(EngineConfig(**cfg))
            vl = ASREngine(EngineConfig(**cfg), backend=connect(folder, url, "vibevoice-asr", wait_seconds=900))
            clips = [speechlike(args.seconds, seed=i) for i in range(args.requests)]
            for eng in (hf, vl):
                eng.warmup()
                asyncio.run(_timed(eng, clips[:1]))  # first real request: caches, allocator, graphs
            solo_hf, _ = asyncio.run(_timed(hf, clips[:1]))
            solo_vl, _ = asyncio.run(_timed(vl, clips[:1]))
            many_hf, text_hf = asyncio.run(_timed(hf, clips))
            many_vl, text_vl = asyncio.run(_timed(vl, clips))
            out["one_request"] = {
                "transformers_s": round(solo_hf, 2),
                "vllm_s": round(solo_vl, 2),
                "speedup": round(solo_hf / solo_vl, 2),
            }
            out[f"{args.requests}_concurrent"] = {
                "transformers_s": round(many_hf, 2),
                "vllm_s": round(many_vl, 2),
                "speedup": round(many_hf / many_vl, 2),
            }
            out["identical_transcripts"] = text_hf == text_vl
            hf.close()
            vl.close()
        finally:
            if server is not None:
                server.terminate()
                server.wait(60)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
