"""Entropy-guided block partition for post-training quantization search (paper qvlm).

Layer-wise PTQ picks each layer's quantizer to minimise that layer's own output error, ignoring that
the error of one layer changes what the next layers see (cross-layer dependency). Searching the
quantizers of several consecutive layers *jointly*, on the error at the end of the block, accounts
for it, but the search cost grows with the block. Q-VLM observes that the entropy of the
activations between two layers tracks how strongly they depend on each other, and uses it to choose
where blocks end: cut where entropy is low (weak dependency), keep high-entropy boundaries inside
blocks.

Units here are decoder layers. For calibration inputs, h_i is the hidden state after unit i.

    entropy:    H_i = - sum_b p_b log p_b over a `bins`-bin histogram of h_i's values      (`boundary_entropy`)
    partition:  with K blocks, cut after the K - 1 units with the lowest H_i              (`entropy_partition`)
    search:     block by block, coordinate descent over the clipping ratio c of each Linear's
                per-channel RTN quantizer (c in `clips`), minimising
                    E || h_end(quantized model so far) - h_end(full precision) ||^2
                at the block's last unit; `sweeps` passes per block                      (`search_partition`)

Blocks of one unit are the layer-wise baseline; `all_partitions` enumerates every contiguous
partition so a study can check whether the entropy choice is among the good ones.
Departures (only the abstract is available): clipping-ratio search stands in for the paper's
rounding search, the visual-encoder disentangling is not applicable (text-only models), and the
entropy is of the hidden state's value histogram.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import nn

from rlx.quant.core import IntSpec, fake_int

__all__ = ["value_entropy", "boundary_entropy", "entropy_partition", "all_partitions", "search_partition",
           "decoder_units"]


def value_entropy(x: torch.Tensor, bins: int = 256) -> float:
    """Entropy (nats) of the histogram of x's values over [min, max] with `bins` bins."""
    x = x.detach().float().reshape(-1)
    hist = torch.histc(x, bins=bins, min=float(x.min()), max=float(x.max()))
    p = hist / hist.sum()
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def boundary_entropy(hidden: list[torch.Tensor], mask: torch.Tensor, bins: int = 256) -> list[float]:
    """[len(hidden)] entropy of each unit's output [N, T, d] over the real (mask) tokens."""
    m = mask.bool()
    return [value_entropy(h[m], bins) for h in hidden]


def entropy_partition(entropies: list[float], blocks: int) -> list[list[int]]:
    """Contiguous blocks of units 0..U-1: cut after the blocks - 1 lowest-entropy units (never the last)."""
    u = len(entropies)
    if not 1 <= blocks <= u:
        raise ValueError(f"blocks = {blocks}: expected 1..{u}")
    cuts = sorted(sorted(range(u - 1), key=lambda i: (entropies[i], i))[: blocks - 1])
    return _from_cuts(u, cuts)


def all_partitions(units: int) -> list[list[list[int]]]:
    """Every partition of 0..units-1 into contiguous blocks (2^(units-1) of them)."""
    out = []
    for k in range(units):
        for cuts in itertools.combinations(range(units - 1), k):
            out.append(_from_cuts(units, list(cuts)))
    return out


def _from_cuts(units: int, cuts: list[int]) -> list[list[int]]:
    edges = [-1, *cuts, units - 1]
    return [list(range(a + 1, b + 1)) for a, b in zip(edges, edges[1:])]


def decoder_units(model: nn.Module) -> list[nn.Module]:
    """The decoder layers of an HF causal LM (model.model.layers)."""
    return list(model.model.layers)


@torch.no_grad()
def _hidden(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of every decoder layer, [U] x [N, T, d] (the last before the final norm)."""
    outs: list[torch.Tensor] = []
    hooks = [u.register_forward_hook(lambda m, a, y: outs.append(y[0] if isinstance(y, tuple) else y))
             for u in decoder_units(model)]
    try:
        model(input_ids=ids, attention_mask=mask)
    finally:
        for h in hooks:
            h.remove()
    return outs


@torch.no_grad()
def search_partition(model: nn.Module, partition: list[list[int]], ids: torch.Tensor, mask: torch.Tensor, bits: int,
                     clips: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6), sweeps: int = 1,
                     progress: Callable[[str], None] | None = None) -> dict:
    """Quantize every Linear of the decoder layers in place, block by block (module docstring).
    Returns {"clips": {linear name: c}, "block_errors": [...], "evaluations": forward passes used}."""
    units = decoder_units(model)
    if not partition or any(not b for b in partition) or [u for b in partition for u in b] != list(range(len(units))):
        raise ValueError(f"partition {partition}: blocks must cover the {len(units)} decoder layers once each, in "
                         "order, with no empty block (a layer left out stayed full precision, one listed twice was "
                         "quantized twice)")
    ref = _hidden(model, ids, mask)
    m = mask.bool()
    chosen: dict[str, float] = {}
    errors, evals = [], 0
    for block in partition:
        linears = [(f"layers.{u}.{n}", lin) for u in block for n, lin in units[u].named_modules()
                   if isinstance(lin, nn.Linear)]
        originals = {n: lin.weight.detach().clone() for n, lin in linears}
        for n, lin in linears:  # start from the plain quantizer everywhere in the block
            lin.weight.copy_(fake_int(originals[n], IntSpec(bits=bits, granularity="channel")))
            chosen[n] = 1.0
        end = block[-1]

        def err() -> float:
            return float((_hidden(model, ids, mask)[end] - ref[end])[m].square().mean())

        best = err()
        evals += 1
        for _ in range(sweeps):
            for n, lin in linears:
                for c in clips:
                    if c == chosen[n]:
                        continue
                    lin.weight.copy_(fake_int(originals[n], IntSpec(bits=bits, granularity="channel", clip=c)))
                    e = err()
                    evals += 1
                    if e < best:
                        best, chosen[n] = e, c
                lin.weight.copy_(fake_int(originals[n], IntSpec(bits=bits, granularity="channel", clip=chosen[n])))
        errors.append(best)
        if progress is not None:
            progress(f"block {block}: error {best:.3g}")
    final = float((_hidden(model, ids, mask)[-1] - ref[-1])[m].square().mean())
    return {"clips": chosen, "block_errors": errors, "evaluations": evals, "final_error": final}
