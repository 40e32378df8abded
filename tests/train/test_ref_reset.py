"""Reference-policy reset (paper prorl): the KL reference becomes the current policy every N steps."""

import json

import pytest

from rlx.cli import main
from rlx.config import ConfigError, build_config
from rlx.train.rlvr_config import Config

ARGS = ["train.steps=3", "eval.n=4", "eval.every=0", "rollout.prompts_per_step=8", "rollout.group_size=8",
        "train.checkpoint_every=0", "train.micro_batch_size=64", "objective.kl_coef=0.1", "train.optim.lr=1e-3"]


def _kl_by_step(out):
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["train/kl/ref"] for r in rows if "train/kl/ref" in r}, rows


def test_reset_makes_the_next_step_start_at_zero_kl(base_model_dir, tmp_path):
    base = ["train", "recipes/arith_grpo.yaml", f"model.path={base_model_dir}", *ARGS]  # rewards vary: the policy moves
    assert main([*base, "train.ref_reset_every=2", "--out", str(tmp_path / "reset")]) == 0
    assert main([*base, "--out", str(tmp_path / "plain")]) == 0
    kl_reset, rows = _kl_by_step(tmp_path / "reset")
    kl_plain, _ = _kl_by_step(tmp_path / "plain")
    assert kl_reset[1] < 1e-12  # step 1: policy == reference (the initial model)
    assert kl_reset[2] == kl_plain[2]  # the two runs are the same until the reset after step 2
    assert kl_plain[3] > 1e-7  # without it, the policy has moved away from the initial reference by step 3
    assert kl_reset[3] < 1e-10  # with it, step 3 starts from a reference equal to the policy
    assert [r["step"] for r in rows if r.get("train/ref_reset")] == [2]


def test_reset_config_errors_name_the_field():
    base = {"kind": "rlvr", "model": {"path": "x"}, "task": {"name": "arithmetic"}, "train": {"ref_reset_every": 5}}
    with pytest.raises(ConfigError, match="train.ref_reset_every needs a KL reference"):
        build_config(Config, base)
    with pytest.raises(ConfigError, match="LoRA"):
        build_config(Config, {**base, "objective": {"kl_coef": 0.1}, "model": {"path": "x", "lora": {"r": 4}}})
    assert build_config(Config, {**base, "objective": {"kl_coef": 0.1}}).train.ref_reset_every == 5


def test_reset_survives_a_crash_and_resume(base_model_dir, tmp_path, monkeypatch):
    """The reference after a reset lives in the checkpoint: a run killed after it resumes identically."""
    args = ["train", "recipes/arith_grpo.yaml", f"model.path={base_model_dir}", *ARGS, "train.steps=4",
            "train.checkpoint_every=2", "train.ref_reset_every=2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    import rlx.tasks.arithmetic as arith

    real = arith.ArithmeticTask.train_problems
    calls = {"n": 0}

    def crash_on_third(self, n, seed):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(self, n, seed)

    monkeypatch.setattr(arith.ArithmeticTask, "train_problems", crash_on_third)
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    monkeypatch.setattr(arith.ArithmeticTask, "train_problems", real)
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    strip = lambda rows: [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]  # noqa: E731
    assert strip(_kl_by_step(tmp_path / "a")[1]) == strip(_kl_by_step(tmp_path / "b")[1])


def test_reset_reference_copies_weights_and_clears_adam():
    import torch

    from rlx.train.rlvr import reset_reference

    model, ref = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    opt = torch.optim.AdamW(model.parameters(), lr=0.1)
    model(torch.ones(1, 3)).sum().backward()
    opt.step()
    assert len(opt.state) == 2
    reset_reference(ref, model, opt)
    assert torch.equal(ref.weight, model.weight) and torch.equal(ref.bias, model.bias)
    assert len(opt.state) == 0  # Adam's moments and step counts start over
