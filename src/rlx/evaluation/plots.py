"""PNG plots for runs and comparisons (matplotlib, Agg backend: no display needed).

- `plot_run_curves(rows, out_dir, keys)`: learning curves of one run's metrics.jsonl, one figure
  per namespace prefix (train, rollout, eval, time, env, ...), one subplot per key.
- `plot_interval_estimates`, `plot_performance_profiles`, `plot_band_curves`, `plot_passk_curves`:
  the figures of a `rlx compare` report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "plot_run_curves",
    "plot_interval_estimates",
    "plot_performance_profiles",
    "plot_band_curves",
    "plot_passk_curves",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _safe_name(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def _grid(n: int) -> tuple[int, int]:
    cols = min(3, n)
    return (n + cols - 1) // cols, cols


def plot_run_curves(rows: list[dict], out_dir: Path, keys: Iterable[str] | None = None) -> list[Path]:
    """Draw one PNG per namespace (`train/loss` -> `train.png`), one subplot per metric key.

    rows: parsed metrics.jsonl lines, each {"step": int, "ns/key": float | None, ...}.
    keys: metric names to draw; None draws all. Non-finite and None values are skipped, keys with no
    finite value are not drawn. Keys without a "/" go to `misc.png`. Returns the written paths.
    """
    wanted = None if keys is None else set(keys)
    series: dict[str, dict[str, tuple[list[float], list[float]]]] = {}
    for i, row in enumerate(rows):
        step = row.get("step", i)
        if not _finite(step):
            continue
        for k, v in row.items():
            if k == "step" or (wanted is not None and k not in wanted) or not _finite(v):
                continue
            ns = k.split("/", 1)[0] if "/" in k else "misc"
            xs, ys = series.setdefault(ns, {}).setdefault(k, ([], []))
            xs.append(float(step))
            ys.append(float(v))
    if not series:
        return []
    plt = _pyplot()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for ns in sorted(series):
        items = sorted(series[ns].items())
        nrows, ncols = _grid(len(items))
        fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False)
        for ax, (k, (xs, ys)) in zip(axes.flat, items):
            ax.plot(xs, ys, marker="." if len(xs) < 30 else None, linewidth=1.2)
            ax.set_title(k, fontsize=9)
            ax.set_xlabel("step", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(items):]:
            ax.set_visible(False)
        fig.tight_layout()
        path = out_dir / f"{_safe_name(ns)}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


# ---------------------------------------------------------------------------------------------
# comparison figures (rlx compare)
# ---------------------------------------------------------------------------------------------
Band = tuple  # (x, center, low | None, high | None)


def _as_triple(v: Any) -> tuple[float, float, float]:
    if hasattr(v, "as_tuple"):
        return v.as_tuple()
    p, lo, hi = v
    return float(p), float(lo), float(hi)


def _colors(n: int) -> list:
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    return [cmap(i % 10) for i in range(n)]


def plot_interval_estimates(results: Mapping[str, Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """Point estimates with interval bars: one panel per metric, one row per algorithm.

    results: {algorithm: {metric: (point, low, high) or Interval}}; NaN bounds draw the point only.
    """
    plt = _pyplot()
    algos = list(results)
    metrics = list(dict.fromkeys(m for a in algos for m in results[a]))
    colors = _colors(len(algos))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 0.5 * len(algos) + 1.4), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for i, a in enumerate(algos):
            if m not in results[a]:
                continue
            p, lo, hi = _as_triple(results[a][m])
            if math.isfinite(lo) and math.isfinite(hi):
                ax.barh(i, hi - lo, left=lo, height=0.6, color=colors[i], alpha=0.6)
            ax.plot([p, p], [i - 0.3, i + 0.3], color="black", linewidth=1.5)
        ax.set_yticks(range(len(algos)))
        ax.set_yticklabels(algos if ax is axes[0][0] else [""] * len(algos), fontsize=8)
        ax.set_title(m, fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def plot_performance_profiles(
    profiles: Mapping[str, Band], taus: np.ndarray, path: Path, xlabel: str = "score tau"
) -> Path:
    """Fraction of runs with score > tau, with pointwise bootstrap bands (None bands: line only)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for color, (a, band) in zip(_colors(len(profiles)), profiles.items()):
        center, low, high = band
        ax.plot(taus, center, color=color, label=a, linewidth=1.5)
        if low is not None and high is not None:
            ax.fill_between(taus, low, high, color=color, alpha=0.2)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("fraction of runs with score > tau", fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_band_curves(curves: Mapping[str, Band], metric: str, path: Path, xlabel: str = "step",
                     logx: bool = False) -> Path:
    """Curves with shaded bands: {algorithm: (x, center, low | None, high | None)}."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    for color, (a, (x, center, low, high)) in zip(_colors(len(curves)), curves.items()):
        x, center = np.asarray(x, dtype=float), np.asarray(center, dtype=float)
        if x.shape != center.shape:
            raise ValueError(f"{a}: x has length {x.size} but the curve has length {center.size}")
        ax.plot(x, center, color=color, label=a, linewidth=1.5, marker="." if x.size < 20 else None)
        if low is not None and high is not None:
            ax.fill_between(x, low, high, color=color, alpha=0.2)
    if logx:
        ax.set_xscale("log", base=2)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(metric, fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_passk_curves(curves: Mapping[str, Band], path: Path) -> Path:
    """pass@k against k (log2 axis) with bands: {algorithm: (ks, pass@k, low | None, high | None)}."""
    return plot_band_curves(curves, "pass@k", path, xlabel="k", logx=True)


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
