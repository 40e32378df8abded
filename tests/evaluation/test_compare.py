"""Tests for `rlx compare`: score matrices, point estimates with intervals, P(A > B), bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import rlx.cli
from rlx.config import ConfigError
from rlx.evaluation import compare, stats

sys.path.insert(0, str(Path(__file__).parent))
from fake_trainer import write_sweep  # noqa: E402


@pytest.fixture
def two_sweeps(tmp_path):
    write_sweep(tmp_path / "A", [0.2, 0.4, 0.6])
    write_sweep(tmp_path / "B", [0.5, 0.7, 0.9])
    return tmp_path / "A", tmp_path / "B"


def test_hand_computed_table(two_sweeps, capsys):
    a, b = two_sweeps
    rc = rlx.cli.main(["compare", str(a), str(b), "--metric", "eval/accuracy", "--reps", "2000"])
    assert rc == 0
    out = capsys.readouterr().out
    # A = 0.2 0.4 0.6: mean 0.4; IQM of 3 scores cuts floor(0.75) = 0 -> 0.4; median of the one task mean 0.4
    # P(A > B): of the 9 pairs only 0.6 > 0.5 wins -> 1/9 = 0.1111
    assert "0.4000 [" in out and "0.7000 [" in out and "0.1111 [" in out
    cmp = compare.compare_sweeps([compare.load_sweep(a), compare.load_sweep(b)], ["eval/accuracy"], reps=2000, seed=0)
    assert cmp.estimates["A"]["mean"].point == pytest.approx(0.4, abs=1e-12)
    assert cmp.estimates["B"]["iqm"].point == pytest.approx(0.7, abs=1e-12)
    assert cmp.pairs[0][:2] == ("A", "B") and cmp.pairs[0][2].point == pytest.approx(1 / 9, abs=1e-12)
    # the intervals are rlx.evaluation.stats' (first sweep: a fresh generator from the same seed)
    want = stats.interval_estimates({"A": np.array([[0.2], [0.4], [0.6]])}, compare.STATISTICS, 2000, 0)["A"]
    assert cmp.estimates["A"] == want
    again = compare.compare_sweeps([compare.load_sweep(a), compare.load_sweep(b)], ["eval/accuracy"], reps=2000, seed=0)
    assert again.estimates == cmp.estimates and again.pairs == cmp.pairs


def test_several_metrics_are_tasks_and_failed_seeds_skipped(tmp_path):
    write_sweep(tmp_path / "A", [0.2, None, 0.6], extra=[{"eval/f1": 0.1}, {}, {"eval/f1": 0.3}])
    s = compare.load_sweep(tmp_path / "A")
    assert [r.name for r in s.runs] == ["seed_0", "seed_2"] and s.failed == ["seed_1"]
    m = compare.score_matrices([s], ["eval/accuracy", "eval/f1"])["A"]
    np.testing.assert_array_equal(m, [[0.2, 0.1], [0.6, 0.3]])
    cmp = compare.compare_sweeps([s], ["eval/accuracy", "eval/f1"], reps=100)
    assert any("seed_1" in n for n in cmp.notes)
    # mean over the [2 x 2] matrix: (0.2 + 0.1 + 0.6 + 0.3) / 4 = 0.3
    assert cmp.estimates["A"]["mean"].point == pytest.approx(0.3, abs=1e-12)


def test_seeds_sorted_numerically(tmp_path):
    write_sweep(tmp_path / "A", [0.1 * k for k in range(12)])
    assert [r.name for r in compare.load_sweep(tmp_path / "A").runs][:3] == ["seed_0", "seed_1", "seed_2"]
    assert compare.load_sweep(tmp_path / "A").runs[-1].name == "seed_11"


def test_missing_metric_names_the_runs(tmp_path, capsys):
    write_sweep(tmp_path / "A", [0.2, 0.4], extra=[{"eval/f1": 0.1}, {}])
    write_sweep(tmp_path / "B", [0.2, 0.4], extra=[{"eval/f1": 0.1}, {"eval/f1": 0.2}])
    rc = rlx.cli.main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--metric", "eval/f1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err == "compare: metric eval/f1 missing from runs: A/seed_1"
    write_sweep(tmp_path / "C", [0.2, 0.4], extra=[{"eval/f1": None}, {"eval/f1": 0.1}])
    with pytest.raises(ConfigError, match="not a finite number in runs: C/seed_0=None"):
        compare.score_matrices([compare.load_sweep(tmp_path / "C")], ["eval/f1"])


def test_directories_without_runs(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    rc = rlx.cli.main(["compare", str(tmp_path / "empty"), "--metric", "eval/accuracy"])
    assert rc == 2 and "holds no runs" in capsys.readouterr().err
    rc = rlx.cli.main(["compare", str(tmp_path / "nope"), "--metric", "eval/accuracy"])
    assert rc == 2 and "is not a directory" in capsys.readouterr().err
    write_sweep(tmp_path / "failed", [None, None])  # every seed failed
    rc = rlx.cli.main(["compare", str(tmp_path / "failed"), "--metric", "eval/accuracy"])
    assert rc == 2 and "holds no runs" in capsys.readouterr().err


def test_single_seed_refuses_intervals_but_shows_points(tmp_path, capsys):
    write_sweep(tmp_path / "A", [0.3])
    write_sweep(tmp_path / "B", [0.5, 0.7])
    rc = rlx.cli.main(["compare", str(tmp_path / "A"), str(tmp_path / "B"), "--metric", "eval/accuracy",
                       "--reps", "500", "--out", str(tmp_path / "rep")])
    captured = capsys.readouterr()
    assert rc == 2
    assert "0.3000 [n/a: 1 seed]" in captured.out  # the point estimate is still shown
    assert "0.6000 [" in captured.out  # B has two seeds: its interval is computed
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("compare: intervals refused for A: a single seed")
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "0.3000 (no interval: 1 seed)" in md
    # a plain run directory (summary.json at top level) is a one-seed sweep too
    s = compare.load_sweep(tmp_path / "A" / "seed_0")
    assert len(s.runs) == 1 and s.runs[0] == tmp_path / "A" / "seed_0"


def test_bad_arguments(two_sweeps, capsys):
    a, b = two_sweeps
    assert rlx.cli.main(["compare", str(a), str(b), "--metric", "eval/accuracy", "--names", "x"]) == 2
    assert "--names" in capsys.readouterr().err
    assert rlx.cli.main(["compare", str(a), str(b), "--metric", "eval/accuracy", "--names", "x", "x"]) == 2
    assert "distinct" in capsys.readouterr().err
    assert rlx.cli.main(["compare", str(a), "--metric", "eval/accuracy", "--reps", "0"]) == 2
    assert "--reps" in capsys.readouterr().err


def test_results_json_roundtrip(two_sweeps, tmp_path):
    a, b = two_sweeps
    rc = rlx.cli.main(["compare", str(a), str(b), "--metric", "eval/accuracy", "--reps", "500",
                       "--out", str(tmp_path / "rep"), "--names", "base", "new"])
    assert rc == 0
    res = json.loads((tmp_path / "rep" / "results.json").read_text())
    assert res["algorithms"]["base"]["scores"] == [[0.2], [0.4], [0.6]]
    assert res["algorithms"]["new"]["mean"]["point"] == pytest.approx(0.7, abs=1e-12)
    assert res["pairs"][0]["a"] == "base" and res["pairs"][0]["p_a_better"]["point"] == pytest.approx(1 / 9, abs=1e-12)


def test_several_metrics_of_one_seed_are_resampled_together(tmp_path):
    """Metrics of one seed are one run measured twice: a copy of a metric must not narrow the interval.
    (Resampled as independent columns, the mean interval of [x, x] shrank by about 1/sqrt(2).)"""
    x = [0.1, 0.5, 0.2, 0.9, 0.3]
    write_sweep(tmp_path / "A", x, extra=[{"eval/copy": v} for v in x])
    write_sweep(tmp_path / "B", [v + 0.05 for v in x], extra=[{"eval/copy": v + 0.05} for v in x])
    sweeps = [compare.load_sweep(tmp_path / "A"), compare.load_sweep(tmp_path / "B")]
    one = compare.compare_sweeps(sweeps, ["eval/accuracy"], reps=4000, seed=0)
    two = compare.compare_sweeps(sweeps, ["eval/accuracy", "eval/copy"], reps=4000, seed=0)
    assert two.estimates["A"]["mean"] == one.estimates["A"]["mean"]
    assert two.pairs[0][2] == one.pairs[0][2]
    unpaired = stats.interval_estimates({"A": np.array([x, x]).T}, ["mean"], 4000, 0)["A"]["mean"]
    assert unpaired.high - unpaired.low < 0.8 * (one.estimates["A"]["mean"].high - one.estimates["A"]["mean"].low)
    assert any("pool the 2 metrics" in n for n in two.notes) and not any("pool" in n for n in one.notes)


def test_few_seeds_get_a_note_about_narrow_intervals(two_sweeps):
    a, b = two_sweeps  # 3 seeds each: the percentile interval of the mean is the lowest to the highest seed
    cmp = compare.compare_sweeps([compare.load_sweep(a), compare.load_sweep(b)], ["eval/accuracy"], reps=2000)
    assert (cmp.estimates["A"]["mean"].low, cmp.estimates["A"]["mean"].high) == pytest.approx((0.2, 0.6), abs=1e-12)
    assert sum("only 3 seeds" in n for n in cmp.notes) == 2


def test_intervals_do_not_depend_on_which_sweeps_are_listed_first(tmp_path):
    """All sweeps used to draw from one generator in turn, so `compare A B` and `compare B A` printed
    different intervals for the same runs."""
    write_sweep(tmp_path / "A", [0.1, 0.5, 0.2, 0.9, 0.3])
    write_sweep(tmp_path / "B", [0.4, 0.6, 0.2, 0.8, 0.7])
    write_sweep(tmp_path / "C", [0.3, 0.1, 0.6, 0.4, 0.2])
    a, b, c = (compare.load_sweep(tmp_path / n) for n in "ABC")
    one = compare.compare_sweeps([a, b, c], ["eval/accuracy"], reps=2000, seed=0)
    two = compare.compare_sweeps([b, c, a], ["eval/accuracy"], reps=2000, seed=0)
    for name in "ABC":
        assert one.estimates[name] == two.estimates[name]
    assert dict(((x, y), iv) for x, y, iv in one.pairs)[("A", "B")] == \
        dict(((x, y), iv) for x, y, iv in compare.compare_sweeps([a, b], ["eval/accuracy"], 2000, 0).pairs)[("A", "B")]


def test_the_profile_band_resamples_the_metrics_of_a_seed_together():
    """Six seeds, the second metric a copy of the first, tau 0.5 with three seeds above: the fraction above
    tau is Binomial(6, 1/2) / 6 under whole-seed resampling, so the band's 2.5% point is 1/6. Resampled as
    independent columns the band was [0.25, 0.75], too narrow."""
    x = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    scores = np.stack([x, x], axis=1)
    _, low, high = stats.performance_profile_ci(scores, [0.5], reps=20_000, seed=0, paired=True)
    assert low[0] == pytest.approx(1 / 6) and high[0] == pytest.approx(5 / 6)
    _, low_u, high_u = stats.performance_profile_ci(scores, [0.5], reps=20_000, seed=0)
    assert high_u[0] - low_u[0] < high[0] - low[0]
