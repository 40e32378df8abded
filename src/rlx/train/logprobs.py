"""Trainer-side scoring of sampled tokens: log pi(y_t | x, y_<t) and token entropies.

Prompts are left-padded and completions right-padded (see `rlx.types.Generation`). Position ids
come from the attention mask (cumsum - 1), the same convention the rollout engine uses, so on the
same weights trainer and engine log-probs agree to float precision (mismatch KL ~ 0).
"""

from __future__ import annotations

import torch

__all__ = ["sequence_logprobs"]


def sequence_logprobs(
    model,
    prompt_ids: torch.Tensor,  # [N, P]
    prompt_mask: torch.Tensor,  # [N, P] bool
    completion_ids: torch.Tensor,  # [N, T]
    completion_mask: torch.Tensor,  # [N, T] bool
    with_entropy: bool = False,
    entropy_grad: bool = False,
    value_head: torch.nn.Module | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Return (logprobs [N, T], entropies [N, T] or None, values [N, T] or None), float32, 0 on padding.

    Entropies carry gradient only with `entropy_grad` (an entropy bonus); otherwise they are a metric.
    `value_head` maps the last hidden state at the position that predicts token t to V(s_t) (PPO).
    """
    input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
    attention = torch.cat([prompt_mask, completion_mask], dim=1).long()
    position_ids = (attention.cumsum(dim=1) - 1).clamp_min(0)
    t = completion_ids.shape[1]
    # logits at position P-1+j predict completion token j; keep only those T positions (+1 trailing)
    out = model(input_ids=input_ids, attention_mask=attention, position_ids=position_ids, logits_to_keep=t + 1,
                use_cache=False, output_hidden_states=value_head is not None)
    logits = out.logits[:, :-1].float()  # [N, T, V]
    logp_all = torch.log_softmax(logits, dim=-1)
    logprobs = logp_all.gather(-1, completion_ids.unsqueeze(-1)).squeeze(-1)
    logprobs = torch.where(completion_mask, logprobs, torch.zeros_like(logprobs))
    entropies = None
    if with_entropy:  # a metric by default: no autograd graph over [N, T, V] unless the loss uses it
        with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
            entropies = -(logp_all.exp() * logp_all).sum(-1)
            entropies = torch.where(completion_mask, entropies, torch.zeros_like(entropies))
    values = None
    if value_head is not None:
        hidden = out.hidden_states[-1][:, -(t + 1):-1]  # [N, T, H]
        values = value_head(hidden.to(next(value_head.parameters()).dtype)).squeeze(-1).float()
        values = torch.where(completion_mask, values, torch.zeros_like(values))
    return logprobs, entropies, values
