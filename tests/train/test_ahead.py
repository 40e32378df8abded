"""One-step off-policy rollouts (`rollout.staleness: 1`, rlx.train.ahead): what is sampled with which weights."""

import json
import time

import pytest
import torch

from rlx.cli import main
from rlx.config import ConfigError, build_config
from rlx.models import load_pretrained
from rlx.rollout import HFEngine, SamplingParams
from rlx.rewards.safe import RewardErrors
from rlx.tasks import make_task
from rlx.train.ahead import RolloutAhead, behaviour_logprobs, copy_weights, engine_logprobs_exact
from rlx.train.collect import Collected, collect
from rlx.train.logprobs import sequence_logprobs
from rlx.train.rlvr_config import Config, RolloutConfig
from rlx.types import RolloutBatch

PROMPTS = ["12+34=", "71*96="]


def _batch(gen, n: int) -> RolloutBatch:
    rows = gen.completion_ids.shape[0]
    return RolloutBatch(prompt_ids=gen.prompt_ids, prompt_mask=gen.prompt_mask, completion_ids=gen.completion_ids,
                        response_mask=gen.completion_mask, rollout_logprobs=gen.logprobs,
                        rewards=torch.zeros(rows), correct=torch.zeros(rows, dtype=torch.bool),
                        group_index=torch.arange(rows) // n, group_size=n, texts=gen.texts,
                        finish_reasons=gen.finish_reasons)


def _perturb(model, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_copy_weights_makes_the_copy_equal_and_independent(base_model_dir):
    a, _ = load_pretrained(base_model_dir)
    b, _ = load_pretrained(base_model_dir)
    _perturb(a, 0)
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    copy_weights(b, a)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    _perturb(a, 1)  # later updates of the source do not leak into the copy
    assert not any(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("temperature, top_k", [(1.0, 0), (0.7, 0), (0.7, 5)])
def test_behaviour_logprobs_are_the_trainers_logprobs_of_the_sampling_weights(base_model_dir, temperature, top_k):
    model, tok = load_pretrained(base_model_dir)
    gen = HFEngine(model, tok).generate(PROMPTS, SamplingParams(temperature=temperature, top_k=top_k, max_new_tokens=6,
                                                                n=4), seed=3)
    batch = _batch(gen, 4)
    rcfg = RolloutConfig(temperature=temperature, top_k=top_k)
    got = behaviour_logprobs(model, batch, forward=not engine_logprobs_exact(rcfg), temperature=temperature)
    with torch.no_grad():  # the trainer's log-probs: log_softmax(logits / temperature), untruncated
        want = sequence_logprobs(model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                 batch.attention_mask, group_size=4, temperature=temperature)[0]
    m = batch.response_mask.bool()
    assert not got.is_inference()  # usable in the autograd graph of the update
    torch.testing.assert_close(got[m], want[m], atol=1e-5, rtol=0)
    assert engine_logprobs_exact(rcfg) == (top_k == 0)
    if top_k:  # the engine's truncated log-probs are not the trainer's: the forward was needed
        assert (gen.logprobs[m] - want[m]).abs().max() > 1e-3
    assert not engine_logprobs_exact(RolloutConfig(top_p=0.9))


def test_the_batch_sampled_ahead_uses_the_weights_from_before_the_update(base_model_dir):
    """submit(), then change the trainer's weights (the update): the batch is the old weights' batch."""
    model, tok = load_pretrained(base_model_dir)
    ahead = RolloutAhead(model, forward=False)
    engine = HFEngine(ahead.behaviour, tok)
    params = SamplingParams(temperature=1.0, max_new_tokens=6, n=4)

    def produce(step):
        return Collected(_batch(engine.generate(PROMPTS, params, seed=step), 4), {"step": float(step)})

    reference = HFEngine(load_pretrained(base_model_dir)[0], tok).generate(PROMPTS, params, seed=2)
    try:
        ahead.submit(produce, 2)
        _perturb(model, 0)  # the update of step 1, while step 2's batch is sampled
        with pytest.raises(RuntimeError, match="in flight"):
            ahead.sync(model)
        got = ahead.result()
        assert torch.equal(got.batch.completion_ids, reference.completion_ids)
        assert got.metrics["step"] == 2.0 and got.metrics["time/rollout_background"] > 0
        torch.testing.assert_close(got.behaviour_logprobs, reference.logprobs)
        ahead.sync(model)  # between batches: the sampler now has the updated weights
        assert all(torch.equal(x, y) for x, y in zip(ahead.behaviour.parameters(), model.parameters()))
        ahead.submit(produce, 2)
        assert not torch.equal(ahead.result().behaviour_logprobs, reference.logprobs)
    finally:
        ahead.close()


def test_an_error_on_the_rollout_thread_reaches_the_trainer(base_model_dir):
    model, _ = load_pretrained(base_model_dir)
    ahead = RolloutAhead(model, forward=False)

    def produce(step):
        raise ValueError(f"verifier broke at step {step}")

    try:
        ahead.submit(produce, 5)
        with pytest.raises(ValueError, match="step 5"):
            ahead.result()
        with pytest.raises(RuntimeError, match="nothing was submitted"):
            ahead.result()
    finally:
        ahead.close()


# on the CPU wherever the tests run: what they check is tied to the CPU sampling stream (on another device
# step 1 can draw only zero-variance groups, so θ_1 = θ_0 and no staleness can show)
ARGS = ["train.steps=4", "eval.n=8", "eval.every=0", "rollout.prompts_per_step=4", "rollout.group_size=4",
        "train.micro_batch_size=16", "train.optim.lr=1e-3", "model.device=cpu"]


def _rows(out):
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r for r in rows if "train/policy/ratio_mean" in r}


def test_staleness_one_trains_step_t_on_the_batch_sampled_before_update_t_minus_1(base_model_dir, tmp_path,
                                                                                   monkeypatch):
    base = ["train", "recipes/arith_grpo.yaml", f"model.path={base_model_dir}", *ARGS]
    assert main([*base, "train.checkpoint_every=0", "--out", str(tmp_path / "sync")]) == 0
    import rlx.tasks.arithmetic as arith

    real = arith.ArithmeticTask.train_problems

    def slow(self, n, seed):  # the rollout thread starts sampling only after the update has stepped the optimizer
        time.sleep(0.5)
        return real(self, n, seed)

    monkeypatch.setattr(arith.ArithmeticTask, "train_problems", slow)
    assert main([*base, "rollout.staleness=1", "train.checkpoint_every=0", "--out", str(tmp_path / "ahead")]) == 0
    sync, ahead = _rows(tmp_path / "sync"), _rows(tmp_path / "ahead")
    assert sorted(ahead) == [1, 2, 3, 4]
    # step 1 is sampled on-policy in the foreground: the two runs are identical
    for k in ("rollout/reward_mean", "train/loss/policy", "train/grad_norm", "rollout/mismatch_kl"):
        assert ahead[1][k] == sync[1][k]
    assert sync[1]["train/grad_norm"] > 0  # step 1 moves the weights: θ_1 != θ_0
    # from step 2 on, θ_t trains on a batch sampled by θ_{t-1}: on-policy the ratio is exactly 1, here it is
    # not, by far more than the engine/trainer rounding (~1e-7) a batch sampled by the current weights would show
    assert sync[2]["train/policy/ratio_max"] == 1.0 and sync[2]["train/policy/approx_kl"] == 0.0
    assert ahead[2]["train/policy/approx_kl"] > 1e-3 and ahead[2]["train/policy/ratio_max"] > 1.1
    assert "time/rollout_background" in ahead[2] and "time/rollout_background" not in ahead[1]
    assert "time/rollout_background" not in sync[2]
    # π_old is the engine's own log-probs, so no engine/trainer mismatch is measured after step 1
    assert "rollout/mismatch_kl" in ahead[1] and "rollout/mismatch_kl" not in ahead[2]

    # the checkpoint after step 1 holds step 2's batch: exactly what θ_0 samples with step 2's seed
    assert main([*base, "rollout.staleness=1", "train.steps=2", "train.checkpoint_every=1",
                 "--out", str(tmp_path / "ahead2")]) == 0
    ckpt = tmp_path / "ahead2" / "checkpoints" / "step_00000001"
    state = torch.load(ckpt / "trainer_state.pt", weights_only=False)
    pending = state["extra"]["pending"]
    cfg = build_config(Config, {"kind": "rlvr", "model": {"path": str(base_model_dir)}, "task": {"name": "arithmetic"},
                                "rollout": {"prompts_per_step": 4, "group_size": 4}})
    theta0, tok = load_pretrained(base_model_dir)
    theta1, _ = load_pretrained(ckpt / "model")

    def sample(model, step):
        return collect(HFEngine(model, tok), make_task(cfg.task), tok, cfg.rollout, cfg.objective,
                       seed=cfg.seed * 1_000_003 + step, errors=RewardErrors())

    by0, by1 = sample(theta0, 2), sample(theta1, 2)
    assert torch.equal(pending.batch.completion_ids, by0.batch.completion_ids)
    m = by0.batch.response_mask.bool()
    torch.testing.assert_close(pending.behaviour_logprobs[m], by0.batch.rollout_logprobs[m], atol=1e-5, rtol=0)
    if torch.equal(by1.batch.completion_ids, by0.batch.completion_ids):  # same tokens: θ_1 scores them differently
        assert (by1.batch.rollout_logprobs[m] - pending.behaviour_logprobs[m]).abs().max() > 1e-3
    # after update 1 the sampler was synced: the checkpoint after step 2 holds step 3's batch, sampled by θ_1
    assert main([*base, "rollout.staleness=1", "train.steps=3", "train.checkpoint_every=2",
                 "--out", str(tmp_path / "ahead3")]) == 0
    state = torch.load(tmp_path / "ahead3" / "checkpoints" / "step_00000002" / "trainer_state.pt", weights_only=False)
    pending, want = state["extra"]["pending"], sample(theta1, 3).batch
    m = want.response_mask.bool()
    assert torch.equal(pending.batch.completion_ids, want.completion_ids)
    torch.testing.assert_close(pending.behaviour_logprobs[m], want.rollout_logprobs[m], atol=1e-5, rtol=0)


def test_staleness_one_with_tis_keeps_the_mismatch_measured(base_model_dir, tmp_path):
    """With a TIS cap π_old comes from a trainer forward of the sampling weights, so the engine/trainer
    mismatch on the same weights is still measured (and tiny), while the staleness shows in the ratio."""
    base = ["train", "recipes/arith_grpo.yaml", f"model.path={base_model_dir}", *ARGS, "train.checkpoint_every=0",
            "objective.tis_cap=2.0", "rollout.staleness=1"]
    assert main([*base, "--out", str(tmp_path / "tis")]) == 0
    rows = _rows(tmp_path / "tis")
    for step in (2, 3, 4):
        assert rows[step]["rollout/mismatch_kl"] < 1e-8 and abs(rows[step]["rollout/max_importance_ratio"] - 1) < 1e-3
    assert rows[2]["train/policy/approx_kl"] > 1e-3


def test_staleness_one_crash_then_resume_matches(base_model_dir, tmp_path, kill_on_call):
    """The checkpoint holds the batch sampled ahead, so a resumed run trains on exactly the same batches."""
    args = ["train", "recipes/arith_grpo.yaml", f"model.path={base_model_dir}", *ARGS, "train.checkpoint_every=2",
            "rollout.staleness=1"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0

    import rlx.tasks.arithmetic as arith

    restore = kill_on_call(arith.ArithmeticTask, "train_problems", 4)  # on the rollout thread, during step 3
    assert main([*args, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main([*args, "--out", str(tmp_path / "b"), "--resume"]) == 0
    strip = lambda rows: {s: {k: v for k, v in r.items() if not k.startswith("time/")} for s, r in rows.items()}
    a, b = strip(_rows(tmp_path / "a")), strip(_rows(tmp_path / "b"))
    assert sorted(a) == [1, 2, 3, 4] and a == b


@pytest.mark.parametrize("override, field", [
    ({"rollout": {"engine": "vllm", "staleness": 1}}, "rollout.engine: vllm"),
    ({"rollout": {"staleness": 1}, "prune": {"enabled": True, "candidates": 16}}, "prune.enabled"),
    ({"rollout": {"staleness": 1}, "difficulty": {"enabled": True}}, "difficulty.enabled"),
    ({"rollout": {"staleness": 1}, "train": {"precision_flow": "fp8_rollout"}}, "train.precision_flow: fp8_rollout"),
    ({"rollout": {"staleness": 2}}, "rollout.staleness"),
])
def test_staleness_config_errors_name_the_field(override, field):
    base = {"kind": "rlvr", "model": {"path": "x"}, "task": {"name": "arithmetic"}}
    with pytest.raises(ConfigError, match=field):
        build_config(Config, {**base, **override})
