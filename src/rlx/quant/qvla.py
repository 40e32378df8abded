"""QVLA: channel-wise bit allocation by each channel's effect on the actions.  Paper: qvla

Uniform-bit methods from LLMs spend the same bits on every output channel and judge a quantizer by
how well it reproduces weights or activations. For a policy, what matters is the action: a small
error in a channel that drives the decision compounds over an episode. QVLA measures, for every
output channel c of every linear layer and every candidate width b (0 = pruned), the change of the
policy's action outputs when only that channel is quantized to b bits,

    s_c(b) = E_s || f_{W with row c -> Q_b(row c)}(s) - f_W(s) ||^2 / dim f        (`channel_sensitivity`)

then picks one width per channel to minimise the summed sensitivity under a budget on the
average bits per weight (`allocate_bits`):

    min_b  sum_c s_c(b_c)   s.t.   sum_c n_c b_c <= B * sum_c n_c      (n_c = weights in channel c)

solved greedily: start every channel at the smallest width, then repeatedly take the upgrade with the
largest drop in sensitivity per extra weight-bit that still fits, until none fits (the budget is
spent even where the measured drop is zero: single-channel measurements miss interactions). `weight_error` gives the same
table from the weights alone (||row - Q_b(row)||^2), the data-fidelity criterion QVLA argues against;
allocating with it is the ablation.

Quantization of a channel: asymmetric round-to-nearest with one scale per channel (`rlx.quant.core`),
0 bits sets the row (and its bias) to zero.
Departures: a CartPole Q-network instead of a VLA model; the action outputs are its Q-values; the
sensitivity is additive across channels by assumption (as in the paper's global allocation).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from rlx.quant.core import IntSpec, fake_int

__all__ = ["quantize_row", "channel_sensitivity", "weight_error", "allocate_bits", "apply_allocation", "average_bits"]


def quantize_row(row: torch.Tensor, bits: int) -> torch.Tensor:
    """One channel's weights [in] quantized to `bits` (0: zeros) with its own asymmetric scale."""
    if bits == 0:
        return torch.zeros_like(row)
    return fake_int(row.unsqueeze(0), IntSpec(bits=bits, granularity="channel")).squeeze(0)


@torch.no_grad()
def channel_sensitivity(linears: dict[str, nn.Linear], outputs: Callable[[], torch.Tensor], choices: list[int]
                        ) -> dict[str, torch.Tensor]:
    """{layer: [out, len(choices)]} mean squared change of `outputs()` when one channel is quantized."""
    ref = outputs()
    table = {}
    for name, lin in linears.items():
        s = torch.zeros(lin.out_features, len(choices))
        for c in range(lin.out_features):
            w, b = lin.weight[c].clone(), None if lin.bias is None else lin.bias[c].clone()
            for j, bits in enumerate(choices):
                lin.weight[c] = quantize_row(w, bits)
                if bits == 0 and b is not None:
                    lin.bias[c] = 0.0
                s[c, j] = (outputs() - ref).square().mean()
                if b is not None:
                    lin.bias[c] = b
            lin.weight[c] = w
        table[name] = s
    return table


@torch.no_grad()
def weight_error(linears: dict[str, nn.Linear], choices: list[int]) -> dict[str, torch.Tensor]:
    """{layer: [out, len(choices)]} squared weight error ||row - Q_b(row)||^2 (the data-fidelity criterion)."""
    return {name: torch.stack([torch.stack([(lin.weight[c] - quantize_row(lin.weight[c], b)).square().sum()
                                            for b in choices]) for c in range(lin.out_features)])
            for name, lin in linears.items()}


def allocate_bits(table: dict[str, torch.Tensor], sizes: dict[str, int], choices: list[int], budget: float
                  ) -> dict[str, list[int]]:
    """Greedy solution of the budgeted allocation in the module docstring. `sizes[layer]` = weights per
    channel of that layer; `choices` ascending. Returns {layer: [bits per channel]}."""
    if not choices or any(b >= c for b, c in zip(choices, choices[1:])) or not 0 <= choices[0] <= choices[-1] <= 8:
        raise ValueError(f"choices must be strictly ascending widths in 0..8, got {choices}")
    total = sum(sizes[n] * t.shape[0] for n, t in table.items())
    if budget < choices[0]:
        raise ValueError(f"budget {budget} is below the smallest width {choices[0]}")
    level = {n: [0] * t.shape[0] for n, t in table.items()}  # index into choices
    spent = choices[0] * total
    while True:
        best, best_gain = None, -float("inf")
        for n, t in table.items():
            for c, j in enumerate(level[n]):
                if j + 1 == len(choices):
                    continue
                cost = sizes[n] * (choices[j + 1] - choices[j])
                if spent + cost > budget * total + 1e-9:
                    continue
                gain = float(t[c, j] - t[c, j + 1]) / cost
                if gain > best_gain:
                    best, best_gain = (n, c, cost), gain
        if best is None:
            break
        n, c, cost = best
        level[n][c] += 1
        spent += cost
    return {n: [choices[j] for j in js] for n, js in level.items()}


@torch.no_grad()
def apply_allocation(linears: dict[str, nn.Linear], alloc: dict[str, list[int]]) -> None:
    """Quantize every channel in place to its allocated width (0 zeroes the row and its bias)."""
    for name, lin in linears.items():
        for c, bits in enumerate(alloc[name]):
            lin.weight[c] = quantize_row(lin.weight[c].clone(), bits)
            if bits == 0 and lin.bias is not None:
                lin.bias[c] = 0.0


def average_bits(alloc: dict[str, list[int]], sizes: dict[str, int]) -> float:
    """Weight-averaged bits of an allocation."""
    total = sum(sizes[n] * len(b) for n, b in alloc.items())
    return sum(sizes[n] * sum(b) for n, b in alloc.items()) / total
