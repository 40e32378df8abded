"""Kill a run, resume it, and get exactly the uninterrupted run's metrics (bitwise on CPU)."""

import os
import signal
import subprocess
import sys
import time

import pytest

from rlx.cli import main
from rlx.rundir import read_metrics


def _rows(path):
    """Metrics without wall-clock timings (which legitimately differ)."""
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in read_metrics(path / "metrics.jsonl")]


SFT = ["model.tiny.hidden_size=32", "model.tiny.num_layers=2", "model.tiny.intermediate_size=64",
       "train.steps=6", "train.checkpoint_every=2", "train.log_every=1", "eval.n=8", "eval.every=0"]


def test_sft_crash_then_resume_matches_uninterrupted(tmp_path, kill_on_call):
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(tmp_path / "a")]) == 0

    import rlx.tasks.arithmetic as arith

    restore = kill_on_call(arith.ArithmeticTask, "train_problems", 5)  # in the middle of step 5
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(tmp_path / "b"), "--resume"]) == 0
    assert _rows(tmp_path / "b") == _rows(tmp_path / "a")


def test_resume_without_checkpoint_says_so_and_starts_over(tmp_path, capsys):
    """Killed before its first checkpoint: --resume starts from the beginning (as every trainer does) and
    says so; it used to be an error, which left the run directory blocked for a fresh start too."""
    (tmp_path / "c").mkdir()
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(tmp_path / "c"), "--resume"]) == 0
    assert "no checkpoint" in capsys.readouterr().err and (tmp_path / "c" / "summary.json").is_file()


@pytest.mark.slow
def test_rlvr_sigkill_mid_run_then_resume_matches(tmp_path, base_model_dir):
    args = ["recipes/arith_grpo.yaml", f"model.path={base_model_dir}", "train.steps=8", "train.checkpoint_every=2",
            "eval.n=16", "eval.every=0", "rollout.prompts_per_step=4", "rollout.group_size=4"]
    assert main(["train", *args, "--out", str(tmp_path / "a")]) == 0

    out_b = tmp_path / "b"
    proc = subprocess.Popen([sys.executable, "-m", "rlx.cli", "train", *args, "--out", str(out_b)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        steps = [r["step"] for r in read_metrics(out_b / "metrics.jsonl")] if out_b.exists() else []
        if steps and max(steps) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out_b / "summary.json").exists()
    assert main(["train", *args, "--out", str(out_b), "--resume"]) == 0
    assert _rows(out_b) == _rows(tmp_path / "a")


def test_rlvr_difficulty_pool_crash_then_resume_matches(tmp_path, kill_on_call, base_model_dir):
    """The curated pool is rebuilt from the initial weights on resume and its hard-focus state (paper drive:
    counts since the last check, retired problems) comes from the checkpoint, so the resumed run draws the same prompts."""
    args = ["recipes/arith_difficulty.yaml", f"model.path={base_model_dir}", "train.steps=4", "train.checkpoint_every=2",
            "eval.n=8", "eval.every=0", "rollout.prompts_per_step=2", "rollout.group_size=4",
            "difficulty.candidates=40", "difficulty.samples=4", "difficulty.retire_above=0.0",
            "difficulty.retire_every=3", "difficulty.min_pool=2"]  # the step-2 checkpoint holds open counts
    assert main(["train", *args, "--out", str(tmp_path / "a")]) == 0

    from rlx.sampling.difficulty import DifficultyPool

    restore = kill_on_call(DifficultyPool, "train_problems", 3)  # while collecting step 3
    assert main(["train", *args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main(["train", *args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    rows = _rows(tmp_path / "a")
    assert rows == _rows(tmp_path / "b") and any("rollout/reward_mean" in r for r in rows)
    active = [r["difficulty/active_pool"] for r in rows if "difficulty/active_pool" in r]
    assert len(active) == 4 and active[-1] < active[0]  # problems were retired along the way


def test_rlvr_pruning_head_crash_then_resume_matches(tmp_path, kill_on_call, base_model_dir):
    """Paper arrol: the quality head and its optimizer state come back from the checkpoint, so the resumed
    run prunes the same rollouts as the uninterrupted one."""
    args = ["recipes/arith_arrol.yaml", f"model.path={base_model_dir}", "train.steps=4", "train.checkpoint_every=2",
            "eval.n=8", "eval.every=0", "rollout.prompts_per_step=2", "rollout.group_size=4",
            "prune.candidates=8", "prune.warmup_steps=1"]
    assert main(["train", *args, "--out", str(tmp_path / "a")]) == 0

    import rlx.tasks.arithmetic as arith

    restore = kill_on_call(arith.ArithmeticTask, "train_problems", 3)  # while collecting step 3
    assert main(["train", *args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main(["train", *args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    rows = _rows(tmp_path / "a")
    assert rows == _rows(tmp_path / "b")
    briers = [r["prune/head_brier"] for r in rows if "prune/head_brier" in r]
    assert len(briers) == 4 and briers[0] == 0.25 and briers[-1] != 0.25  # the head learned along the way


def test_resume_with_a_different_config_is_refused(tmp_path, capsys, kill_on_call):
    """--resume continues exactly only with the run's own config: a changed field is named, config.yaml
    is left alone, and the run's config.yaml itself resumes it."""
    out = tmp_path / "r"
    import rlx.tasks.arithmetic as arith

    restore = kill_on_call(arith.ArithmeticTask, "train_problems", 5)
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "--out", str(out)]) == 130
    restore()
    saved = (out / "config.yaml").read_text()
    assert main(["sft", "recipes/arith_sft.yaml", *SFT, "train.optim.lr=0.5", "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "--resume: the config differs" in err and "train.optim.lr (0.002 -> 0.5)" in err
    assert (out / "config.yaml").read_text() == saved
    assert main(["sft", str(out / "config.yaml"), "--out", str(out), "--resume"]) == 0
    assert (out / "summary.json").exists()


def _tiny_args(trainer: str, base_model_dir) -> list[str]:
    if trainer == "sft":
        return ["sft", "recipes/arith_sft.yaml", *SFT]
    if trainer == "agent":
        return ["train", "recipes/search_agent.yaml", "model.tiny.hidden_size=32", "model.tiny.num_layers=2",
                "model.tiny.intermediate_size=64", "model.tiny.max_position=64", "env.max_hops=2", "warm_start.steps=3",
                "warm_start.batch_size=4", "rollout.questions_per_step=2", "rollout.group_size=4",
                "rollout.turns.max_turns=3", "train.steps=4", "train.checkpoint_every=2", "eval.per_hop=2",
                "eval.max_turns=3"]
    return ["train", "recipes/arith_grpo.yaml", f"model.path={base_model_dir}", "train.steps=4", "eval.n=8",
            "eval.every=0", "rollout.prompts_per_step=2", "rollout.group_size=4", "train.checkpoint_every=2",
            "train.micro_batch_size=8"]


@pytest.mark.parametrize("trainer", ["sft", "rlvr", "agent"])
def test_a_resumed_run_reports_the_whole_runs_training_seconds(tmp_path, trainer, base_model_dir):
    """time/train_seconds continues from the seconds the checkpoint holds, like the control loops' clock; it
    used to restart at 0 on each resume, so a run resumed near its end reported only the last piece."""
    import json

    import torch

    out = tmp_path / "a"
    args = [*_tiny_args(trainer, base_model_dir), "--out", str(out)]
    assert main(args) == 0
    ckpt = out / "checkpoints" / (out / "checkpoints" / "LATEST").read_text().strip() / "trainer_state.pt"
    state = torch.load(ckpt, weights_only=False)
    first = json.loads((out / "summary.json").read_text())["time/train_seconds"]
    assert 0 < state["extra"]["train_seconds"] <= first
    state["extra"]["train_seconds"] = 1000.0  # as if the run had trained 1000 s before its last checkpoint
    torch.save(state, ckpt)
    assert main([*args, "--resume"]) == 0
    assert 1000.0 < json.loads((out / "summary.json").read_text())["time/train_seconds"] < 1000.0 + 300


@pytest.mark.parametrize("trainer", ["sft", "rlvr"])
def test_a_kill_after_the_last_checkpoint_resumes_to_the_same_log_and_summary(tmp_path, monkeypatch, trainer,
                                                                              base_model_dir):
    """Killed while the final model was saved: the resume logged the final evaluation twice, and SFT's summary
    lost train/loss (null). The last checkpoint now precedes the final evaluation's row, and the resume
    truncates the log to what it held at that checkpoint."""
    import json

    import rlx.train.rlvr as rlvr_mod
    import rlx.train.sft as sft_mod

    args = _tiny_args(trainer, base_model_dir)
    mod = sft_mod if trainer == "sft" else rlvr_mod
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    real = mod.save_model

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(mod, "save_model", killed)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(mod, "save_model", real)
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    assert _rows(tmp_path / "b") == _rows(tmp_path / "a")
    want, got = (json.loads((tmp_path / d / "summary.json").read_text()) for d in "ab")
    assert {k: v for k, v in got.items() if not k.startswith("time/")} == \
        {k: v for k, v in want.items() if not k.startswith("time/")}
