"""QLLM: channel disassembly/assembly for activation outliers, then low-rank tuning (paper `qllm`).

For a Linear layer with calibration inputs X, channel j is an outlier when max_t |x_tj| exceeds
`outlier_ratio` x the median channel maximum. Disassembly splits it into T_j = ceil(max_j / thr)
sub-channels (capped at `max_split`) carrying x_j / T_j each, with the weight column duplicated,
so x_j w_j = sum_k (x_j / T_j) w_j exactly and the activation range shrinks by T_j. Assembly then
merges the sum_j (T_j - 1) most similar pairs of ordinary channels (a, b) (closest weight columns,
greedy) into one channel x_a + x_b with weight (w_a + w_b) / 2, so the channel count is unchanged.
Both are one linear map P [in, in]: x' = x P, W' = the matching weight; y = Q_a(x P) Q_w(W')^T.
Low-rank tuning: a rank-r correction B A is added to the quantized W' and trained with Adam to
minimise the layer output error ||X W^T - Q_a(X P)(Q_w(W') + B A)^T||^2 on calibration tokens.

Departure: the paper folds P into the preceding norm/linear; here P stays an explicit op of the
in-memory `QLLMLinear` and the saved HF weight is the equivalent (Q_w(W') + B A) P^T (the HF files
cannot express activation quantization; quant_config.json records act_bits). Tuning is per layer,
not per block.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from rlx.quant.config import QuantConfig
from rlx.quant.core import IntSpec, fake_int, int_quantize
from rlx.quant.layers import LayerQuant, group_by_block, run_hooked, spec_of, swap_module

__all__ = ["disassemble_assemble", "QLLMLinear", "quantize_qllm"]


@torch.no_grad()
def disassemble_assemble(W: torch.Tensor, ch_max: torch.Tensor, ratio: float, max_split: int
                         ) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
    """(P [in, in], W' [out, in], info). Exactly X P W'^T == X W^T when no channels are merged."""
    W = W.detach().float()
    out_f, d = W.shape
    thr = ratio * ch_max.median().clamp_min(1e-12)
    splits = torch.clamp(torch.ceil(ch_max / thr), 1, max_split).long()
    outliers = (splits > 1).nonzero().flatten().tolist()
    extra = int((splits - 1).sum())
    normal = [j for j in range(d) if splits[j] == 1]
    merges: list[tuple[int, int]] = []
    if extra > 0:
        cols = W[:, normal].T  # [n, out]
        dist = torch.cdist(cols, cols)
        dist.fill_diagonal_(float("inf"))
        used = torch.zeros(len(normal), dtype=torch.bool)
        order = torch.argsort(dist.flatten())
        for k in order.tolist():
            if len(merges) == extra:
                break
            a, b = divmod(k, len(normal))
            if a < b and not used[a] and not used[b]:
                used[a] = used[b] = True
                merges.append((normal[a], normal[b]))
        extra = len(merges) if len(merges) < extra else extra
    merged = {j for m in merges for j in m}
    P_cols, W_cols = [], []
    for j in range(d):
        if j in merged:
            continue
        for _ in range(int(splits[j])):
            c = torch.zeros(d)
            c[j] = 1.0 / float(splits[j])
            P_cols.append(c)
            W_cols.append(W[:, j])
    for a, b in merges:
        c = torch.zeros(d)
        c[a] = c[b] = 1.0
        P_cols.append(c)
        W_cols.append((W[:, a] + W[:, b]) / 2)
    P = torch.stack(P_cols, dim=1)
    Wp = torch.stack(W_cols, dim=1)
    return P, Wp, {"outliers": float(len(outliers)), "merged_pairs": float(len(merges))}


class QLLMLinear(nn.Linear):
    """y = Q_a(x P) (Q_w(W') + B A)^T + b with per-token asymmetric activation quantization."""

    def __init__(self, lin: nn.Linear, P: torch.Tensor, w_deq: torch.Tensor, act_bits: int, rank: int):
        super().__init__(lin.in_features, lin.out_features, bias=lin.bias is not None, dtype=lin.weight.dtype)
        self.register_buffer("P", P)
        self.register_buffer("w_q", w_deq)
        self.act_spec = IntSpec(bits=act_bits, granularity="channel")
        r = min(rank, *w_deq.shape)
        self.lora_a = nn.Parameter(torch.randn(r, w_deq.shape[1]) / w_deq.shape[1] ** 0.5) if r else None
        self.lora_b = nn.Parameter(torch.zeros(w_deq.shape[0], r)) if r else None
        with torch.no_grad():
            if lin.bias is not None:
                self.bias.copy_(lin.bias)
        self.sync_weight()

    def effective(self) -> torch.Tensor:
        w = self.w_q
        if self.lora_a is not None:
            w = w + self.lora_b @ self.lora_a
        return w

    @torch.no_grad()
    def sync_weight(self) -> None:
        """Keep `weight` = the equivalent plain weight (what the HF files store)."""
        self.weight.copy_((self.effective() @ self.P.T).to(self.weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xp = x @ self.P.to(x.dtype)
        xq = fake_int(xp, self.act_spec)
        return F.linear(xq, self.effective().to(x.dtype), self.bias.to(x.dtype) if self.bias is not None else None)


def quantize_qllm(model: nn.Module, linears: dict[str, nn.Linear], cfg: QuantConfig, calib) -> dict[str, LayerQuant]:
    q = cfg.qllm
    ids, mask = calib[0], calib[1]
    out = {}
    for group in group_by_block(list(linears)):
        mods = {n: linears[n] for n in group}
        ch_max = {n: torch.zeros(m.in_features) for n, m in mods.items()}
        samples: dict[str, list[torch.Tensor]] = {n: [] for n in mods}

        def collect(name, x, s, e):
            x2 = x.reshape(-1, x.shape[-1])
            keep = mask[s:e].reshape(-1).bool()
            x2 = x2[keep]
            ch_max[name] = torch.maximum(ch_max[name], x2.abs().amax(dim=0))
            samples[name].append(x2[:: max(1, x2.shape[0] // 256)])

        run_hooked(model, ids, mask, mods, collect, cfg.calib.batch_size)
        for n, lin in mods.items():
            P, Wp, _ = disassemble_assemble(lin.weight, ch_max[n], q.outlier_ratio, q.max_split)
            spec = spec_of(cfg.bits, cfg.group_size, cfg.symmetric, Wp.shape[1])
            if spec.granularity == "group" and Wp.shape[1] % spec.group_size:
                pad = spec.group_size - Wp.shape[1] % spec.group_size  # zero channels: exact, fill the last group
                P = torch.nn.functional.pad(P, (0, pad))
                Wp = torch.nn.functional.pad(Wp, (0, pad))
            qt = int_quantize(Wp, spec)
            new = QLLMLinear(lin, P, qt.dequantize(), q.act_bits, q.rank)
            if q.rank and q.steps:
                X = torch.cat(samples[n])
                target = X @ lin.weight.detach().float().T
                opt = torch.optim.Adam([new.lora_a, new.lora_b], lr=q.lr)
                with torch.enable_grad():
                    for _ in range(q.steps):
                        bias = new.bias.detach().float() if new.bias is not None else 0  # X is float32
                        loss = (new(X) - (target + bias)).pow(2).mean()
                        opt.zero_grad()
                        loss.backward()
                        opt.step()
                new.sync_weight()
            a = new.lora_a.detach().clone() if new.lora_a is not None else None
            b = new.lora_b.detach().clone() if new.lora_b is not None else None
            out[n] = LayerQuant(qt, cfg.bits, lr_a=a, lr_b=b, in_proj=P)
            swap_module(model, n, new)
    return out
