"""The run directory contract, shared by every command that trains or evaluates.

    OUT/
      config.yaml        fully resolved config (re-runnable: `rlx train OUT/config.yaml`)
      metrics.jsonl      one JSON object per logged step: {"step": int, "train/...": float, ...}
                         keys are namespaced train/, rollout/, eval/, time/ (control: also env/)
      summary.json       final metrics, e.g. eval/accuracy, eval/pass@1, ... (written atomically)
      checkpoints/       step_NNNNNNNN/ directories, written atomically; LATEST names the newest
      plots/             PNG learning curves

Nothing is created before the config has been validated, so bad input leaves no half-written run.
Every file is written to a temporary name and renamed, so a kill never leaves a torn file.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

__all__ = ["RunDir", "atomic_write_text", "atomic_write_json", "atomic_dir", "read_metrics"]


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old file or the new one, never a torn one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_path(path.parent)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _clean(obj: Any) -> Any:
    """JSON has no NaN/inf: write them as null so every line stays valid JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n")


def _fsync_path(path: Path) -> None:
    """Flush a file's or a directory's contents to disk (a directory: the names in it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file under `root`, then every directory, deepest first (so a rename of `root` after
    this never exposes a directory whose files are still only in the page cache)."""
    dirs = []
    for here, _, files in os.walk(root):
        dirs.append(Path(here))
        for name in files:
            _fsync_path(Path(here) / name)
    for d in reversed(dirs):
        _fsync_path(d)


def atomic_dir(final: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmpdir)` then rename tmpdir to `final` (replacing it). Returns `final`.

    The files are fsynced before the rename and the parent directory after it, so after a power loss
    `final` is either the old directory or the complete new one."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.", suffix=".tmp"))
    try:
        write(tmp)
        os.chmod(tmp, 0o755)
        _fsync_tree(tmp)
        if final.exists():
            old = final.with_name(f".{final.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _fsync_path(final.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _finish_interrupted_swaps(parent: Path) -> None:
    """Clean what a kill inside `atomic_dir` leaves in `parent`: `.NAME.*.tmp` (a half-written directory:
    removed) and `.NAME.old` (the previous version: put back if NAME is missing, else removed)."""
    for p in parent.glob(".*.tmp"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)
    for p in parent.glob(".*.old"):
        final = parent / p.name[1:-len(".old")]
        if final.exists():
            shutil.rmtree(p, ignore_errors=True)
        else:
            os.replace(p, final)


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read metrics.jsonl; a torn line (from a kill mid-write) is skipped, and the rows after it are kept
    (`RunDir` starts appending on a fresh line, so a torn line never swallows the next row)."""
    rows = []
    p = Path(path)
    if not p.exists():
        return rows
    for line in p.read_text().splitlines():
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def _open_for_append(path: Path):
    """Open metrics.jsonl for appending, first ending a torn last line so the next row starts clean."""
    if path.exists() and path.stat().st_size > 0:
        with open(path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            torn = f.read(1) != b"\n"
        if torn:
            with open(path, "a") as f:
                f.write("\n")
    return open(path, "a")


def _step_dirs(checkpoint_dir: Path) -> list[Path]:
    """checkpoints/step_N directories, oldest first by N (numerically: step_100000000 comes last)."""
    def step(p: Path) -> int:
        try:
            return int(p.name.split("_", 1)[1])
        except ValueError:
            return -1

    return sorted((p for p in checkpoint_dir.glob("step_*") if p.is_dir() and step(p) >= 0), key=step)


class RunDir:
    """One run's output directory. Create it only after the config validated.

    Usage:
        run = RunDir(out, config_yaml=dump_yaml(cfg), resume=args.resume)
        run.log(step, {"train/loss": 0.3, "time/step": 0.1})
        run.save_checkpoint(step, lambda d: save_state(d))
        run.write_summary({"eval/accuracy": 0.41})
    """

    def __init__(self, path: str | Path, config_yaml: str, resume: bool = False, resumable: bool = True):
        """resumable: the command has --resume (training); else the hint says to choose another --out."""
        self.path = Path(path)
        self.resume = resume
        if self.path.exists() and not self.path.is_dir():
            raise FileExistsError(f"--out {self.path} is a file, not a run directory; choose another --out")
        if not resume and self.path.exists() and any(self.path.iterdir()):
            metrics = self.path / "metrics.jsonl"
            logged = metrics.exists() and metrics.stat().st_size > 0
            if logged or _step_dirs(self.path / "checkpoints"):  # a run that crashed before either: nothing to lose
                hint = "pass --resume to continue it or choose another --out" if resumable else "choose another --out"
                raise FileExistsError(f"run directory {self.path} already holds a run; {hint}")
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "checkpoints").mkdir(exist_ok=True)
        _finish_interrupted_swaps(self.path / "checkpoints")
        (self.path / "plots").mkdir(exist_ok=True)
        atomic_write_text(self.path / "config.yaml", config_yaml)
        self._metrics = _open_for_append(self.path / "metrics.jsonl")
        self._rows = len(read_metrics(self.metrics_path))  # rows in the log (a checkpoint records the count)
        self._tb = None

    # -- metrics ---------------------------------------------------------------------------
    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    def log(self, step: int, metrics: dict[str, float]) -> None:
        row = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        self._metrics.write(json.dumps(_clean(row)) + "\n")
        self._metrics.flush()
        self._rows += 1
        if self._tb is not None:
            for k, v in metrics.items():
                self._tb.add_scalar(k, float(v), int(step))

    def enable_tensorboard(self) -> bool:
        """Mirror metrics to TensorBoard event files under OUT/tb if tensorboard is installed."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except Exception:
            return False
        self._tb = SummaryWriter(str(self.path / "tb"))
        return True

    def truncate_metrics(self, last_step: int) -> None:
        """On resume: drop rows logged after the checkpoint of `last_step` so the log matches an unbroken run:
        the rows the log held when it was written (a final evaluation logged at the last step after the last
        checkpoint goes too), or, for a checkpoint that predates that count, the rows up to its step."""
        self._metrics.close()
        count = self.checkpoint_dir / f"step_{last_step:08d}" / "metrics_rows"
        rows = read_metrics(self.metrics_path)
        if count.is_file():
            rows = rows[:int(count.read_text())]
        else:
            rows = [r for r in rows if r.get("step", -1) <= last_step]
        atomic_write_text(self.metrics_path, "".join(json.dumps(r) + "\n" for r in rows))
        self._metrics = _open_for_append(self.metrics_path)
        self._rows = len(rows)

    def start_over(self) -> None:
        """`--resume` found no checkpoint (the run was killed before its first): say so, drop the killed
        run's rows, and let the trainer start from the beginning."""
        import sys

        print(f"--resume: no checkpoint in {self.checkpoint_dir}; starting from the beginning", file=sys.stderr)
        self.truncate_metrics(-1)

    def metrics(self) -> list[dict[str, Any]]:
        return read_metrics(self.metrics_path)

    # -- summary ---------------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.path / "summary.json", summary)

    # -- checkpoints -----------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def save_checkpoint(self, step: int, write: Callable[[Path], None], keep: int = 2) -> Path:
        """Atomically write checkpoints/step_N via `write(dir)`, point LATEST at it, prune old ones.

        Kept: the `keep` newest checkpoints up to this one. Directories of later steps can only be
        leftovers of a killed run this one replaced (a resume continues from an earlier step), so they go.
        """
        rows = self._rows

        def write_all(d: Path) -> None:
            write(d)
            (d / "metrics_rows").write_text(f"{rows}\n")  # what the log held at this checkpoint

        final = atomic_dir(self.checkpoint_dir / f"step_{step:08d}", write_all)
        atomic_write_text(self.checkpoint_dir / "LATEST", final.name + "\n")
        steps = _step_dirs(self.checkpoint_dir)
        mine = next(i for i, p in enumerate(steps) if p.name == final.name)
        kept = set(steps[max(0, mine - keep + 1):mine + 1]) if keep > 0 else set(steps)
        for old in steps:
            if old not in kept:
                shutil.rmtree(old, ignore_errors=True)
        return final

    def latest_checkpoint(self) -> Path | None:
        latest = self.checkpoint_dir / "LATEST"
        if latest.exists():
            p = self.checkpoint_dir / latest.read_text().strip()
            if p.is_dir():
                return p
        steps = _step_dirs(self.checkpoint_dir)
        return steps[-1] if steps else None

    # -- plots -----------------------------------------------------------------------------
    def plot_curves(self, keys: Iterable[str] | None = None) -> list[Path]:
        """PNG learning curves of metrics.jsonl, one file per namespace (train, rollout, eval, ...)."""
        from rlx.evaluation.plots import plot_run_curves

        return plot_run_curves(self.metrics(), self.path / "plots", keys)

    def close(self) -> None:
        """Idempotent."""
        self._metrics.close()
        if self._tb is not None:
            self._tb.close()
            self._tb = None
