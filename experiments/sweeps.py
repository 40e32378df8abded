"""Shared driver of the multi-seed experiments: one `rlx sweep` per condition, then `rlx compare`.

    run_conditions({"a": [...overrides], "b": [...]}, "recipes/x.yaml", seeds=5, out=..., dest=...)

Runs go to `out` (not committed); the compare report and each seed's summary.json are copied to
`dest`, which is committed next to the experiment's script.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rlx(*args: str) -> int:
    cmd = [sys.executable, "-m", "rlx.cli", *args]
    print("+", " ".join(cmd), flush=True)
    return subprocess.call(cmd, cwd=ROOT)


def run_conditions(conditions: dict[str, list[str]], recipe: str, *, seeds: int, out: Path, dest: Path,
                   metrics: list[str], parallel: int = 2, only: list[str] | None = None) -> int:
    for name in only or list(conditions):
        rlx("sweep", recipe, *conditions[name], "--seeds", str(seeds), "--out", str(out / name),
            "--parallel", str(parallel), "--skip-done")
    report = out / "report"
    shutil.rmtree(report, ignore_errors=True)  # never publish an earlier run's report
    metric_args = [a for m in metrics for a in ("--metric", m)]
    code = rlx("compare", *(str(out / n) for n in conditions), "--names", *conditions, *metric_args,
               "--out", str(report))
    if not report.is_dir():  # compare wrote nothing: keep the committed report and summaries as they were
        print(f"rlx compare failed (exit {code}): {dest} left unchanged", file=sys.stderr)
        return code or 1
    fresh = dest / ".report.new"
    shutil.rmtree(fresh, ignore_errors=True)
    shutil.copytree(report, fresh)
    shutil.rmtree(dest / "report", ignore_errors=True)
    fresh.rename(dest / "report")
    summaries = {n: {p.parent.name: json.loads(p.read_text()) for p in sorted((out / n).glob("seed_*/summary.json"))}
                 for n in conditions}
    (dest / "summaries.json").write_text(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    return code


def mean_ci(x, digits: int = 4) -> str:
    """'mean [low, high]': the mean and its 95% percentile-bootstrap interval over runs (10,000 resamples)."""
    import numpy as np

    from rlx.evaluation.stats import bootstrap_ci

    point, low, high = bootstrap_ci(np.array(x, dtype=float), statistic="mean", reps=10_000, seed=0)
    return f"{point:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def sweep_args(doc: str, out: str, seeds: int = 3):
    """The command line every multi-seed experiment shares: --seeds, --parallel, --out."""
    import argparse

    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=seeds)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default=out)
    return ap.parse_args()
