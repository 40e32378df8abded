"""A trainer for sweep/compare tests: logs a few metrics and writes a summary in milliseconds.

Registered in tests with `monkeypatch.setitem(rlx.cli.TRAINERS, "fake", "fake_trainer")` (the test
puts this folder on sys.path). `fail_seed` makes one seed raise, to test that a sweep survives it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from rlx.config import Section


class Config(Section):
    kind: Literal["fake"] = Field("fake", description="trainer name")
    seed: int = Field(0, ge=0, description="random seed")
    steps: int = Field(4, gt=0, description="number of logged steps")
    quality: float = Field(0.5, ge=0, le=1, description="mean final accuracy of this fake method")
    fail_seed: int = Field(-1, description="seed that raises RuntimeError (-1: none)")


def run(cfg: Config, run) -> dict:
    if cfg.seed == cfg.fail_seed:
        raise RuntimeError(f"boom on seed {cfg.seed}")
    rng = np.random.default_rng(cfg.seed)
    noise = float(rng.uniform(-0.1, 0.1))
    acc = 0.0
    for step in range(cfg.steps):
        acc = cfg.quality * (step + 1) / cfg.steps + noise
        run.log(step, {"train/loss": 1.0 / (step + 1) + noise, "eval/accuracy": acc, "time/step": 0.001})
    # pass@k grows with k: 1 - (1 - acc)^k
    p = min(max(acc, 0.0), 1.0)
    return {"eval/accuracy": acc, **{f"eval/pass@{k}": 1 - (1 - p) ** k for k in (1, 2, 4, 8)}}


def write_sweep(path, finals, curves=None, extra=None, counts=None) -> None:
    """Write a sweep by hand: seed_K/summary.json with eval/accuracy = finals[K] (None: a failed seed,
    no summary), metrics.jsonl from curves[K] (list of eval/accuracy per step), `extra` summary keys
    (a list of dicts, one per seed) and passk_counts.json from counts[K] = (n, c)."""
    import json
    from pathlib import Path

    for k, final in enumerate(finals):
        d = Path(path) / f"seed_{k}"
        d.mkdir(parents=True, exist_ok=True)
        curve = curves[k] if curves else [final if final is not None else 0.0]
        (d / "metrics.jsonl").write_text(
            "".join(json.dumps({"step": i, "eval/accuracy": v, "train/loss": 1.0}) + "\n" for i, v in enumerate(curve))
        )
        if final is None:
            (d / "error.txt").write_text("Traceback: boom\n")
            continue
        summary = {"eval/accuracy": final, **(extra[k] if extra else {})}
        (d / "summary.json").write_text(json.dumps(summary))
        if counts:
            n, c = counts[k]
            (d / "passk_counts.json").write_text(json.dumps({"n": n, "c": list(c)}))
