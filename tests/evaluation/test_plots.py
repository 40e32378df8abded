"""Tests for rlx.evaluation.plots: PNG learning curves of a run's metrics.jsonl."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rlx.evaluation import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows():
    return [
        {
            "step": i,
            "train/loss": 1.0 / (i + 1),
            "train/kl": float("nan") if i % 2 else 0.1 * i,
            "eval/accuracy": None if i % 3 else 0.1 * i,
            "time/step": 0.05,
            "rollout/never": None,
        }
        for i in range(10)
    ]


def test_one_png_per_namespace(tmp_path):
    paths = plots.plot_run_curves(_rows(), tmp_path / "plots", None)
    # namespaces with a finite value: eval, time, train ("rollout/never" is always None -> skipped)
    assert [p.name for p in paths] == ["eval.png", "time.png", "train.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000


def test_key_selection_and_empty(tmp_path):
    paths = plots.plot_run_curves(_rows(), tmp_path, ["train/loss"])
    assert [p.name for p in paths] == ["train.png"]
    assert plots.plot_run_curves([], tmp_path / "none", None) == []
    assert plots.plot_run_curves([{"step": 0, "x/y": math.inf}], tmp_path / "inf", None) == []
    # keys without a namespace go to misc.png
    assert [p.name for p in plots.plot_run_curves([{"step": 1, "loss": 0.5}], tmp_path / "m", None)] == ["misc.png"]


def test_runrdir_plot_curves_uses_it(tmp_path):
    from rlx.rundir import RunDir

    run = RunDir(tmp_path / "run", config_yaml="kind: fake\n")
    for i in range(3):
        run.log(i, {"train/loss": 1.0 - 0.1 * i, "eval/accuracy": 0.2 * i})
    paths = run.plot_curves()
    run.close()
    assert sorted(p.name for p in paths) == ["eval.png", "train.png"]
    assert all(p.parent == tmp_path / "run" / "plots" for p in paths)


def test_report_figures(tmp_path):
    out = plots.plot_interval_estimates(
        {"a": {"iqm": (0.5, 0.4, 0.6), "mean": (0.5, 0.45, 0.55)},
         "b": {"iqm": (0.6, 0.5, 0.7), "mean": (0.6, 0.5, 0.65)}},
        tmp_path / "intervals.png",
    )
    assert out.read_bytes()[:8] == PNG_MAGIC
    taus = np.linspace(0, 1, 5)
    band = (np.linspace(1, 0, 5), np.linspace(0.9, 0, 5), np.linspace(1, 0.1, 5))
    out = plots.plot_performance_profiles({"a": band}, taus, tmp_path / "profiles.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    steps = np.arange(4)
    center, low, high = np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 0.1, 0.2, 0.3]), np.array([0.2, 0.3, 0.4, 0.5])
    curves = {"a": (steps, center, low, high)}
    out = plots.plot_band_curves(curves, "eval/accuracy", tmp_path / "curves.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    ks = np.array([1, 2, 4])
    out = plots.plot_passk_curves({"a": (ks, np.array([0.2, 0.3, 0.4]), None, None)}, tmp_path / "passk.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_band_length_mismatch_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="length"):
        plots.plot_band_curves({"a": (np.arange(3), np.zeros(2), None, None)}, "m", tmp_path / "x.png")
