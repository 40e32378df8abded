"""A lean, differentiable forward for the update: the logits that predict each completion token.

Why: at the RLVR default (a 1M-parameter model, 32 sequences of ~10 tokens) the update's forward and
backward through the generic Hugging Face module spent about half their time in Python around small
ops (output dataclasses, mask construction, per-projection matmuls, cache objects). This is the
same arithmetic as `LlamaForCausalLM` / `Qwen2ForCausalLM` with autograd, reading (and training)
the module's own parameters, in fewer and larger ops:

- **one packed token stream.** The B distinct prompts ([B, P], left-padded) and the completion
  tokens that predict a valid next token (not padding, not the last valid token) are flattened into
  one [B*P + C, H] matrix, so every per-token op (norms, q/k/v, o, gate/up, down) is one call for
  prompts and completions together and none is spent on positions the loss masks out (at the
  default recipe C is ~60% of N*T);
- **each group's prompt runs once.** Only attention is split: prompt queries attend causally to
  their own (non-padding) prompt keys; completion queries attend to their group's prompt keys
  (repeated G times, so gradients of all G completions flow into the one prompt pass) and causally
  to their own completion keys (attention alone unpacks completions to [N, T-1]). With G = 1 this
  is the plain full forward;
- q/k/v and gate/up as one matmul each (`fused_layer_weights`, concatenated inside the graph, so
  the gradient reaches the separate `nn.Linear` weights);
- only the N + C positions that predict a valid completion token go through the final norm and
  `lm_head` (and, in `sequence_logprobs`, the log-softmax).

Positions follow the trainer/engine convention: prompt positions `cumsum(mask) - 1`, completion
token j at `len(prompt) + j`. Padding keys inside a completion (after EOS) are never seen by a
valid query (they come after it); they are zeros here, since padding is never fed.

Used by `rlx.train.logprobs.sequence_logprobs` wherever it is exact (`train_path_blocker` is None):
the rollout fast path's conditions (Llama/Qwen2 with plain `nn.Linear` projections, SiLU, no
sliding window or length-dependent rope), no attention dropout in training mode, and a right-padded
completion mask (`is_prefix_mask`). LoRA, FP8
fake-quant and other wrapped models run the generic HF forward. tests/train/test_fast_logits.py
checks values and gradients against the HF forward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rlx.rollout.fast import fast_path_blocker, fused_layer_weights, rms_norm, rope_tables, swiglu_mlp

__all__ = ["train_path_blocker", "is_prefix_mask", "packed_completion_logits", "completion_logits"]


def train_path_blocker(model: nn.Module) -> str | None:
    """None when `completion_logits` reproduces `model`'s training forward; else the reason it does not."""
    reason = fast_path_blocker(model)
    if reason is not None:
        return reason
    if model.training and getattr(model.config, "attention_dropout", 0.0) > 0:
        return "attention dropout in training mode"
    return None


def _attention_masks(prompt_mask: torch.Tensor, t: int, group_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean masks (True = attend): prompts [B, 1, P, P], completion inputs [N, 1, t, P + t]."""
    b, p = prompt_mask.shape
    dev = prompt_mask.device
    causal = torch.ones(p, p, dtype=torch.bool, device=dev).tril_()
    eye = torch.eye(p, dtype=torch.bool, device=dev)  # a padding query sees itself (no all-masked row)
    prompt = ((causal & prompt_mask[:, None, :]) | eye).unsqueeze(1)
    n = b * group_size
    keys = prompt_mask.repeat_interleave(group_size, 0)[:, None, None, :].expand(n, 1, t, p)
    own = torch.ones(t, t, dtype=torch.bool, device=dev).tril_().expand(n, 1, t, t)
    return prompt, torch.cat([keys, own], dim=-1)


def is_prefix_mask(mask: torch.Tensor) -> bool:
    """True when every row of a [N, T] bool mask is True then False (right padding, no holes)."""
    return bool((mask[:, 1:] <= mask[:, :-1]).all())


def packed_completion_logits(
    model: nn.Module,
    prompt_ids: torch.Tensor,  # [N, P] left-padded; rows in contiguous groups of G identical prompts
    prompt_mask: torch.Tensor,  # [N, P] bool
    completion_ids: torch.Tensor,  # [N, T] right-padded
    completion_mask: torch.Tensor,  # [N, T] bool, a prefix mask (see is_prefix_mask)
    group_size: int = 1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits [R, V], where [R]): logits predicting completion token (i, j) at flat index where = i*T + j.

    R = N + (number of valid completion tokens after the first in each row): column 0 of every row,
    then every valid token j >= 1. Only the completion tokens that predict a valid token are fed in
    (the last valid token and the padding never are), so no FLOPs go to positions the loss masks out.
    """
    inner, cfg = model.model, model.config
    n, p = prompt_ids.shape
    t = completion_ids.shape[1]
    g = group_size
    b = n // g
    a0 = inner.layers[0].self_attn
    d, hq, hk = a0.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    eps, scale, gqa = cfg.rms_norm_eps, a0.scaling, hq != hk
    inter = inner.layers[0].mlp.gate_proj.out_features
    dev = prompt_ids.device

    p_ids, p_mask = prompt_ids[::g], prompt_mask[::g]  # [B, P]
    p_pos = (p_mask.long().cumsum(-1) - 1).clamp_min(0)  # [B, P]
    ti = t - 1  # completion inputs: token j feeds the prediction of token j + 1
    feed = completion_mask[:, 1:].reshape(-1).nonzero().squeeze(1)  # [C] flat indices into [N, ti]
    c_ids = completion_ids[:, :-1].reshape(-1)[feed]
    c_pos = (p_mask.sum(-1, keepdim=True) + torch.arange(ti, device=dev)).repeat_interleave(g, 0).reshape(-1)[feed]
    pos = torch.cat([p_pos.reshape(-1), c_pos])  # [M], M = B*P + C
    cos, sin = rope_tables(model, int(pos.max()) + 1)
    cos, sin = cos[pos].unsqueeze(1), sin[pos].unsqueeze(1)  # [M, 1, D]
    prompt_att, comp_att = _attention_masks(p_mask, ti, g)

    h = inner.embed_tokens(torch.cat([p_ids.reshape(-1), c_ids]))  # [M, H]
    mp, c = b * p, feed.numel()  # prompt rows, completion rows of h

    def heads(x, rows, length):  # [rows*length, H, D] -> [rows, H, length, D]
        return x.view(rows, length, x.shape[1], d).transpose(1, 2)

    full = c == n * ti  # every row fills T: the packed order is the padded one, no scatter/gather needed

    def unpack(x):  # [C, H, D] -> [N, H, ti, D], zeros where no token is fed
        return heads(x if full else x.new_zeros(n * ti, x.shape[1], d).index_copy(0, feed, x), n, ti)

    for layer in inner.layers:
        w = fused_layer_weights(layer)
        qkv = F.linear(rms_norm(h, w["ln1"], eps), w["wqkv"], w["bqkv"]).view(-1, hq + 2 * hk, d)
        qk, v = qkv.split((hq + hk, hk), dim=1)
        qk = qk * cos + qk.roll(d // 2, dims=-1) * sin  # rotary on queries and keys at once
        q, k = qk.split((hq, hk), dim=1)
        qp, kp, vp = heads(q[:mp], b, p), heads(k[:mp], b, p), heads(v[:mp], b, p)
        att = F.scaled_dot_product_attention(qp, kp, vp, attn_mask=prompt_att, scale=scale, enable_gqa=gqa)
        att = att.transpose(1, 2).reshape(mp, hq * d)
        if c:
            keys = torch.cat([kp.repeat_interleave(g, 0), unpack(k[mp:])], dim=2)  # [N, Hk, P + ti, D]
            vals = torch.cat([vp.repeat_interleave(g, 0), unpack(v[mp:])], dim=2)
            att_c = F.scaled_dot_product_attention(unpack(q[mp:]), keys, vals, attn_mask=comp_att, scale=scale,
                                                   enable_gqa=gqa)
            att_c = att_c.transpose(1, 2).reshape(n * ti, hq * d)
            att = torch.cat([att, att_c if full else att_c[feed]])
        h = h + F.linear(att, w["wo"], w["bo"])
        h = h + swiglu_mlp(rms_norm(h, w["ln2"], eps), w, inter)

    last_prompt = h[:mp].view(b, p, -1)[:, -1].repeat_interleave(g, 0)  # [N, H] predicts token 0
    hidden = torch.cat([last_prompt, h[mp:]])  # [N + C, H]
    rows, cols = (feed // ti, feed % ti + 1) if ti else (feed, feed)  # input j of row i predicts token j + 1
    where = torch.cat([torch.arange(n, device=dev) * t, rows * t + cols])
    return model.lm_head(rms_norm(hidden, inner.norm.weight, eps)), where


def completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask, group_size: int = 1):
    """Dense logits [N, T, V] (zeros at padded positions past the first): row i, column j predicts
    completion token j. Equal to `model(cat(prompt, completion)).logits[:, P-1:P+T-1]` (positions from
    the masks) on valid positions, up to float rounding."""
    logits, where = packed_completion_logits(model, prompt_ids, prompt_mask, completion_ids, completion_mask,
                                             group_size)
    n, t = completion_ids.shape
    return logits.new_zeros(n * t, logits.shape[-1]).index_copy(0, where, logits).view(n, t, -1)
