"""Seconds per RLVR step with online rollout pruning (paper arrol) beside plain GRPO, in one process.

    python bench/prune_speed.py                 # 3 repeats x 60 steps per condition, 1 thread

Conditions (the default recipe, recipes/arith_arrol.yaml, from assets/arith-base): grpo8 (8 rollouts per
prompt), arrol (16 started, 8 kept after 2 tokens, rule diverse) and grpo16 (16 kept). Each run drives
`rlx.train.rlvr.run` unchanged with a RunDir that stamps the wall clock and CPU clock at every metrics
row (one loop iteration: rollout, verify, advantages, update, metrics). The first 5 steps of each run are
dropped; medians over the rest, pooled over the repeats; conditions interleave (a, b, c, c, b, a, ...) so
a change in machine load hits all of them. Prints the medians, the rollout stage's median and the ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WARMUP = 5


def run_once(overrides: list[str], steps: int, seed: int) -> tuple[list[float], list[float], list[float]]:
    import yaml

    from rlx.config import apply_overrides, build_config
    from rlx.rundir import RunDir
    from rlx.train import rlvr

    class Stamped(RunDir):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.wall, self.cpu, self.rollout = {}, {}, {}

        def log(self, step, metrics):
            self.wall.setdefault(int(step), time.perf_counter())
            self.cpu.setdefault(int(step), time.process_time())
            if "time/rollout" in metrics:
                self.rollout.setdefault(int(step), metrics["time/rollout"])
            super().log(step, metrics)

    raw = yaml.safe_load((ROOT / "recipes" / "arith_arrol.yaml").read_text())
    raw = apply_overrides(raw, [f"train.steps={steps}", "train.checkpoint_every=0", "eval.every=0", "eval.n=4",
                                f"seed={seed}", f"model.path={ROOT / 'assets' / 'arith-base'}", *overrides])
    cfg = build_config(rlvr.Config, raw)
    with tempfile.TemporaryDirectory() as d:
        rd = Stamped(Path(d) / "run", config_yaml="bench\n")
        rlvr.run(cfg, rd)
    wall = [rd.wall[k] - rd.wall[k - 1] for k in range(WARMUP + 1, steps + 1)]
    cpu = [rd.cpu[k] - rd.cpu[k - 1] for k in range(WARMUP + 1, steps + 1)]
    return wall, cpu, [rd.rollout[k] for k in range(WARMUP + 1, steps + 1)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    import os

    import torch

    torch.set_num_threads(1)
    conditions = {"grpo8": ["prune.candidates=0"], "arrol": [], "grpo16": ["prune.candidates=0", "rollout.group_size=16"]}
    names = list(conditions)
    order = [n for r in range(args.repeats) for n in (names if r % 2 == 0 else names[::-1])]
    print(f"prune_speed  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}  torch {torch.__version__}  1 thread")
    res = {n: ([], [], []) for n in names}
    for i, name in enumerate(order):
        wall, cpu, roll = run_once(conditions[name], args.steps, seed=i)
        for acc, xs in zip(res[name], (wall, cpu, roll)):
            acc.extend(xs)
        print(f"  run {i + 1}/{len(order)} {name}: median step {statistics.median(wall):.4f} s", flush=True)
    med = {n: [statistics.median(x) for x in res[n]] for n in names}
    print(f"  {'condition':<8} {'s/step':>8} {'CPU s/step':>10} {'rollout s':>9}")
    for n in names:
        print(f"  {n:<8} {med[n][0]:8.4f} {med[n][1]:10.4f} {med[n][2]:9.4f}")
    print(f"arrol vs grpo16: {med['grpo16'][0] / med['arrol'][0]:.2f}x faster per step "
          f"({med['grpo16'][1] / med['arrol'][1]:.2f}x in CPU seconds); arrol vs grpo8: "
          f"{med['arrol'][0] / med['grpo8'][0]:.2f}x the time per step")
    return 0


if __name__ == "__main__":
    sys.exit(main())
