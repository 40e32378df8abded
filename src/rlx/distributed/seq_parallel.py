"""Sequence parallelism of a long prompt's prefill over torch.distributed ranks (paper longvideo, MR-SP stage 2).

MR-SP splits a long video's token sequence across devices for the prefill, so no device holds the
whole sequence's activations. Here, for the Llama/Qwen2 decoders rlx runs lean (`rlx.rollout.fast`):

    rank r of W owns positions [r*C, min((r+1)*C, P)),  C = ceil(P / W)     (`shard_bounds`)

and runs every per-token op (embedding, norms, q/k/v, o, MLP, lm_head) on its own chunk only. Per
layer, the ranks all-gather the rotated keys and the values (padded to C per rank), and each query at
global position i attends causally to the keys at positions j <= i from every rank. On 2 gloo processes
the logits equal the single-process prefill (one rank, no split) bit for bit, and the Hugging Face
forward to 1e-5 (tests/distributed/test_seq_parallel.py; on the dev machine also bit for bit).

Scope: the prefill's logits (inference; `torch.distributed.all_gather` carries no gradient) of
unpadded prompts [B, P] (one video per row, equal lengths); keys/values are all-gathered, not passed
around a ring, so each rank still holds all keys of a layer at once (the activations of the MLP and
the queries are what is split). Departure from the paper: CPU processes over gloo, not GPUs over NCCL.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from rlx.rollout.fast import fused_layer_weights, rms_norm, rope_tables, swiglu_mlp

__all__ = ["shard_bounds", "sequence_parallel_logits"]


def shard_bounds(length: int, rank: int, world: int) -> tuple[int, int]:
    """[start, end) of the positions rank `rank` of `world` owns: contiguous chunks of C = ceil(length / world)
    (the last ones may be shorter or empty)."""
    c = -(-length // world)
    return min(rank * c, length), min((rank + 1) * c, length)


def _gather(x: torch.Tensor, chunk: int, group) -> torch.Tensor:
    """All ranks' [B, H, S_r, D] chunks, padded to `chunk` for the collective, concatenated along S."""
    pad = x.new_zeros(x.shape[0], x.shape[1], chunk, x.shape[3])
    pad[:, :, :x.shape[2]] = x
    parts = [torch.empty_like(pad) for _ in range(dist.get_world_size(group))]
    dist.all_gather(parts, pad, group=group)
    return torch.cat(parts, dim=2)  # [B, H, W*C, D]; positions >= P are padding, masked out below


@torch.no_grad()
def sequence_parallel_logits(model: nn.Module, ids: torch.Tensor, group=None) -> torch.Tensor:
    """Logits [B, P, V] of every prompt position, computed with the sequence split over the ranks of `group`.

    ids [B, P]: unpadded token ids, the same on every rank. Every rank returns the full logits (the
    chunks are all-gathered at the end); the work before that is split.
    """
    inner, cfg = model.model, model.config
    world, rank = dist.get_world_size(group), dist.get_rank(group)
    b, p = ids.shape
    start, end = shard_bounds(p, rank, world)
    chunk = -(-p // world)
    s = end - start
    a0 = inner.layers[0].self_attn
    d, hq, hk = a0.head_dim, cfg.num_attention_heads, cfg.num_key_value_heads
    eps, inter = cfg.rms_norm_eps, inner.layers[0].mlp.gate_proj.out_features
    cos, sin = rope_tables(model, p)
    cos, sin = cos[start:end], sin[start:end]  # [S, D]
    q_pos = torch.arange(start, end, device=ids.device)[:, None]  # [S, 1] global query positions
    k_pos = torch.arange(world * chunk, device=ids.device)[None, :]  # gathered slot i holds position i
    mask = k_pos <= q_pos  # [S, W*C] causal; the padding slots (positions >= P) lie after every query

    h = inner.embed_tokens(ids[:, start:end])  # [B, S, H]
    for layer in inner.layers:
        w = fused_layer_weights(layer)
        qkv = F.linear(rms_norm(h, w["ln1"], eps), w["wqkv"], w["bqkv"]).view(b, s, hq + 2 * hk, d).transpose(1, 2)
        qk, v = qkv.split((hq + hk, hk), dim=1)
        qk = qk * cos + qk.roll(d // 2, dims=-1) * sin  # rotary at the chunk's global positions
        q, k = qk.split((hq, hk), dim=1)
        keys, vals = _gather(k, chunk, group), _gather(v, chunk, group)
        att = F.scaled_dot_product_attention(q, keys, vals, attn_mask=mask, scale=a0.scaling, enable_gqa=hq != hk)
        h = h + F.linear(att.transpose(1, 2).reshape(b, s, hq * d), w["wo"], w["bo"])
        h = h + swiglu_mlp(rms_norm(h, w["ln2"], eps), w, inter)
    logits = model.lm_head(rms_norm(h, inner.norm.weight, eps))  # [B, S, V]
    full = logits.new_zeros(b, chunk, logits.shape[-1])
    full[:, :s] = logits
    parts = [torch.empty_like(full) for _ in range(world)]
    dist.all_gather(parts, full, group=group)
    return torch.cat(parts, dim=1)[:, :p]
