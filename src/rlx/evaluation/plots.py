"""PNG plots for runs and comparisons (matplotlib, Agg backend: no display needed).

- `plot_run_curves(rows, out_dir, keys)`: learning curves of one run's metrics.jsonl, one figure
  per namespace prefix (train, rollout, eval, time, env, ...), one subplot per key.
- `plot_interval_estimates`, `plot_performance_profiles`, `plot_band_curves`, `plot_passk_curves`:
  the figures of a `rlx compare` report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
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
