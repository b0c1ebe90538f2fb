"""Run Microsoft's VibeVoice-Realtime reference on a model folder and save the waveform (.npy).

Executed by compare_reference.py with the *reference* venv's python (transformers 4.51.3), with the
fetched reference checkout on ``--ref``; nothing of the reference is part of this project.
"""

import argparse
import copy
import sys

import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--ref", required=True)
ap.add_argument("--model-dir", required=True)
ap.add_argument("--voice", required=True)
ap.add_argument("--text", required=True)
ap.add_argument("--seed", type=int, default=42)
ap.add_argument("--cfg-scale", type=float, default=1.5)
ap.add_argument("--steps", type=int, default=5)
ap.add_argument("--max-new-tokens", type=int, required=True)
ap.add_argument("--out", required=True)
args = ap.parse_args()
sys.path.insert(0, args.ref)

from vibevoice.modular.modeling_vibevoice_streaming_inference import (  # noqa: E402
    VibeVoiceStreamingForConditionalGenerationInference,
)
from vibevoice.modular.modular_vibevoice_text_tokenizer import VibeVoiceTextTokenizerFast  # noqa: E402
from vibevoice.processor.vibevoice_streaming_processor import VibeVoiceStreamingProcessor  # noqa: E402

# Our tiny tokenizer files are written by transformers 5; build the 4.51 class straight from tokenizer.json.
tokenizer = VibeVoiceTextTokenizerFast(
    tokenizer_file=args.model_dir + "/tokenizer/tokenizer.json", eos_token="<|endoftext|>", pad_token="<|endoftext|>"
)
processor = VibeVoiceStreamingProcessor(tokenizer=tokenizer)
model = VibeVoiceStreamingForConditionalGenerationInference.from_pretrained(
    args.model_dir, torch_dtype=torch.float32, device_map="cpu", attn_implementation="sdpa"
).eval()
model.set_ddpm_inference_steps(num_steps=args.steps)
prefilled = torch.load(args.voice, map_location="cpu", weights_only=False)  # our own test file, not untrusted
text = args.text.replace("’", "'").replace("“", '"').replace("”", '"')
inputs = processor.process_input_with_cached_prompt(
    text=text, cached_prompt=prefilled, padding=True, return_tensors="pt", return_attention_mask=True
)
torch.manual_seed(args.seed)
out = model.generate(
    **inputs,
    max_new_tokens=args.max_new_tokens,
    cfg_scale=args.cfg_scale,
    tokenizer=processor.tokenizer,
    generation_config={"do_sample": False},
    verbose=False,
    show_progress_bar=False,
    all_prefilled_outputs=copy.deepcopy(prefilled),
)
np.save(args.out, out.speech_outputs[0].reshape(-1).float().numpy())
print("reference samples", out.speech_outputs[0].numel())
