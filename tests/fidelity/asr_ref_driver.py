"""Microsoft's VibeVoice-ASR code on tiny models: build + save one, check a folder loads, greedy-decode.

Executed by compare_asr_reference.py with the *reference* venv's python (transformers 4.57), with the
fetched reference checkout on ``--ref``; nothing of the reference is part of this project.

    build DIR --config CONFIG --tokenizer TOKDIR   Microsoft's VibeVoiceASRForConditionalGeneration from
                                                   CONFIG (Microsoft's format), audible weights, saved
                                                   with its save_pretrained (sharded, decoder included)
    check DIR                                      load DIR with Microsoft's from_pretrained; print the
                                                   missing / unexpected / mismatched keys as JSON
    transcribe DIR --audio A.npy... --out OUT      Microsoft's processor + greedy generate (acoustic
                                                   sampling noise off); prompt and new token ids as JSON
"""

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("mode", choices=("build", "check", "transcribe"))
ap.add_argument("dir")
ap.add_argument("--ref", required=True)
ap.add_argument("--config")
ap.add_argument("--tokenizer")
ap.add_argument("--audio", nargs="*", default=[])
ap.add_argument("--max-new-tokens", type=int, default=60)
ap.add_argument("--seed", type=int, default=7)
ap.add_argument("--out")
args = ap.parse_args()
sys.path.insert(0, args.ref)

from vibevoice.modular.configuration_vibevoice import VibeVoiceASRConfig  # noqa: E402
from vibevoice.modular.modeling_vibevoice_asr import VibeVoiceASRForConditionalGeneration  # noqa: E402
from vibevoice.modular.modular_vibevoice_text_tokenizer import VibeVoiceASRTextTokenizerFast  # noqa: E402
from vibevoice.processor.vibevoice_asr_processor import VibeVoiceASRProcessor  # noqa: E402


def audible(model, seed):
    """Same idea as our tiny writer, by Microsoft's module names: unit-gain audio path and LM."""
    gen = torch.Generator().manual_seed(seed)
    inner = model.model
    audio_path = (
        inner.acoustic_tokenizer.encoder,
        inner.semantic_tokenizer.encoder,
        inner.acoustic_connector,
        inner.semantic_connector,
    )
    with torch.no_grad():
        for part in audio_path:
            for mod in part.modules():
                if isinstance(mod, (torch.nn.Conv1d, torch.nn.Linear)):
                    mod.weight.copy_(torch.randn(mod.weight.shape, generator=gen) / math.sqrt(mod.weight[0].numel()))
            for name, p in part.named_parameters():
                if name.endswith("gamma"):
                    p.copy_(0.5 + 0.1 * torch.randn(p.shape, generator=gen))
        gain = 1 / math.sqrt(model.config.decoder_config.hidden_size)
        for p in [*inner.language_model.parameters(), *model.lm_head.parameters()]:
            if p.dim() == 2:
                p.copy_(gain * torch.randn(p.shape, generator=gen))
        for name, p in model.named_parameters():
            if p.dim() == 1 and not name.endswith("gamma"):
                p.add_(0.02 * torch.randn(p.shape, generator=gen))


if args.mode == "build":
    torch.manual_seed(args.seed)
    cfg = json.loads(Path(args.config).read_text())
    config = VibeVoiceASRConfig(**{k: v for k, v in cfg.items() if k not in ("architectures", "model_type")})
    model = VibeVoiceASRForConditionalGeneration(config).eval()
    audible(model, args.seed)
    model.save_pretrained(args.dir, max_shard_size="5MB")  # several shards + index, as the 17 GB original
    shutil.copytree(args.tokenizer, Path(args.dir) / "tokenizer", dirs_exist_ok=True)
    print(json.dumps({"shards": sorted(p.name for p in Path(args.dir).glob("*.safetensors"))}))
elif args.mode == "check":
    _, info = VibeVoiceASRForConditionalGeneration.from_pretrained(
        args.dir, output_loading_info=True, dtype=torch.float32
    )
    print(json.dumps({k: sorted(map(str, v)) for k, v in info.items()}))
else:
    tokenizer = VibeVoiceASRTextTokenizerFast(tokenizer_file=str(Path(args.dir) / "tokenizer" / "tokenizer.json"))
    processor = VibeVoiceASRProcessor(tokenizer=tokenizer)
    model = VibeVoiceASRForConditionalGeneration.from_pretrained(
        args.dir, dtype=torch.float32, attn_implementation="sdpa"
    ).eval()
    model.model.acoustic_tokenizer.std_dist_type = "none"  # no σ-VAE noise: outputs are compared
    results = []
    for path in args.audio:
        audio = np.load(path)
        inputs = processor(audio=audio, sampling_rate=24000, return_tensors="pt", padding=True)
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=args.max_new_tokens,
                do_sample=False,
                pad_token_id=processor.pad_id,
                eos_token_id=tokenizer.eos_token_id,
            )
        prompt = inputs["input_ids"][0].tolist()
        results.append({"audio": Path(path).name, "prompt": prompt, "tokens": out[0, len(prompt) :].tolist()})
    Path(args.out).write_text(json.dumps(results))
    print(json.dumps([{"audio": r["audio"], "tokens": len(r["tokens"])} for r in results]))
