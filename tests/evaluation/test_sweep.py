"""Tests for `rlx sweep`: seeds in DIR/seed_K, sweep.json, one failed seed kept apart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import rlx.cli
from rlx.evaluation import sweep

HERE = Path(__file__).parent


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setitem(rlx.cli.TRAINERS, "fake", "fake_trainer")
    recipe = tmp_path / "fake.yaml"
    recipe.write_text("kind: fake\nseed: 0\nsteps: 3\n")
    return recipe


def _sweep_json(out: Path) -> dict:
    return json.loads((out / "sweep.json").read_text())


def test_sequential_sweep(fake, tmp_path):
    out = tmp_path / "sw"
    rc = rlx.cli.main(["sweep", str(fake), "quality=0.7", "--seeds", "3", "--out", str(out)])
    assert rc == 0
    state = _sweep_json(out)
    assert state["ok"] is True and state["mode"] == "sequential" and state["overrides"] == ["quality=0.7"]
    assert [e["seed"] for e in state["seeds"]] == [0, 1, 2]
    assert all(e["status"] == "ok" for e in state["seeds"])
    for k in range(3):
        d = out / f"seed_{k}"
        cfg = (d / "config.yaml").read_text()
        assert f"seed: {k}" in cfg and "quality: 0.7" in cfg
        assert len((d / "metrics.jsonl").read_text().splitlines()) == 3
        assert "eval/accuracy" in json.loads((d / "summary.json").read_text())
        assert (d / "plots" / "train.png").exists()


def test_failed_seed_is_reported_and_others_kept(fake, tmp_path, capsys):
    out = tmp_path / "sw"
    rc = rlx.cli.main(["sweep", str(fake), "fail_seed=1", "--seeds", "3", "--out", str(out)])
    assert rc == 1
    state = _sweep_json(out)
    status = {e["seed"]: e["status"] for e in state["seeds"]}
    assert status == {0: "ok", 1: "failed", 2: "ok"} and state["ok"] is False
    err = (out / "seed_1" / "error.txt").read_text()
    assert "RuntimeError: boom on seed 1" in err and "Traceback" in err
    assert state["seeds"][1]["error"] == "RuntimeError: boom on seed 1"
    assert (out / "seed_2" / "summary.json").exists()
    assert "failed: [1]" in capsys.readouterr().err
    # rerun only what is missing: seed 0 and 2 are skipped, seed 1 fails again (same recipe)
    rc = rlx.cli.main(["sweep", str(fake), "fail_seed=1", "--seeds", "3", "--out", str(out), "--skip-done"])
    status = {e["seed"]: e["status"] for e in _sweep_json(out)["seeds"]}
    assert status == {0: "skipped", 1: "failed", 2: "skipped"} and rc == 1
    assert (out / "failed_seed_1" / "error.txt").exists()  # the earlier failure is moved aside, not lost
    rc = rlx.cli.main(["sweep", str(fake), "--seeds", "3", "--out", str(out), "--skip-done"])  # now it works
    assert rc == 0 and _sweep_json(out)["ok"] is True and (out / "seed_1" / "summary.json").exists()


def test_skip_done_reruns_an_interrupted_seed(fake, tmp_path):
    """A seed stopped by Ctrl-C or a kill has metrics but no summary and no error.txt: --skip-done used to
    refuse it ("already holds a run"); now it is moved aside and run again."""
    out = tmp_path / "sw"
    assert rlx.cli.main(["sweep", str(fake), "--seeds", "2", "--out", str(out)]) == 0
    (out / "seed_1" / "summary.json").unlink()  # what an interrupted seed looks like
    rc = rlx.cli.main(["sweep", str(fake), "--seeds", "2", "--out", str(out), "--skip-done"])
    status = {e["seed"]: e["status"] for e in _sweep_json(out)["seeds"]}
    assert rc == 0 and status == {0: "skipped", 1: "ok"}
    assert (out / "seed_1" / "summary.json").exists() and (out / "interrupted_seed_1" / "metrics.jsonl").exists()


def test_skip_done_reruns_a_seed_trained_with_another_config(fake, tmp_path):
    """--skip-done used to keep any seed with a summary, so a sweep rerun with new overrides reported the old
    runs as the new condition. A finished seed counts as done only with the same config."""
    out = tmp_path / "sw"
    assert rlx.cli.main(["sweep", str(fake), "quality=0.7", "--seeds", "2", "--out", str(out)]) == 0
    assert rlx.cli.main(["sweep", str(fake), "quality=0.7", "--seeds", "2", "--out", str(out), "--skip-done"]) == 0
    assert {e["seed"]: e["status"] for e in _sweep_json(out)["seeds"]} == {0: "skipped", 1: "skipped"}
    assert rlx.cli.main(["sweep", str(fake), "quality=0.5", "--seeds", "2", "--out", str(out), "--skip-done"]) == 0
    assert {e["seed"]: e["status"] for e in _sweep_json(out)["seeds"]} == {0: "ok", 1: "ok"}
    for k in range(2):
        assert "quality: 0.5" in (out / f"seed_{k}" / "config.yaml").read_text()
        assert "quality: 0.7" in (out / f"changed_seed_{k}" / "config.yaml").read_text()  # kept, not lost


def test_parallel_processes(fake, tmp_path):
    out = tmp_path / "par"
    results = sweep.run_sweep(str(fake), ["fail_seed=2"], out, [0, 1, 2], parallel=2, echo=lambda s: None)
    assert {s: r["status"] for s, r in results.items()} == {0: "ok", 1: "ok", 2: "failed"}
    assert _sweep_json(out)["mode"] == "processes"
    assert "boom on seed 2" in (out / "seed_2" / "error.txt").read_text()
    # processes give the same runs as the sequential path (same seed -> same metrics)
    seq = tmp_path / "seq"
    sweep.run_sweep(str(fake), [], seq, [1], echo=lambda s: None)
    assert (seq / "seed_1" / "metrics.jsonl").read_text() == (out / "seed_1" / "metrics.jsonl").read_text()


def test_bad_input(fake, tmp_path, capsys, monkeypatch):
    out = tmp_path / "bad"
    assert rlx.cli.main(["sweep", str(fake), "steps=-1", "--seeds", "2", "--out", str(out)]) == 2
    assert "steps" in capsys.readouterr().err and not out.exists()  # validated before anything is made
    assert rlx.cli.main(["sweep", str(fake), "--seeds", "0", "--out", str(out)]) == 2
    assert "--seeds" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    assert rlx.cli.main(["sweep", str(fake), "--ray", "--out", str(out)]) == 2
    assert "ray is not installed" in capsys.readouterr().err
    # an existing run is never overwritten
    sweep.run_sweep(str(fake), [], out, [0], echo=lambda s: None)
    assert rlx.cli.main(["sweep", str(fake), "--seeds", "1", "--out", str(out)]) == 2
    assert "already holds a run" in capsys.readouterr().err
