"""RSQ: Rotate, Scale, then Quantize (paper `rsq`).

1. Rotate: each layer is quantized in the Hadamard-rotated input basis, W' = W H with the
   orthonormal Hadamard H (`rlx.quant.hadamard`); rotation spreads outlier columns over all
   columns. The Hessian moves with it: H_x' = H H_x H.
2. Scale: every calibration token t gets an importance a_t = attention concentration, the
   attention it *receives*, averaged over layers and heads: a_t = mean_{l,h} sum_q A^{l,h}[q, t].
   Weights w_t = min_weight + (1 - min_weight) * (a_t - min a) / (max a - min a) per sequence, and
   the Hessian becomes H = 2 / sum w * sum_t w_t x_t x_t^T.
3. Quantize with GPTQ on that Hessian.

Departure from the paper: the paper rotates the whole residual stream (QuaRot-style, fused into
the norms) so inference needs no extra op; here the rotation is per Linear input and the saved
checkpoint stores W_hat = Q(W H) H^T in the original basis (exact same function; codes are in
the rotated basis and quant_config.json marks them `hadamard: true`). Importance is computed once
from the full-precision model, not re-computed per block.
"""

from __future__ import annotations

import torch
from torch import nn

from rlx.quant.config import QuantConfig
from rlx.quant.gptq import gptq_layers
from rlx.quant.hadamard import hadamard
from rlx.quant.layers import LayerQuant

__all__ = ["attention_concentration", "token_weights", "quantize_rsq"]


@torch.no_grad()
def attention_concentration(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """a [N, T]: attention each token receives, summed over the real (non-padding) queries, averaged over
    layers and heads. Padding query rows still attend to the real tokens, so they are masked out: a
    sequence's weights do not depend on how long the others in its calibration set are."""
    prev = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        out = []
        for s in range(0, ids.shape[0], batch_size):
            o = model(input_ids=ids[s:s + batch_size], attention_mask=mask[s:s + batch_size], output_attentions=True)
            att = torch.stack([a.float() for a in o.attentions])  # [L, B, heads, Tq, Tk]
            queries = mask[s:s + batch_size].to(att.dtype)[None, :, None, :, None]  # [1, B, 1, Tq, 1]
            out.append((att * queries).sum(dim=-2).mean(dim=(0, 2)))  # [B, Tk]
        return torch.cat(out) * mask
    finally:
        model.set_attn_implementation(prev)


def token_weights(a: torch.Tensor, mask: torch.Tensor, min_weight: float) -> torch.Tensor:
    """Rescale importances per sequence to [min_weight, 1] on real tokens (0 on padding)."""
    big = torch.finfo(a.dtype).max
    lo = torch.where(mask.bool(), a, torch.full_like(a, big)).amin(dim=1, keepdim=True)
    hi = torch.where(mask.bool(), a, torch.full_like(a, -big)).amax(dim=1, keepdim=True)
    frac = (a - lo) / (hi - lo).clamp_min(1e-12)
    # a row of padding only has lo = +big, hi = -big: its weights are 0, not (-inf) * 0 = NaN
    return torch.where(mask.bool(), min_weight + (1 - min_weight) * frac, torch.zeros_like(frac))


def quantize_rsq(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    ids, mask = calib[0], calib[1]
    w = token_weights(attention_concentration(model, ids, mask, cfg.calib.batch_size), mask, cfg.rsq.min_weight)

    def rotate(name, lin, H):
        if not cfg.rsq.rotate:
            return lin.weight.detach().float(), H, lambda qt: LayerQuant(qt, cfg.bits)
        Wr = hadamard(lin.weight.detach().float())
        Hr = hadamard(hadamard(H).T.contiguous())  # H_had @ H @ H_had (both symmetric)
        return Wr, Hr, lambda qt: LayerQuant(qt, cfg.bits, hadamard=True)

    return gptq_layers(model, linears, calib, cfg.bits, cfg.group_size, cfg.symmetric, cfg.gptq,
                       token_weights=w, transform=rotate, batch_size=cfg.calib.batch_size)
