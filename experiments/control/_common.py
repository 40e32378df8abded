"""Shared helpers for the control experiments: run a trainer over seeds, interval estimates, markdown."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from rlx.config import build_config

try:  # the project's rliable-style stratified bootstrap (rlx.evaluation.stats)
    from rlx.evaluation.stats import bootstrap_ci as _bootstrap_ci

    CI_METHOD = "rlx.evaluation.stats.bootstrap_ci (percentile bootstrap over seeds, 10,000 resamples)"
except ImportError:  # pragma: no cover
    _bootstrap_ci = None
    CI_METHOD = "numpy percentile bootstrap over seeds (10,000 resamples)"


def ci(values) -> tuple[float, float, float]:
    """(mean, low, high): 95% percentile-bootstrap interval of the mean over seeds."""
    x = np.asarray(values, dtype=float)
    if _bootstrap_ci is not None:
        return _bootstrap_ci(x, "mean", reps=10_000, confidence=0.95, seed=0)
    rng = np.random.default_rng(0)
    means = x[rng.integers(0, len(x), size=(10_000, len(x)))].mean(1)
    return float(x.mean()), float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def fmt(values, digits: int = 1) -> str:
    m, lo, hi = ci(values)
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def run_seeds(module, data: dict, seeds: list[int], key: str = "eval/return_mean") -> tuple[list[float], list[dict]]:
    """Run `module.run(cfg, None)` for each seed; returns the `key` values and the summaries."""
    vals, sums = [], []
    for s in seeds:
        cfg = build_config(module.Config, {**data, "seed": s})
        t0 = time.perf_counter()
        out = module.run(cfg, None)
        out["wall_seconds"] = time.perf_counter() - t0
        sums.append(out)
        vals.append(out[key])
        print(f"  {data.get('kind')} seed {s}: {key} = {out[key]:.2f} ({out['wall_seconds']:.1f} s)", file=sys.stderr, flush=True)
    return vals, sums


def write(path: Path, text: str) -> None:
    path.write_text(text)
    print(text)
