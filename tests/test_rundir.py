import json
import os

import pytest

from rlx.rundir import RunDir, atomic_dir, atomic_write_json, read_metrics


def test_layout_metrics_and_summary(tmp_path):
    run = RunDir(tmp_path / "r", "kind: sft\n")
    run.log(1, {"train/loss": 0.5})
    run.log(2, {"train/loss": float("nan")})
    run.write_summary({"eval/accuracy": 0.25})
    run.close()
    assert (tmp_path / "r" / "config.yaml").read_text() == "kind: sft\n"
    assert read_metrics(tmp_path / "r" / "metrics.jsonl") == [
        {"step": 1, "train/loss": 0.5}, {"step": 2, "train/loss": None}]
    assert json.loads((tmp_path / "r" / "summary.json").read_text()) == {"eval/accuracy": 0.25}
    assert (tmp_path / "r" / "checkpoints").is_dir() and (tmp_path / "r" / "plots").is_dir()


def test_existing_run_needs_resume(tmp_path):
    run = RunDir(tmp_path / "r", "x")
    run.log(1, {"train/loss": 1.0})
    run.close()
    with pytest.raises(FileExistsError, match="--resume"):
        RunDir(tmp_path / "r", "x")
    RunDir(tmp_path / "r", "x", resume=True).close()


def test_torn_last_metrics_line_is_ignored(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"step": 1}\n{"step": 2, "a"')
    assert read_metrics(p) == [{"step": 1}]


def test_truncate_metrics_on_resume(tmp_path):
    run = RunDir(tmp_path / "r", "x")
    for s in range(1, 6):
        run.log(s, {"v": s})
    run.truncate_metrics(3)
    run.log(4, {"v": 40})
    run.close()
    assert [r["v"] for r in read_metrics(run.metrics_path)] == [1, 2, 3, 40]


def test_checkpoints_atomic_latest_and_pruned(tmp_path):
    run = RunDir(tmp_path / "r", "x")
    for step in (1, 2, 3):
        run.save_checkpoint(step, lambda d, s=step: (d / "w").write_text(str(s)), keep=2)
    names = sorted(p.name for p in run.checkpoint_dir.glob("step_*"))
    assert names == ["step_00000002", "step_00000003"]
    assert run.latest_checkpoint().name == "step_00000003"

    def boom(d):
        (d / "w").write_text("partial")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        run.save_checkpoint(4, boom)
    assert run.latest_checkpoint().name == "step_00000003"
    assert not any(p.name.startswith(".step_00000004") for p in run.checkpoint_dir.iterdir())
    run.close()


def test_checkpoint_order_is_numeric_past_eight_digits(tmp_path):
    """step_100000000 sorts after step_99995000 (a string sort put it first and pruned the newest)."""
    run = RunDir(tmp_path / "r", "x")
    for step in (99_990_000, 99_995_000, 100_000_000):
        run.save_checkpoint(step, lambda d: (d / "w").write_text("."), keep=2)
    assert sorted(p.name for p in run.checkpoint_dir.glob("step_*")) == ["step_100000000", "step_99995000"]
    assert run.latest_checkpoint().name == "step_100000000"
    (run.checkpoint_dir / "LATEST").unlink()  # without the pointer, the numerically newest
    assert run.latest_checkpoint().name == "step_100000000"
    run.close()


def test_pruning_never_removes_the_checkpoint_just_written(tmp_path):
    """A kill between the rename and the LATEST write leaves a newer orphan (step 200, LATEST at 150).
    The resumed run's next save keeps itself and drops the orphan."""
    run = RunDir(tmp_path / "r", "x")
    run.save_checkpoint(150, lambda d: (d / "w").write_text("150"), keep=1)
    (run.checkpoint_dir / "step_00000200").mkdir()  # the orphan
    assert run.latest_checkpoint().name == "step_00000150"
    run.save_checkpoint(175, lambda d: (d / "w").write_text("175"), keep=1)
    assert [p.name for p in run.checkpoint_dir.glob("step_*")] == ["step_00000175"]
    assert run.latest_checkpoint().name == "step_00000175"
    run.close()


def test_rows_logged_after_a_torn_line_are_kept(tmp_path):
    """Killed mid-write, then resumed: the next row must not be glued onto the torn one (both were lost)."""
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2, "a"')
    run = RunDir(tmp_path / "r", "x", resume=True)
    run.log(2, {"v": 2.0})
    run.log(3, {"v": 3.0})
    run.close()
    assert read_metrics(run.metrics_path) == [{"step": 1}, {"step": 2, "v": 2.0}, {"step": 3, "v": 3.0}]


def test_atomic_dir_replaces_existing(tmp_path):
    atomic_dir(tmp_path / "d", lambda d: (d / "a").write_text("1"))
    atomic_dir(tmp_path / "d", lambda d: (d / "b").write_text("2"))
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["b"]


def test_atomic_json_no_temp_left(tmp_path):
    atomic_write_json(tmp_path / "s.json", {"a": float("inf")})
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": None}
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]


def test_atomic_dir_flushes_every_file_before_the_rename_and_the_parent_after(tmp_path, monkeypatch):
    """After a power loss the checkpoint is the old one or the whole new one: each file, the new directory
    and its subdirectories reach the disk before the rename, the parent's entry after it."""
    import os

    events: list[tuple[str, str]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)

    def write(d):
        (d / "model.safetensors").write_bytes(b"w" * 10)
        (d / "sub").mkdir()
        (d / "sub" / "state.pt").write_bytes(b"s")

    final = atomic_dir(tmp_path / "ckpt", write)
    names = [(kind, os.path.basename(p)) for kind, p in events]
    rename = names.index(("replace", "ckpt"))
    before = {n for kind, n in names[:rename] if kind == "fsync"}
    assert {"model.safetensors", "state.pt", "sub"} <= before
    assert any(kind == "fsync" and n.startswith(".ckpt.") for kind, n in names[:rename])  # the new directory
    assert ("fsync", tmp_path.name) in names[rename + 1:]  # the parent's new entry
    assert (final / "sub" / "state.pt").read_bytes() == b"s"


def test_a_run_that_crashed_before_logging_anything_does_not_block_a_fresh_start(tmp_path):
    """A fresh run that died before its first metrics row and first checkpoint (a model that failed to load,
    an out-of-memory in the first step) left only empty files: the same command may start over without
    --resume. One logged row or one checkpoint is a run to keep."""
    RunDir(tmp_path / "r", "a: 1\n").close()  # the crash: directory, empty metrics.jsonl, empty checkpoints/
    run = RunDir(tmp_path / "r", "a: 2\n")
    run.log(1, {"x": 1.0})
    run.close()
    with pytest.raises(FileExistsError, match="--resume"):
        RunDir(tmp_path / "r", "a: 2\n")
    (tmp_path / "s" / "checkpoints" / "step_00000001").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="--resume"):
        RunDir(tmp_path / "s", "a: 1\n")


def test_resume_cleans_what_a_kill_inside_a_checkpoint_write_left(tmp_path):
    """A SIGKILL mid-checkpoint left `.step_K.*.tmp` (17 MB in the review) for good; a kill between the two
    renames of a replace left the previous version as `.step_K.old` with no `step_K`."""
    run = RunDir(tmp_path / "r", "a: 1\n")
    run.save_checkpoint(2, lambda d: (d / "w.txt").write_text("two"))
    ck = tmp_path / "r" / "checkpoints"
    (ck / ".step_00000004.abc.tmp").mkdir()
    (ck / ".step_00000004.abc.tmp" / "w.txt").write_text("half")
    os.replace(ck / "step_00000002", ck / ".step_00000002.old")  # killed between the renames
    run.close()
    run = RunDir(tmp_path / "r", "a: 1\n", resume=True)
    assert sorted(p.name for p in ck.iterdir() if p.name != "LATEST") == ["step_00000002"]
    assert (ck / "step_00000002" / "w.txt").read_text() == "two"
    run.close()


def test_commands_without_resume_do_not_suggest_it(tmp_path):
    run = RunDir(tmp_path / "e", "a: 1\n")
    run.log(0, {"eval/accuracy": 0.5})
    run.close()
    with pytest.raises(FileExistsError, match="already holds a run; choose another --out$"):
        RunDir(tmp_path / "e", "a: 1\n", resumable=False)
