"""A lean forward for Llama / Qwen2 decoders that reads the HF module's own weights.

Why: at the RLVR default (a 1M-parameter model, 32 rows, 8 new tokens) a decode step is a few
small matmuls, and the generic HF forward spends most of its time in Python around them (output
dataclasses, mask construction, a growing KV cache re-concatenated every step). This path does the
same arithmetic with fewer, larger ops:

- q/k/v projections fused into one matmul, gate/up into another (weights concatenated once per
  `generate` call, so a trainer update between calls is always seen);
- a preallocated KV cache written in place (no torch.cat per step);
- rotary cos/sin computed once per call by the model's own rotary module, then indexed;
- the attention mask built once per call and sliced.

It is used only for models up to 200M parameters (beyond that the matmuls dominate anyway and the
fused weight copies would cost memory) and only where it is exact: the model class is LlamaForCausalLM or Qwen2ForCausalLM, every
projection is a plain `nn.Linear` (no LoRA / quantized wrappers), the activation is SiLU, no
sliding window, no length-dependent rope (dynamic / longrope). Anything else runs the generic HF
forward. tests/rollout/test_fast.py checks both
paths against a teacher-forced HF forward to 1e-5.
"""

from __future__ import annotations

import weakref

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["fast_path_blocker", "LeanDecoder", "rms_norm", "fused_layer_weights", "rope_tables", "swiglu_mlp"]

_FAMILIES = {"LlamaForCausalLM", "Qwen2ForCausalLM"}
MAX_PARAMS = 200_000_000  # above this the per-op overhead is noise and fused weight copies cost real memory


_SIZES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _num_params(model: nn.Module) -> int:
    """Parameter count, remembered per module (walking .parameters() costs ~1 ms per call at every step)."""
    if model not in _SIZES:
        _SIZES[model] = sum(p.numel() for p in model.parameters())
    return _SIZES[model]


def fast_path_blocker(model: nn.Module) -> str | None:
    """None when `LeanDecoder` reproduces `model`'s forward exactly; else the reason it does not."""
    name = type(model).__name__
    if name not in _FAMILIES:
        return f"model class {name} (fast path covers {sorted(_FAMILIES)})"
    cfg = model.config
    size = _num_params(model)
    if size > MAX_PARAMS:
        return f"{size / 1e6:.0f}M parameters (fast path is for models up to {MAX_PARAMS / 1e6:.0f}M)"
    if getattr(cfg, "use_sliding_window", False):
        return "sliding-window attention"
    rope = getattr(model.model.rotary_emb, "rope_type", "default")
    if rope in ("dynamic", "longrope"):  # frequencies depend on the current length; tables are per call
        return f"rope type {rope}"
    if cfg.hidden_act != "silu":
        return f"activation {cfg.hidden_act}"
    for i, layer in enumerate(model.model.layers):
        a, m = layer.self_attn, layer.mlp
        for mod in (a.q_proj, a.k_proj, a.v_proj, a.o_proj, m.gate_proj, m.up_proj, m.down_proj):
            if type(mod) is not nn.Linear:
                return f"layer {i} has a {type(mod).__name__} projection (LoRA / quantized)"
    return None


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    """Same op order as HF's LlamaRMSNorm / Qwen2RMSNorm (float32 statistics, weight in model dtype)."""
    if x.dtype == torch.float32 and weight.dtype == torch.float32:  # one op; same values as the general form
        return F.rms_norm(x, (x.shape[-1],), weight, eps)
    return weight * F.rms_norm(x.float(), (x.shape[-1],), None, eps).to(x.dtype)


def _cat_bias(*mods: nn.Linear) -> torch.Tensor | None:
    if all(m.bias is None for m in mods):
        return None
    return torch.cat([m.bias if m.bias is not None else m.weight.new_zeros(m.out_features) for m in mods])


def fused_layer_weights(layer: nn.Module) -> dict[str, torch.Tensor | None]:
    """One decoder layer's weights with q/k/v and gate/up concatenated (differentiable when grad is on)."""
    a, m = layer.self_attn, layer.mlp
    return dict(
        ln1=layer.input_layernorm.weight, ln2=layer.post_attention_layernorm.weight,
        wqkv=torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]),
        bqkv=_cat_bias(a.q_proj, a.k_proj, a.v_proj),
        wo=a.o_proj.weight, bo=a.o_proj.bias,
        wgu=torch.cat([m.gate_proj.weight, m.up_proj.weight]), bgu=_cat_bias(m.gate_proj, m.up_proj),
        wd=m.down_proj.weight, bd=m.down_proj.bias,
    )


def rope_tables(model: nn.Module, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, signed sin), each [length, head_dim], from the model's own rotary module.

    HF applies x * cos + rotate_half(x) * sin with rotate_half(x) = cat(-x2, x1). The same products come
    from one roll: roll(x) = cat(x2, x1) with the sign moved onto sin (exact: negation commutes with
    rounding), so rotary is `x * cos + x.roll(D // 2, -1) * sin`.
    """
    inner = model.model
    w = inner.embed_tokens.weight
    head_dim = inner.layers[0].self_attn.head_dim
    positions = torch.arange(length, device=w.device)[None]
    cos, sin = inner.rotary_emb(w.new_empty(1, length, head_dim), positions)  # [1, L, D] each
    half = head_dim // 2
    return cos[0], torch.cat([-sin[0, :, :half], sin[0, :, half:]], dim=-1)


def swiglu_mlp(x: torch.Tensor, p: dict, inter: int) -> torch.Tensor:
    """down(silu(gate(x)) * up(x)) with gate/up as one matmul.  [..., H] -> [..., H]"""
    g, u = F.linear(x, p["wgu"], p["bgu"]).split(inter, dim=-1)
    return F.linear(F.silu(g) * u, p["wd"], p["bd"])


class LeanDecoder:
    """Forward passes for one `generate` call: `rows` sequences of at most `max_len` tokens."""

    def __init__(self, model: nn.Module, rows: int, max_len: int, cache_len: int | None = None):
        """KV caches hold `cache_len` positions (default max_len); `select` grows them to max_len."""
        self.model = model
        self.max_len = max_len
        inner = model.model
        cfg = model.config
        self.eps = cfg.rms_norm_eps
        w = inner.embed_tokens.weight
        self.layers = [fused_layer_weights(layer) for layer in inner.layers]
        a0 = inner.layers[0].self_attn
        self.head_dim = a0.head_dim
        self.heads = cfg.num_attention_heads
        self.kv_heads = cfg.num_key_value_heads
        self.scaling = a0.scaling
        self.inter = inner.layers[0].mlp.gate_proj.out_features
        self.q_size = self.heads * self.head_dim
        self.kv_size = self.kv_heads * self.head_dim
        shape = (rows, self.kv_heads, cache_len or max_len, self.head_dim)
        self.k = [w.new_empty(shape) for _ in self.layers]  # per layer [N, KV, L, D]
        self.v = [w.new_empty(shape) for _ in self.layers]
        self.cos, self.sin = rope_tables(model, max_len)
        self.keep_hidden = False  # set by the engine when pruning (paper arrol) needs features
        self.hidden: torch.Tensor | None = None  # [R, H] final normed hidden state of the last forward

    def select(self, rows: torch.Tensor) -> None:
        """Keep only these cache rows, with room for max_len positions (online pruning re-batches the decode;
        the candidates' cache only had to reach the prune point)."""
        def grown(c: torch.Tensor) -> torch.Tensor:
            out = c.new_empty((rows.numel(), c.shape[1], self.max_len, c.shape[3]))
            out[:, :, :c.shape[2]] = c[rows]
            return out

        self.k = [grown(k) for k in self.k]
        self.v = [grown(v) for v in self.v]

    def forward(self, ids, positions, mask, start: int, k=None, v=None) -> torch.Tensor:
        """Logits of the last input position.  ids/positions [R, S], mask [R, 1, S, start+S] bool.

        Writes this chunk's keys/values at [start, start+S) of the caches `k`/`v` (default: own).
        """
        k = self.k if k is None else k
        v = self.v if v is None else v
        r, s = ids.shape
        h = self.model.model.embed_tokens(ids)  # [R, S, H]
        cos = self.cos[positions].unsqueeze(1)  # [R, 1, S, D]
        sin = self.sin[positions].unsqueeze(1)
        end = start + s
        gqa = self.heads != self.kv_heads
        for i, p in enumerate(self.layers):
            x = rms_norm(h, p["ln1"], self.eps)
            qkv = F.linear(x, p["wqkv"], p["bqkv"])
            qkv = qkv.view(r, s, self.heads + 2 * self.kv_heads, self.head_dim).transpose(1, 2)  # [R, Hq+2Hkv, S, D]
            qk, vv = qkv.split((self.heads + self.kv_heads, self.kv_heads), dim=1)
            qk = qk * cos + qk.roll(self.head_dim // 2, dims=-1) * sin  # rotary on queries and keys at once
            q, kk = qk.split((self.heads, self.kv_heads), dim=1)
            k[i][:, :, start:end] = kk
            v[i][:, :, start:end] = vv
            att = F.scaled_dot_product_attention(
                q, k[i][:, :, :end], v[i][:, :, :end], attn_mask=mask, scale=self.scaling, enable_gqa=gqa
            )
            att = att.transpose(1, 2).reshape(r, s, self.q_size)
            h = h + F.linear(att, p["wo"], p["bo"])
            h = h + swiglu_mlp(rms_norm(h, p["ln2"], self.eps), p, self.inter)
        h = rms_norm(h[:, -1:], self.model.model.norm.weight, self.eps)
        if self.keep_hidden:
            self.hidden = h[:, -1]
        return self.model.lm_head(h)[:, -1]  # [R, V]

    def prefill(self, ids: torch.Tensor, mask: torch.Tensor, n: int) -> torch.Tensor:
        """Run the B distinct left-padded prompts once; cache rows repeated n times.  [B, P] -> [B*n, V]"""
        b, p = ids.shape
        positions = (mask.long().cumsum(-1) - 1).clamp_(min=0)
        causal = torch.ones(p, p, dtype=torch.bool, device=ids.device).tril_()
        eye = torch.eye(p, dtype=torch.bool, device=ids.device)
        att_mask = ((causal & mask[:, None, :]) | eye).unsqueeze(1)  # [B, 1, P, P]; pad rows see themselves
        if n == 1:
            return self.forward(ids, positions, att_mask, 0)
        shape = (b, self.kv_heads, p, self.head_dim)
        ks = [self.k[0].new_empty(shape) for _ in self.layers]
        vs = [self.v[0].new_empty(shape) for _ in self.layers]
        logits = self.forward(ids, positions, att_mask, 0, ks, vs)
        for i in range(len(self.layers)):
            self.k[i][:, :, :p] = ks[i].repeat_interleave(n, 0)
            self.v[i][:, :, :p] = vs[i].repeat_interleave(n, 0)
        return logits.repeat_interleave(n, 0)

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, key_mask: torch.Tensor, start: int) -> torch.Tensor:
        """One new token per row at cache slot `start`.  tokens [N], positions [N, 1], key_mask [N, start+1]"""
        return self.forward(tokens.unsqueeze(1), positions, key_mask[:, None, None, :], start)
