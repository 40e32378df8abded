"""A character-level tokenizer made locally, as a Hugging Face `PreTrainedTokenizerFast`.

Every printable ASCII character and newline is one token; anything else maps to <unk>. It saves
and loads with `save_pretrained` / `AutoTokenizer.from_pretrained` like any HF tokenizer, so the
tiny models use the same code path as real ones. No download, no training.
"""

from __future__ import annotations

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

__all__ = ["char_tokenizer", "SPECIAL_TOKENS", "prompt_completion_rows", "encode_prompt", "left_pad"]

SPECIAL_TOKENS = ("<pad>", "<s>", "</s>", "<unk>")  # ids 0, 1, 2, 3


def char_tokenizer() -> PreTrainedTokenizerFast:
    """Pad 0, BOS 1, EOS 2, UNK 3, then ' ' .. '~' and '\\n' (100 tokens in all)."""
    chars = [chr(i) for i in range(32, 127)] + ["\n"]
    vocab = {tok: i for i, tok in enumerate(list(SPECIAL_TOKENS) + chars)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tok.padding_side = "left"
    return tok


def encode_prompt(tokenizer, text: str) -> list[int]:
    """A prompt's token ids as the rollout engines, evaluation and SFT all see them: with the tokenizer's own
    special tokens (BOS for Llama-style tokenizers), but one BOS only where the text already starts with
    it (chat templates such as Llama-3's and Gemma's write it into the text, and tokenizing that text adds
    another)."""
    ids = tokenizer(text)["input_ids"]
    bos = tokenizer.bos_token_id
    if bos is not None and len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
        ids = ids[1:]
    return ids


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of token ids left-padded into (ids [B, P] long, mask [B, P] bool)."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        if r:
            ids[i, width - len(r):] = torch.tensor(r, dtype=torch.long)
            mask[i, width - len(r):] = True
    return ids, mask


def prompt_completion_rows(tokenizer, prompts: list[str], completions: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """Token ids of prompt + completion + EOS per row, and labels: -100 on the prompt, the ids on the rest.
    The prompt is encoded exactly as the rollout engines encode it (`encode_prompt`), so SFT trains on the
    token sequences RL later samples from."""
    ids, labels = [], []
    for p, c in zip(prompts, completions):
        p_ids = encode_prompt(tokenizer, p)
        c_ids = tokenizer(c, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        ids.append(p_ids + c_ids)
        labels.append([-100] * len(p_ids) + c_ids)
    return ids, labels
