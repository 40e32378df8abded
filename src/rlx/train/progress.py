"""A rich progress bar that shows a few live metrics; quiet when stdout is not a terminal."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

__all__ = ["progress_bar", "fmt_metrics"]


def progress_bar(description: str) -> Progress:
    console = Console(file=sys.stderr)
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("<"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=False,
        refresh_per_second=4,
    )


def fmt_metrics(metrics: dict[str, float], keys: dict[str, str]) -> str:
    """'loss 0.31 acc 0.42' from metrics, showing only `keys` (metric name -> short label)."""
    return "  ".join(f"{label} {metrics[k]:.3g}" for k, label in keys.items() if k in metrics)
