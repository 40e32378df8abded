"""Tiny random models for rollout tests; an optional logit bias on EOS makes completions end."""

from __future__ import annotations

import torch

from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer

EOS = 2


def tiny_model(eos_bias: float = 0.0, seed: int = 0, layers: int = 2, width: int = 32):
    """A float32 Llama with a char tokenizer; `eos_bias` is added to the EOS logit through an lm_head bias."""
    tok = char_tokenizer()
    cfg = TinyModelConfig(hidden_size=width, num_layers=layers, num_heads=4, num_kv_heads=2,
                          intermediate_size=2 * width, max_position=64)
    model = build_tiny_model(cfg, tok, seed=seed).eval()
    if eos_bias:
        head = torch.nn.Linear(width, len(tok), bias=True)
        with torch.no_grad():
            head.weight.copy_(model.lm_head.weight)
            head.bias.zero_()
            head.bias[EOS] = eos_bias
        model.lm_head = head
    return model, tok


PROMPTS = ["12+34=", "5*6=", "100-7=", "9="]  # different lengths -> left padding


def teacher_forced_logprobs(model, gen, temperature: float = 1.0) -> torch.Tensor:
    """log_softmax(logits / temperature) of the completion tokens from one full forward pass.  [N, T]"""
    ids = torch.cat([gen.prompt_ids, gen.completion_ids], 1)
    mask = torch.cat([gen.prompt_mask, gen.completion_mask], 1).long()
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits.float()
    p = gen.prompt_ids.shape[1]
    logits = logits[:, p - 1 : -1] / temperature  # position j predicts token j + 1
    lp = logits.log_softmax(-1).gather(2, gen.completion_ids.unsqueeze(2)).squeeze(2)
    return lp.masked_fill(~gen.completion_mask, 0.0)
