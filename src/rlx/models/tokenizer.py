"""A character-level tokenizer made locally, as a Hugging Face `PreTrainedTokenizerFast`.

Every printable ASCII character and newline is one token; anything else maps to <unk>. It saves
and loads with `save_pretrained` / `AutoTokenizer.from_pretrained` like any HF tokenizer, so the
tiny models use the same code path as real ones. No download, no training.
"""

from __future__ import annotations

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

__all__ = ["char_tokenizer", "SPECIAL_TOKENS"]

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
