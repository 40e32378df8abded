"""`rlx compare DIR_A DIR_B ... --metric eval/accuracy`: interval estimates, P(A > B), a report.

Each DIR is a sweep (`rlx sweep`: seed_*/ run directories with summary.json and metrics.jsonl) or a
single run directory (one seed). For every DIR the final value of each --metric in summary.json is
one score per seed; with several --metric flags the metrics act as tasks (a [seeds, metrics] score
matrix, so put them on one scale). Printed: mean, IQM and median with percentile-bootstrap 95%
intervals (stratified over seeds), and P(A > B) with its interval for each pair. With --out, a report
is written (see rlx.evaluation.report). Seeds that failed (no summary.json) are skipped and named.

One seed gives no interval: the point estimates are still printed and written, then the command
exits with code 2 and a one-line message saying which DIR needs more seeds.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from rlx.config import ConfigError
from rlx.evaluation import stats
from rlx.rundir import read_metrics

__all__ = [
    "Sweep", "Comparison", "load_sweep", "score_matrices", "curve_matrix", "passk_matrix_from_summaries",
    "compare_sweeps", "add_arguments", "main",
]

STATISTICS = ("mean", "iqm", "median")
_PASSK = re.compile(r"^eval/pass@(\d+)$")


@dataclass
class Sweep:
    name: str
    path: Path
    runs: list[Path]                # seed directories with a summary.json, in seed order
    summaries: list[dict[str, Any]]
    failed: list[str] = field(default_factory=list)  # seed directories without summary.json

    def metrics_rows(self) -> list[list[dict[str, Any]]]:
        return [read_metrics(r / "metrics.jsonl") for r in self.runs]


@dataclass
class Comparison:
    metrics: list[str]
    sweeps: list[Sweep]
    scores: dict[str, np.ndarray]                      # name -> [seeds, metrics]
    estimates: dict[str, dict[str, stats.Interval]]    # name -> statistic -> interval (NaN bounds: refused)
    pairs: list[tuple[str, str, stats.Interval]]       # (A, B, P(A > B))
    reps: int
    seed: int
    confidence: float
    notes: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # sweeps with one seed

    def to_json(self) -> dict[str, Any]:
        def iv(x: stats.Interval) -> dict[str, float | None]:
            return {k: (v if math.isfinite(v) else None) for k, v in zip(("point", "low", "high"), x.as_tuple())}

        return {
            "metrics": self.metrics, "reps": self.reps, "seed": self.seed, "confidence": self.confidence,
            "algorithms": {
                s.name: {"dir": str(s.path), "runs": [r.name for r in s.runs], "failed": s.failed,
                         "scores": self.scores[s.name].tolist(),
                         **{k: iv(v) for k, v in self.estimates[s.name].items()}}
                for s in self.sweeps
            },
            "pairs": [{"a": a, "b": b, "p_a_better": iv(p)} for a, b, p in self.pairs],
            "notes": self.notes,
        }


def _seed_key(p: Path) -> tuple[int, str]:
    tail = p.name.split("_", 1)[-1]
    return (int(tail), p.name) if tail.isdigit() else (1 << 30, p.name)


def load_sweep(path: str | Path, name: str | None = None) -> Sweep:
    """Read a sweep directory (seed_*/summary.json) or a single run directory (summary.json)."""
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"compare: {path} is not a directory")
    seed_dirs = sorted((p for p in path.glob("seed_*") if p.is_dir()), key=_seed_key)
    if not seed_dirs and (path / "summary.json").is_file():
        seed_dirs = [path]
    runs = [d for d in seed_dirs if (d / "summary.json").is_file()]
    failed = [d.name for d in seed_dirs if d not in runs]
    if not runs:
        raise ConfigError(f"compare: {path} holds no runs (expected seed_*/summary.json, as written by rlx sweep)")
    summaries = []
    for r in runs:
        try:
            summaries.append(json.loads((r / "summary.json").read_text()))
        except json.JSONDecodeError as e:
            raise ConfigError(f"compare: {r / 'summary.json'} is not valid JSON ({e.msg})") from None
    return Sweep(name or path.name, path, runs, summaries, failed)


def _finite_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def score_matrices(sweeps: Sequence[Sweep], metrics: Sequence[str]) -> dict[str, np.ndarray]:
    """{name: [seeds, metrics]} from summary.json; a missing or non-numeric value names its runs."""
    missing, bad = [], []
    out = {}
    for s in sweeps:
        rows = []
        for run, summ in zip(s.runs, s.summaries):
            row = []
            for m in metrics:
                if m not in summ:
                    missing.append(f"{s.name}/{run.name}" if run != s.path else s.name)
                elif not _finite_number(summ[m]):
                    bad.append(f"{s.name}/{run.name}={summ[m]!r}")
                row.append(summ.get(m))
            rows.append(row)
        out[s.name] = rows
    if missing:
        raise ConfigError(f"compare: metric {', '.join(metrics)} missing from runs: {', '.join(sorted(set(missing)))}")
    if bad:
        raise ConfigError(f"compare: metric {', '.join(metrics)} is not a finite number in runs: {', '.join(bad)}")
    return {k: np.asarray(v, dtype=np.float64) for k, v in out.items()}


def curve_matrix(sweep: Sweep, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps [L], values [seeds, L]) of `key` in metrics.jsonl over the steps every seed logged."""
    per_run = []
    for rows in sweep.metrics_rows():
        d = {int(r["step"]): float(r[key]) for r in rows if "step" in r and _finite_number(r.get(key))}
        if not d:
            return None
        per_run.append(d)
    steps = sorted(set.intersection(*(set(d) for d in per_run)))
    if not steps:
        return None
    return np.asarray(steps), np.asarray([[d[t] for t in steps] for d in per_run])


def passk_matrix_from_summaries(sweep: Sweep) -> tuple[np.ndarray, np.ndarray] | None:
    """(ks [K], pass@k [seeds, K]) from summary keys eval/pass@K present in every seed."""
    common = None
    for summ in sweep.summaries:
        ks = {int(m.group(1)) for k, v in summ.items() if (m := _PASSK.match(k)) and _finite_number(v)}
        common = ks if common is None else common & ks
    if not common:
        return None
    ks = sorted(common)
    return np.asarray(ks), np.asarray([[s[f"eval/pass@{k}"] for k in ks] for s in sweep.summaries], dtype=float)


def _nan_interval(point: float) -> stats.Interval:
    return stats.Interval(float(point), math.nan, math.nan)


def compare_sweeps(sweeps: Sequence[Sweep], metrics: Sequence[str], reps: int = 10_000, seed: int = 0,
                   confidence: float = 0.95) -> Comparison:
    """Point estimates and intervals for each sweep, P(A > B) for each pair (A listed before B)."""
    names = [s.name for s in sweeps]
    if len(set(names)) != len(names):
        raise ConfigError(f"compare: names must be distinct, got {names} (use --names)")
    scores = score_matrices(sweeps, metrics)

    def rng(*names: str) -> np.random.Generator:  # a stream per sweep / pair: the same runs get the same
        return np.random.default_rng([seed, zlib.crc32("\0".join(names).encode())])  # intervals in any order
    estimates: dict[str, dict[str, stats.Interval]] = {}
    refused = [s.name for s in sweeps if len(s.runs) < 2]
    for s in sweeps:
        x = scores[s.name]
        if s.name in refused:
            estimates[s.name] = {m: _nan_interval(stats.METRICS[m](x)) for m in STATISTICS}
        else:
            estimates[s.name] = stats.interval_estimates({s.name: x}, STATISTICS, reps, rng(s.name), confidence,
                                                         paired=True)[s.name]  # metrics of one seed move together
    pairs = []
    for a, b in combinations(sweeps, 2):
        xa, xb = scores[a.name], scores[b.name]
        if a.name in refused or b.name in refused:
            pairs.append((a.name, b.name, _nan_interval(stats.probability_of_improvement(xa, xb))))
        else:
            p_ab = stats.probability_of_improvement_ci(xa, xb, reps, confidence, rng(a.name, b.name), paired=True)
            pairs.append((a.name, b.name, stats.Interval(*p_ab)))
    notes = [f"{s.name}: skipped failed seeds {', '.join(s.failed)}" for s in sweeps if s.failed]
    notes += [f"{n}: intervals refused: a single seed gives no confidence interval (run rlx sweep --seeds 5)"
              for n in refused]
    notes += [f"{s.name}: only {len(s.runs)} seeds: percentile bootstrap intervals are too narrow this small "
              f"(for the mean of 2 or 3 seeds they are the lowest to the highest seed); 5 or more are better"
              for s in sweeps if 2 <= len(s.runs) < 5]
    if len(metrics) > 1:
        notes.append(f"mean, IQM, median and P(A > B) pool the {len(metrics)} metrics as rliable pools tasks: "
                     "they mean something only when the metrics share a scale and a direction (higher = better)")
    return Comparison(list(metrics), list(sweeps), scores, estimates, pairs, reps, seed, confidence, notes, refused)


# ---------------------------------------------------------------------------------------------
# command line
# ---------------------------------------------------------------------------------------------
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dirs", nargs="+", help="sweep directories (seed_*/ runs) or single run directories")
    p.add_argument("--metric", action="append", required=True,
                   help="summary.json key to compare, e.g. eval/accuracy (repeat: metrics act as tasks)")
    p.add_argument("--names", nargs="+", default=None, help="display names, one per DIR (default: folder names)")
    p.add_argument("--out", default=None, help="write the report (Markdown, PNGs, HTML) to this folder")
    p.add_argument("--reps", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the bootstrap (default 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="interval coverage (default 0.95)")


def _fmt(iv: stats.Interval) -> str:
    if math.isnan(iv.low):
        return f"{iv.point:.4f} [n/a: 1 seed]"
    return f"{iv.point:.4f} [{iv.low:.4f}, {iv.high:.4f}]"


def print_tables(cmp: Comparison, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(width=140)
    pct = f"{cmp.confidence:.0%}"
    t = Table(title=f"{', '.join(cmp.metrics)}: point estimate [{pct} interval], {cmp.reps} bootstrap resamples")
    t.add_column("method")
    t.add_column("seeds", justify="right")
    for m in STATISTICS:
        t.add_column(m.upper() if m == "iqm" else m, justify="right")
    for s in cmp.sweeps:
        t.add_row(escape(s.name), str(len(s.runs)), *(escape(_fmt(cmp.estimates[s.name][m])) for m in STATISTICS))
    console.print(t)
    if cmp.pairs:
        t = Table(title=f"P(A > B) [{pct} interval]", min_width=40)
        for c in ("A", "B", "P(A > B)"):
            t.add_column(c, justify="right" if c.startswith("P") else "left")
        for a, b, p in cmp.pairs:
            t.add_row(escape(a), escape(b), escape(_fmt(p)))
        console.print(t)
    for n in cmp.notes:
        console.print(f"note: {escape(n)}")


def main(args: argparse.Namespace) -> int:
    if args.reps < 1:
        raise ConfigError(f"compare: --reps = {args.reps}: expected at least 1")
    if not 0 < args.confidence < 1:
        raise ConfigError(f"compare: --confidence = {args.confidence}: expected a value in (0, 1)")
    if args.names is not None and len(args.names) != len(args.dirs):
        raise ConfigError(f"compare: --names has {len(args.names)} names for {len(args.dirs)} directories")
    names = args.names or _default_names([Path(d) for d in args.dirs])
    sweeps = [load_sweep(d, n) for d, n in zip(args.dirs, names)]
    cmp = compare_sweeps(sweeps, args.metric, args.reps, args.seed, args.confidence)
    print_tables(cmp)
    if args.out:
        from rlx.evaluation.report import write_report

        paths = write_report(cmp, Path(args.out))
        print(f"report: {paths['html']} (and {paths['markdown'].name}, {len(paths['png'])} PNGs)")
    if cmp.refused:
        raise ConfigError(f"compare: intervals refused for {', '.join(cmp.refused)}: a single seed gives no "
                          "confidence interval; point estimates are shown above (run rlx sweep --seeds 5)")
    return 0


def _default_names(paths: list[Path]) -> list[str]:
    names = [p.resolve().name for p in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{p.resolve().parent.name}/{p.resolve().name}" for p in paths]
