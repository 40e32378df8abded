"""rollout.staleness 1 on whatever device `model.device=auto` picks (a GPU where there is one): step t >= 2
trains θ_{t-1} on a batch sampled by θ_{t-2}, so wherever update t-1 moved the weights (non-zero gradient;
a step whose groups all have zero reward variance moves nothing) its ratio to the sampling policy is not 1. Prints, per step, the sync run's and the staleness-1 run's grad norm, approx KL and max ratio.

    python bench/staleness_check.py            # 4 steps, 8 prompts x 8 samples, lr 1e-3
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    from rlx.cli import main as rlx_main

    args = ["train", str(ROOT / "recipes" / "arith_grpo.yaml"), "train.steps=4", "eval.n=8", "eval.every=0",
            "rollout.prompts_per_step=8", "rollout.group_size=8", "train.micro_batch_size=64",
            "train.optim.lr=1e-3", "train.checkpoint_every=0"]
    keys = ("train/grad_norm", "train/policy/approx_kl", "train/policy/ratio_max", "time/rollout_background")
    with tempfile.TemporaryDirectory() as d:
        rows = {}
        for name, extra in (("sync", []), ("staleness1", ["rollout.staleness=1"])):
            assert rlx_main([*args, *extra, "--out", str(Path(d) / name)]) == 0
            lines = (Path(d) / name / "metrics.jsonl").read_text().splitlines()
            rows[name] = {r["step"]: r for r in map(json.loads, lines) if "train/grad_norm" in r}
        import torch

        print(f"device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}")
        for step in sorted(rows["sync"]):
            for name in rows:
                r = rows[name].get(step, {})
                print(f"step {step} {name:10s} " + "  ".join(f"{k.split('/')[-1]} {r[k]:.3g}" for k in keys if k in r))
        st = rows["staleness1"]  # B_s was sampled by the weights before update s-1
        moved = [s for s in (2, 3, 4) if st[s - 1]["train/grad_norm"] > 0]  # update s-1 changed the weights
        ok = bool(moved) and all(st[s]["train/policy/approx_kl"] > 1e-6 for s in moved)
        print(f"steps after a non-zero update: {moved}; each trains on an off-policy batch (approx KL > 1e-6): {ok}")
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
