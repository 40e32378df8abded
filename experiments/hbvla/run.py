"""HBVLA-style 1-bit quantization of CartPole Q-network policies (paper hbvla), 5 seeds.

Claim (paper hbvla): binarizing a policy with an action-aware Hessian for the salient weights and a
transform (sparse orthogonal + Haar) before group-wise 1-bit codes keeps far more of the
full-precision behaviour than plain binarization methods.

Setting: the PQN policies of experiments/qvla (recipes/pqn_cartpole.yaml, 300k env steps; MLP
4-64-64-2 with LayerNorm), seeds 0-4. Calibration: 4096 states from the full-precision greedy policy
with 10% random actions; test: 4096 other states. Every nn.Linear binarized (`rlx.quant.hbvla`):

    sign     one sign code and scale per row (XNOR-style)
    group    group-wise codes, 8 columns per group
    billm    group + plain Hessian (X^T X) salient columns (10%) with residual (2-bit) codes
    hbvla    as billm, but the margin-weighted policy Hessian, and the rest binarized in the Haar domain
    hbvla -haar, hbvla -policy H    the two ablations

Metrics: greedy-action agreement with the full-precision policy on the test states; greedy return
(50 episodes). Run: python experiments/hbvla/run.py   (trains the policies if missing; runs go to runs/qvla)
"""

import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from qvla.run import evaluate, policy, states  # noqa: E402
from sweeps import mean_ci  # noqa: E402

from rlx.quant import hbvla as hb  # noqa: E402

HERE = Path(__file__).resolve().parent
SEEDS = [0, 1, 2, 3, 4]
SALIENT = 0.1
GROUP = int(sys.argv[sys.argv.index("--group") + 1]) if "--group" in sys.argv else 8  # columns per group
SUFFIX = "" if GROUP == 8 else f"_g{GROUP}"  # results_g64.md for --group 64


VARIANTS = {  # name -> quantize_policy arguments
    "sign": {"method": "sign"},
    "group": {"method": "group"},
    "billm": {"method": "hbvla", "policy_weighted": False, "transform": False},
    "hbvla": {"method": "hbvla"},
    "hbvla -haar": {"method": "hbvla", "transform": False},
    "hbvla -policy H": {"method": "hbvla", "policy_weighted": False},
}


def quantized(seed: int, variant: str, calib: torch.Tensor):
    net = policy(seed)
    bits = hb.quantize_policy(net, lambda: net.q(calib), group=GROUP, salient_frac=SALIENT, **VARIANTS[variant])
    sizes = {n: m.weight.numel() for n, m in net.named_modules() if isinstance(m, torch.nn.Linear)}
    return net, sum(bits[n] * k for n, k in sizes.items()) / sum(sizes.values())  # weight-averaged


def main() -> None:
    torch.set_num_threads(1)
    methods = list(VARIANTS)
    res: dict = {}
    for seed in SEEDS:
        fp = policy(seed)
        calib, test = states(fp, 100 + seed), states(fp, 200 + seed)
        with torch.no_grad():
            ref = fp.q(test).argmax(1)
        res.setdefault("full precision", []).append((1.0, evaluate(fp, test, ref, seed)[1], 32.0))
        for method in methods:
            net, bits = quantized(seed, method, calib)
            agree, ret = evaluate(net, test, ref, seed)
            res.setdefault(method, []).append((agree, ret, bits))
            print(f"seed {seed} {method}: agree {agree:.3f} return {ret:.1f} bits {bits:.2f}", file=sys.stderr,
                  flush=True)
    (HERE / f"results{SUFFIX}.json").write_text(json.dumps(res, indent=1) + "\n")
    lines = ["# HBVLA-style 1-bit quantization of control policies (paper hbvla)", "", __doc__.strip(), "",
             f"Groups of {GROUP} columns. Mean [95% bootstrap interval] over {len(SEEDS)} policies (seeds).", "",
             "| method | action agreement | greedy return | bits per weight (with scales) |", "|---|---|---|---|"]
    for name, rows in res.items():
        lines.append(f"| {name} | {mean_ci([r[0] for r in rows], 3)} | {mean_ci([r[1] for r in rows], 1)} | "
                     f"{np.mean([r[2] for r in rows]):.2f} |")
    base = res["billm"]
    for name in ("hbvla", "hbvla -haar", "hbvla -policy H"):
        d = [a[0] - b[0] for a, b in zip(res[name], base)]
        lines.append(f"\n{name} minus billm, action agreement, paired by seed: {mean_ci(d, 3)}")
    (HERE / f"results{SUFFIX}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
