"""Mass balance of one RL step as the number of rollouts N grows (paper brorl).

A one-position softmax policy over V = 64 tokens, logits ~ N(0, 2^2) (a peaked, uneven policy),
8 of them correct, initial correct mass Q between 0.05 and 0.95 (trials outside are redrawn). N rollouts
are sampled, scored, and one exact gradient step (lr 0.5 on the mean over rollouts) is taken with

    raw     A = r in {0, 1} (REINFORCE without a baseline: net reward S = number correct > 0)
    pm1     A = +1 correct, -1 wrong (S = correct - wrong, either sign)
    grpo    A = r - mean(r) (S = 0)

For each N we report over TRIALS random policies: P(Q grows) and P(Q shrinks) after the exact step
(neither: no signal, e.g. a GRPO group that is all right or all wrong), the first-order
unsampled share |unsampled| / (|sampled| + |unsampled|), and P(every correct token's probability
grows). 95% intervals: percentile bootstrap over trials. BroRL's claim: as N grows the unsampled
term vanishes and the correct mass, and every correct token, grows.

Run: python experiments/objectives_toy/brorl_mass.py   (about a minute)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from rlx.evaluation.stats import bootstrap_ci
from rlx.objectives.mass_balance import mass_balance_terms, softmax_step, token_mass_change

V, C, TRIALS, LR = 64, 8, 400, 0.5
NS = [2, 4, 8, 16, 32, 64, 128, 256, 512]
SCHEMES = {"raw": lambda r: r, "pm1": lambda r: 2 * r - 1, "grpo": lambda r: r - r.mean()}


def _policy(gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    while True:
        logits = 2.0 * torch.randn(V, generator=gen)
        correct = torch.zeros(V, dtype=torch.bool)
        correct[torch.randperm(V, generator=gen)[:C]] = True
        q = float(torch.softmax(logits, -1)[correct].sum())
        if 0.05 < q < 0.95:
            return logits, correct


def _ci(x) -> str:
    point, low, high = bootstrap_ci(np.asarray(x, dtype=float), statistic="mean", reps=2000, seed=0)
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


def main() -> int:
    torch.manual_seed(0)
    rows = []
    for scheme, adv_of in SCHEMES.items():
        for n in NS:
            gen = torch.Generator().manual_seed(1000 + n)
            grows, shrinks, share, all_up = [], [], [], []
            for _ in range(TRIALS):
                logits, correct = _policy(gen)
                samples = torch.multinomial(torch.softmax(logits, -1), n, replacement=True, generator=gen)
                adv = adv_of(correct[samples].double())
                t = mass_balance_terms(logits, correct, samples, adv)
                delta = token_mass_change(logits, softmax_step(logits, samples, adv / n, LR))
                dq = float(delta[correct].sum())
                grows.append(float(dq > 1e-12))
                shrinks.append(float(dq < -1e-12))
                all_up.append(float(bool((delta[correct] > 0).all())))
                denom = abs(t.sampled) + abs(t.unsampled)
                share.append(abs(t.unsampled) / denom if denom > 0 else 0.0)
            rows.append((scheme, n, _ci(grows), _ci(shrinks), _ci(share), _ci(all_up)))
            print(rows[-1], flush=True)
    lines = ["| advantages | N | P(correct mass grows) | P(it shrinks) | unsampled share of dQ | P(every correct token grows) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {s} | {n} | {g} | {d} | {u} | {a} |" for s, n, g, d, u, a in rows]
    text = (f"Produced by `python experiments/objectives_toy/brorl_mass.py` (V = {V}, {C} correct tokens, "
            f"{TRIALS} random policies per cell, one exact step at lr {LR} on the rollout mean; mean "
            "[95% bootstrap interval over trials]).\n\n" + "\n".join(lines) + "\n")
    (Path(__file__).with_suffix(".out.md")).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
