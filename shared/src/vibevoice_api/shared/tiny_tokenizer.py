"""An offline stand-in for the Qwen2.5 tokenizer, for tiny test models (no hub access needed).

A byte-level BPE trained on a few strings with Qwen2.5's special tokens, wrapped as transformers'
``Qwen2TokenizerFast``: every byte sequence is encodable, and the special tokens the VibeVoice models
and processors look up exist. Needs ``tokenizers`` and ``transformers`` (both services have them).
"""

from __future__ import annotations

from typing import Any

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
    "<|image_pad|>", "<|video_pad|>",
]  # fmt: skip

CORPUS = [
    '[{"Start": 0.0, "End": 7.56, "Speaker": 0, "Content": "Hello and welcome to the meeting."},',
    ' {"Start": 7.56, "End": 12.2, "Speaker": 1, "Content": "Thanks, glad to be here today."}]',
    "You are a helpful assistant that transcribes audio input into text output in JSON format.",
    "This is a 12.34 seconds audio, please transcribe it with these keys: Start time, End time, Speaker ID, Content",
    "with extra info: The speech is in English. Translate the speech into English.",
    "system user assistant 0123456789 . , ! ? the quick brown fox jumps over the lazy dog",
    "Speech synthesis reads sentences aloud. How are you? I am fine, thank you!",
    "Guten Tag. Bonjour. Hola. 안녕하세요. こんにちは。 你好。",
]

QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def build_tokenizer(vocab_size: int = 600) -> Any:
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    # Qwen2's normaliser and pre-tokenizer (digits one by one), written into tokenizer.json: every
    # tokenizer class and transformers version that reads the file splits text the way Qwen2.5 does.
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    return Qwen2TokenizerFast(
        tokenizer_object=tok,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        additional_special_tokens=SPECIAL_TOKENS[1:],
    )
