"""QVLA channel-wise bit allocation on CartPole Q-network policies (paper qvla), 3 seeds.

Claim (paper qvla): allocating bits per channel by each channel's measured effect on the actions
(with 0 bits = pruning) keeps a quantized policy's behaviour far better than uniform bits or
criteria that only look at weight (data) fidelity, at the same average width.

Setting: three PQN policies (recipes/pqn_cartpole.yaml, 300k env steps, no early stop; MLP 4-64-64-2
with LayerNorm). Calibration: 4096 states from the full-precision greedy policy with 10% random
actions; test: 4096 other states. Widths {0, 2, 3, 4, 8} per output channel (asymmetric RTN, one
scale per channel), average budgets of 2 and 3 bits per weight. Allocations:

    uniform      every channel at the budget (plain per-channel RTN)
    weight MSE   budgeted greedy allocation on ||row - Q_b(row)||^2 (data fidelity)
    random       QVLA's widths shuffled within each layer (same histogram, no sensitivity)
    QVLA         budgeted greedy allocation on the measured change of the Q-values

Metrics: greedy-action agreement with the full-precision policy on the test states, and greedy
return (50 episodes). Run: python experiments/qvla/run.py   (about 2 minutes; runs go to runs/qvla)
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, rlx  # noqa: E402

from rlx.config import build_config, read_yaml  # noqa: E402
from rlx.control import pqn  # noqa: E402
from rlx.control.common import load_torch_state  # noqa: E402
from rlx.control.envs import TorchCartPole  # noqa: E402
from rlx.quant.qvla import (allocate_bits, apply_allocation, average_bits, channel_sensitivity,  # noqa: E402
                            weight_error)
from rlx.robust.qarl import greedy_returns  # noqa: E402

HERE = Path(__file__).resolve().parent
SEEDS = [0, 1, 2]
CHOICES = [0, 2, 3, 4, 8]
BUDGETS = [2, 3]


def policy(seed: int):
    out = ROOT / "runs" / "qvla" / f"pqn_s{seed}"
    if not (out / "summary.json").exists():
        rlx("train", "recipes/pqn_cartpole.yaml", f"seed={seed}", "total_steps=300000", "eval.stop_at_return=null",
            "--out", str(out))
    cfg = build_config(pqn.Config, read_yaml(str(out / "config.yaml")))
    net = pqn.build_q_network(4, 2, cfg.net)
    ckpt = out / "checkpoints" / (out / "checkpoints" / "LATEST").read_text().strip()
    net.load_state_dict(load_torch_state(ckpt)["q_net"])
    return net.eval()


@torch.no_grad()
def states(net, seed: int, n_envs: int = 64, steps: int = 64) -> torch.Tensor:
    env, g = TorchCartPole(n_envs, seed), torch.Generator().manual_seed(seed)
    obs, out = env.reset(), []
    for _ in range(steps):
        out.append(obs)
        a = net.q(obs).argmax(1)
        a = torch.where(torch.rand(n_envs, generator=g) < 0.1, torch.randint(0, 2, (n_envs,), generator=g), a)
        obs = env.step(a).obs
    return torch.cat(out)


def evaluate(net, test: torch.Tensor, ref_actions: torch.Tensor, seed: int) -> tuple[float, float]:
    with torch.no_grad():
        agree = float((net.q(test).argmax(1) == ref_actions).float().mean())
    ret = float(greedy_returns(lambda o: net.q(o).argmax(1), 50, 7_000 + seed).mean())
    return agree, ret


def main() -> None:
    torch.set_num_threads(1)
    res: dict = {}
    for seed in SEEDS:
        fp = policy(seed)
        calib, test = states(fp, 100 + seed), states(fp, 200 + seed)
        with torch.no_grad():
            ref = fp.q(test).argmax(1)
        fp_eval = evaluate(fp, test, ref, seed)
        res.setdefault("full precision", []).append(fp_eval)
        linears = {n: m for n, m in fp.named_modules() if isinstance(m, torch.nn.Linear)}
        sizes = {n: m.in_features for n, m in linears.items()}
        sens = channel_sensitivity(linears, lambda: fp.q(calib), CHOICES)
        werr = weight_error(linears, CHOICES)
        rng = np.random.default_rng(seed)
        for budget in BUDGETS:
            qvla = allocate_bits(sens, sizes, CHOICES, budget)
            allocs = {"uniform": {n: [budget] * m.out_features for n, m in linears.items()},
                      "weight MSE": allocate_bits(werr, sizes, CHOICES, budget),
                      "random": {n: [int(x) for x in rng.permutation(b)] for n, b in qvla.items()},
                      "QVLA": qvla}
            for name, alloc in allocs.items():
                net = policy(seed)
                apply_allocation({n: m for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}, alloc)
                agree, ret = evaluate(net, test, ref, seed)
                pruned = int(sum(b == 0 for bs in alloc.values() for b in bs))
                res.setdefault(f"{name} @ {budget} bits", []).append((agree, ret, average_bits(alloc, sizes), pruned))
                print(f"seed {seed} {name} @ {budget}: agree {agree:.3f} return {ret:.1f} "
                      f"avg bits {average_bits(alloc, sizes):.2f} pruned {pruned}", file=sys.stderr, flush=True)
    (HERE / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    from rlx.evaluation.stats import bootstrap_ci

    def ci(x, d=3):
        m, lo, hi = bootstrap_ci(np.asarray(x, dtype=float), statistic="mean", reps=10_000, seed=0)
        return f"{m:.{d}f} [{lo:.{d}f}, {hi:.{d}f}]"

    lines = ["# QVLA: channel-wise bit allocation by action sensitivity (paper qvla)", "", __doc__.strip(), "",
             "Mean [95% bootstrap interval] over 3 policies (seeds).", "",
             "| allocation | action agreement | greedy return | average bits | pruned channels |", "|---|---|---|---|---|"]
    for name, rows in res.items():
        if name == "full precision":
            lines.append(f"| {name} | 1.000 | {ci([r[1] for r in rows], 1)} | 32 | 0 |")
            continue
        lines.append(f"| {name} | {ci([r[0] for r in rows])} | {ci([r[1] for r in rows], 1)} | "
                     f"{np.mean([r[2] for r in rows]):.2f} | {np.mean([r[3] for r in rows]):.1f} |")
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
