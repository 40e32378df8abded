"""Tests for the `rlx compare --out` report: Markdown, PNGs, self-contained HTML, pass@k, curves."""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import rlx.cli
from rlx.evaluation import compare, report, stats
from rlx.evaluation.spectrum import passk_spectrum

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE))
from fake_trainer import write_sweep  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_sweeps_then_compare_end_to_end(tmp_path, monkeypatch, capsys):
    # two small real sweeps with the fake trainer, then the report from them
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setitem(rlx.cli.TRAINERS, "fake", "fake_trainer")
    recipe = tmp_path / "fake.yaml"
    recipe.write_text("kind: fake\nseed: 0\nsteps: 3\n")
    assert rlx.cli.main(["sweep", str(recipe), "quality=0.4", "--seeds", "2", "--out", str(tmp_path / "base")]) == 0
    assert rlx.cli.main(["sweep", str(recipe), "quality=0.8", "--seeds", "2", "--out", str(tmp_path / "new")]) == 0
    capsys.readouterr()
    rep = tmp_path / "report"
    rc = rlx.cli.main(["compare", str(tmp_path / "base"), str(tmp_path / "new"), "--metric", "eval/accuracy",
                       "--reps", "1000", "--out", str(rep)])
    out = capsys.readouterr().out
    assert rc == 0 and "P(A > B)" in out and "IQM" in out
    pngs = sorted(p.name for p in rep.glob("*.png"))
    assert pngs == ["curves_eval_accuracy.png", "intervals.png", "passk.png", "profiles.png"]
    for p in rep.glob("*.png"):
        assert p.read_bytes()[:8] == PNG_MAGIC
    md = (rep / "report.md").read_text()
    for name in pngs:
        assert f"]({name})" in md
    assert "| base | new |" in md
    page = (rep / "report.html").read_text()
    # self-contained: every image is an embedded PNG, nothing is fetched from anywhere
    srcs = re.findall(r"src='([^']*)'", page)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1])[:8] == PNG_MAGIC
    assert "http://" not in page and "https://" not in page and "<link" not in page and "<script" not in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_curve_bands_mean_over_seeds(tmp_path):
    # seed 0 logs steps 0..3, seed 1 logs steps 0..2: the curve uses the common steps 0..2
    write_sweep(tmp_path / "A", [0.3, 0.5], curves=[[0.1, 0.2, 0.3, 0.9], [0.3, 0.4, 0.5]])
    s = compare.load_sweep(tmp_path / "A")
    steps, values = compare.curve_matrix(s, "eval/accuracy")
    np.testing.assert_array_equal(steps, [0, 1, 2])
    bands = report.curve_bands([s], "eval/accuracy", 0.95, seed=0)
    x, center, low, high = bands["A"]
    # means over the two seeds: (0.1+0.3)/2 = 0.2, (0.2+0.4)/2 = 0.3, (0.3+0.5)/2 = 0.4
    np.testing.assert_allclose(center, [0.2, 0.3, 0.4], atol=1e-12)
    # two seeds: resampled means are only {low, mid, high} values, so the band spans the two seeds
    np.testing.assert_allclose(low, [0.1, 0.2, 0.3], atol=1e-12)
    np.testing.assert_allclose(high, [0.3, 0.4, 0.5], atol=1e-12)
    assert compare.curve_matrix(s, "eval/missing") is None


def test_passk_from_summaries_and_from_counts(tmp_path):
    extra = [{"eval/pass@1": 0.2, "eval/pass@2": 0.3, "eval/pass@4": 0.5},
             {"eval/pass@1": 0.4, "eval/pass@2": 0.5, "eval/pass@4": 0.7}]
    write_sweep(tmp_path / "S", [0.2, 0.4], extra=extra)
    counts = [(4, [0, 1, 2, 4, 3]), (4, [1, 1, 0, 4, 2])]
    write_sweep(tmp_path / "C", [0.2, 0.4], counts=counts)
    sweeps = [compare.load_sweep(tmp_path / "S"), compare.load_sweep(tmp_path / "C")]
    curves, notes = report.passk_curves(sweeps, 0.95, seed=0)
    ks, center, low, high = curves["S"]
    np.testing.assert_array_equal(ks, [1, 2, 4])
    # mean over seeds: (0.2+0.4)/2 = 0.3, (0.3+0.5)/2 = 0.4, (0.5+0.7)/2 = 0.6
    np.testing.assert_allclose(center, [0.3, 0.4, 0.6], atol=1e-12)
    ks, center, low, high = curves["C"]
    want = passk_spectrum(4, np.array([c for _, c in counts]), reps=report.BAND_REPS, seed=0)
    np.testing.assert_allclose(center, want.point, atol=1e-12)
    np.testing.assert_allclose(low, want.low, atol=1e-12)
    assert any("resamples problems and seeds (5 problems, 2 seeds)" in n for n in notes)


def test_write_report_numbers_match_stats(tmp_path):
    write_sweep(tmp_path / "A", [0.1, 0.5, 0.3, 0.9])
    write_sweep(tmp_path / "B", [0.6, 0.2, 0.8, 0.7])
    cmp = compare.compare_sweeps([compare.load_sweep(tmp_path / "A"), compare.load_sweep(tmp_path / "B")],
                                 ["eval/accuracy"], reps=800, seed=3)
    paths = report.write_report(cmp, tmp_path / "rep")
    res = json.loads(paths["json"].read_text())
    a = np.array([[0.1], [0.5], [0.3], [0.9]])
    want = stats.interval_estimates({"A": a}, compare.STATISTICS, 800, 3)["A"]["iqm"]
    got = res["algorithms"]["A"]["iqm"]
    assert (got["point"], got["low"], got["high"]) == pytest.approx(want.as_tuple(), abs=1e-12)
    # IQM of 0.1 0.3 0.5 0.9: cut floor(4 * 0.25) = 1 each end -> (0.3 + 0.5) / 2 = 0.4
    assert got["point"] == pytest.approx(0.4, abs=1e-12)
    md = paths["markdown"].read_text()
    assert "0.4000 [" in md and "no learning curve" not in md
