"""Sandboxed execution rewards: sequential scoring (what TRL's GRPOTrainer does with a reward function)
vs rlx's reward worker pool (`rollout.reward_workers`, paper rollart's offloading of stateless
reward work), on the same 64 generated programs x 3 test cases.

Each program reads a number and prints its square after a small CPU loop (about 20 ms) plus the
process start of the sandbox (about 50 ms). Prints seconds per batch and the speedup over sequential.

    python bench/reward_pool.py [--programs 64] [--workers 1 2 4 8]
"""

import argparse
import os
import time

from rlx.rewards.code import execution_reward
from rlx.rewards.sandbox import SandboxLimits

PROGRAM = "s = 0\nfor i in range(200000):\n    s += i\nx = int(input())\nprint(x * x)\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--programs", type=int, default=64)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8])
    args = ap.parse_args()
    cases = [("3", "9"), ("4", "16"), ("12", "144")]
    limits = SandboxLimits(wall_seconds=10)
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    base = None
    for w in args.workers:
        t = time.perf_counter()
        if w == 1:
            rewards = [execution_reward(PROGRAM, cases, limits) for _ in range(args.programs)]
        else:  # rlx: the programs' test cases go to one pool of w sandboxes
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=w) as pool:
                rewards = list(pool.map(lambda _: execution_reward(PROGRAM, cases, limits), range(args.programs)))
        dt = time.perf_counter() - t
        assert all(r == 1.0 for r in rewards)
        base = base or dt
        print(f"workers {w}: {dt:.2f} s per batch of {args.programs} programs x {len(cases)} cases, "
              f"speedup {base / dt:.2f}x")


if __name__ == "__main__":
    main()
