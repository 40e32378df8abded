"""The update stage: gradient accumulation equals one big batch for every aggregation mode."""

import pytest
import torch

from rlx.models import load_policy, ModelConfig
from rlx.objectives.aggregate import AGG_MODES
from rlx.objectives.build import build_objective
from rlx.objectives.config import ObjectiveConfig
from rlx.train.logprobs import sequence_logprobs
from rlx.train.update import Prepared, update
from rlx.types import RolloutBatch


def _batch(n=12, p=4, t=6, g=4, seed=0) -> RolloutBatch:
    gen = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(4, 99, (n, p), generator=gen)
    prompt_mask = torch.ones(n, p, dtype=torch.bool)
    prompt_mask[::3, :2] = False  # some left padding
    prompt_ids[~prompt_mask] = 0
    completion_ids = torch.randint(4, 99, (n, t), generator=gen)
    lengths = torch.randint(1, t + 1, (n,), generator=gen)  # uneven completion lengths
    mask = torch.arange(t)[None, :] < lengths[:, None]
    completion_ids[~mask] = 0
    return RolloutBatch(prompt_ids, prompt_mask, completion_ids, mask, torch.zeros(n, t),
                        torch.rand(n, generator=gen), torch.zeros(n, dtype=torch.bool), torch.arange(n) // g, g)


def _one_update(model_dir, mode: str, micro: int) -> torch.Tensor:
    model, _ = load_policy(ModelConfig(path=str(model_dir)))
    batch = _batch()
    obj = build_objective(ObjectiveConfig(aggregation=mode), max_new_tokens=6)
    adv, _ = obj.advantages(batch.rewards, batch.response_mask, batch.group_size)
    with torch.no_grad():
        old = sequence_logprobs(model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                batch.response_mask)[0]
    # perturb the old log-probs so ratios differ from 1 and clipping is exercised
    old = old + 0.3 * torch.randn(old.shape, generator=torch.Generator().manual_seed(1)) * batch.response_mask
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    before = torch.cat([q.detach().flatten().clone() for q in model.parameters()])
    update(model, obj, Prepared(batch, adv.advantages, old, None), opt, sched, epochs=1, minibatches=1,
           micro_batch_size=micro, grad_clip=0.0, generator=torch.Generator().manual_seed(0))
    after = torch.cat([q.detach().flatten() for q in model.parameters()])
    return before - after  # = the gradient (SGD, lr 1)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_micro_batches_give_the_one_batch_gradient(tiny_model_dir, mode):
    full = _one_update(tiny_model_dir, mode, micro=12)
    for micro in (5, 1):  # uneven split (5+5+2) and one sequence at a time
        acc = _one_update(tiny_model_dir, mode, micro=micro)
        assert full.abs().max() > 1e-4  # the gradient is not trivially zero
        torch.testing.assert_close(acc, full, rtol=0, atol=2e-6)


def test_on_policy_shortcut_equals_explicit_old_logprobs(tiny_model_dir):
    """epochs=1, minibatches=1 and old=None (detached current log-probs) is the same update."""
    model_a, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    model_b, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    batch = _batch()
    obj = build_objective(ObjectiveConfig(), max_new_tokens=6)
    adv, _ = obj.advantages(batch.rewards, batch.response_mask, batch.group_size)
    with torch.no_grad():
        old = sequence_logprobs(model_a, batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                batch.response_mask)[0]
    for model, o in ((model_a, old), (model_b, None)):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        update(model, obj, Prepared(batch, adv.advantages, o, None), opt, sched, epochs=1, minibatches=1,
               micro_batch_size=4, grad_clip=0.0, generator=torch.Generator().manual_seed(0))
    for pa, pb in zip(model_a.parameters(), model_b.parameters()):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-6)


def test_entropy_bonus_reaches_the_gradient(tiny_model_dir):
    """With entropy_coef > 0 the entropies carry gradient; with 0 they are only a metric."""

    def grad(coef: float) -> torch.Tensor:
        model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
        batch = _batch()
        obj = build_objective(ObjectiveConfig(entropy_coef=coef), max_new_tokens=6)
        adv, _ = obj.advantages(batch.rewards, batch.response_mask, batch.group_size)
        opt = torch.optim.SGD(model.parameters(), lr=1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
        before = torch.cat([q.detach().flatten().clone() for q in model.parameters()])
        metrics = update(model, obj, Prepared(batch, adv.advantages, None, None), opt, sched, epochs=1,
                         minibatches=1, micro_batch_size=12, grad_clip=0.0, generator=torch.Generator())
        assert metrics["train/entropy/mean"] > 0
        return before - torch.cat([q.detach().flatten() for q in model.parameters()])

    assert (grad(0.1) - grad(0.0)).abs().max() > 1e-4


def _grouped_batch(b=3, g=4, p=6, t=5, seed=0) -> RolloutBatch:
    """Rows in contiguous groups sharing one (left-padded) prompt, as the rollout stage builds them."""
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(4, 99, (b, p), generator=gen)
    pmask = torch.ones(b, p, dtype=torch.bool)
    pmask[0, :2] = False
    prompt[~pmask] = 0
    n = b * g
    comp = torch.randint(4, 99, (n, t), generator=gen)
    cmask = torch.arange(t)[None, :] < torch.randint(1, t + 1, (n,), generator=gen)[:, None]
    comp[~cmask] = 0
    return RolloutBatch(prompt.repeat_interleave(g, 0), pmask.repeat_interleave(g, 0), comp, cmask,
                        torch.zeros(n, t), torch.rand(n, generator=gen), torch.zeros(n, dtype=torch.bool),
                        torch.arange(n) // g, g)


@pytest.mark.parametrize("lean", [True, False], ids=["lean", "hf"])
def test_shared_prompt_forward_matches_the_full_forward_values_and_gradients(tiny_model_dir, lean):
    batch = _grouped_batch()
    grads, values = [], []
    for g in (1, batch.group_size):  # 1: every row runs its own prompt
        model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
        lp, ent, _ = sequence_logprobs(model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                       batch.response_mask, with_entropy=True, group_size=g, lean=lean)
        (lp * torch.linspace(-1, 1, lp.numel()).view_as(lp)).sum().backward()
        values.append((lp.detach(), ent))
        grads.append(torch.cat([q.grad.flatten() for q in model.parameters() if q.grad is not None]))
    torch.testing.assert_close(values[1][0], values[0][0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(values[1][1], values[0][1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[1], grads[0], rtol=1e-5, atol=1e-5)


def test_shared_prompts_are_detected_only_when_rows_really_share_them():
    from rlx.train.logprobs import groups_share_prompts

    grouped = _grouped_batch()
    assert groups_share_prompts(grouped.prompt_ids, 4)
    assert not groups_share_prompts(grouped.prompt_ids, 3)  # 12 rows, but groups of 3 straddle prompts
    assert not groups_share_prompts(_batch().prompt_ids, 4)  # every row its own prompt


@pytest.mark.parametrize("n, minibatches, steps", [(12, 4, 4), (12, 5, 5), (12, 16, 12), (24, 16, 16)])
def test_a_short_batch_still_takes_the_configured_optimizer_steps(tiny_model_dir, n, minibatches, steps):
    """Dynamic sampling and d3s may leave fewer than B x G sequences: the update still splits them into
    `minibatches` parts (the LR schedule counts those steps), and one step per sequence when there are fewer."""
    model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    batch = _batch(n=n)
    obj = build_objective(ObjectiveConfig(), max_new_tokens=6)
    adv, _ = obj.advantages(batch.rewards, batch.response_mask, batch.group_size)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    update(model, obj, Prepared(batch, adv.advantages, None, None), opt, sched, epochs=1, minibatches=minibatches,
           micro_batch_size=64, grad_clip=1.0, generator=torch.Generator().manual_seed(0))
    assert sched.last_epoch == steps


def test_extrema_are_taken_over_the_whole_step_not_averaged_over_minibatches(tiny_model_dir):
    """One token with a large rollout/trainer mismatch, four minibatches: the step's max importance ratio
    is that token's, e^2 (it used to be the mean of four per-minibatch maxima)."""
    import math

    model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    batch = _batch()
    obj = build_objective(ObjectiveConfig(), max_new_tokens=6)
    adv, _ = obj.advantages(batch.rewards, batch.response_mask, batch.group_size)
    with torch.no_grad():
        old = sequence_logprobs(model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids, batch.response_mask)[0]
    roll = old.clone()
    roll[0, 0] -= 2.0  # row 0's first token is valid (_batch keeps at least one token per row)
    batch = batch.__class__(**{**batch.__dict__, "rollout_logprobs": roll})
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    um = update(model, obj, Prepared(batch, adv.advantages, old, None), opt, sched, epochs=1, minibatches=4,
                micro_batch_size=64, grad_clip=0.0, generator=torch.Generator().manual_seed(0))
    assert um["train/mismatch/ratio_max"] == pytest.approx(math.exp(2.0), rel=1e-5)
    assert um["train/mismatch/ratio_min"] == pytest.approx(1.0, abs=1e-5)
    assert um["train/mismatch/kl_k3"] < math.exp(2.0) - 3.0  # means stay means: one token of ~72


def test_chunked_scoring_equals_one_pass(tiny_model_dir):
    from rlx.train.logprobs import score_batch

    model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    batch = _batch()
    whole = score_batch(model, batch, 0.7, with_entropy=True)
    for rows in (1, 5, 12):
        part = score_batch(model, batch, 0.7, with_entropy=True, rows=rows)
        assert torch.allclose(part[0], whole[0], atol=1e-6) and torch.allclose(part[1], whole[1], atol=1e-5)
        assert part[2] is None and part[0].shape == batch.completion_ids.shape


def test_logged_lr_is_the_rate_the_step_used(tiny_model_dir):
    model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    batch = _batch()
    obj = build_objective(ObjectiveConfig(), max_new_tokens=6)
    adv, _ = obj.advantages(batch.rewards, batch.response_mask, batch.group_size)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 4)  # warmup: 0.25, 0.5, 0.75, ...
    kw = dict(epochs=1, micro_batch_size=64, grad_clip=1.0, generator=torch.Generator().manual_seed(0))
    assert update(model, obj, Prepared(batch, adv.advantages, None, None), opt, sched, minibatches=1, **kw)["train/lr"] == 0.25
    assert update(model, obj, Prepared(batch, adv.advantages, None, None), opt, sched, minibatches=2, **kw)["train/lr"] == \
        pytest.approx((0.5 + 0.75) / 2)


def test_rows_that_share_ids_but_not_the_mask_are_not_a_shared_prompt(tiny_model_dir):
    """pad id == a real leading token: [5, 7, 8] fully real vs [pad=5, 7, 8]. Same ids, different prompts;
    the shared paths used the first row's mask for both, now they are not taken."""
    from rlx.train.logprobs import groups_share_prompts

    model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    pid = torch.tensor([[5, 7, 8], [5, 7, 8]])
    pm = torch.tensor([[True, True, True], [False, True, True]])
    cid, cm = torch.tensor([[9, 10], [9, 10]]), torch.ones(2, 2, dtype=torch.bool)
    assert groups_share_prompts(pid, 2) and not groups_share_prompts(pid, 2, pm)
    with torch.no_grad():
        ref = sequence_logprobs(model, pid, pm, cid, cm, group_size=1, lean=False)[0]
        for lean in (True, False):
            got = sequence_logprobs(model, pid, pm, cid, cm, group_size=2, lean=lean)[0]
            assert torch.allclose(got, ref, atol=1e-5)


def test_a_right_padded_prompt_takes_the_general_forward(tiny_model_dir):
    """The lean path reads the last prompt position as the predictor of the first completion token; a
    right-padded prompt (no caller in rlx makes one) gets the HF forward's answer, not a wrong one."""
    model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    pid, pm = torch.tensor([[5, 7, 0]]), torch.tensor([[True, True, False]])
    cid, cm = torch.tensor([[9, 10]]), torch.ones(1, 2, dtype=torch.bool)
    with torch.no_grad():
        a = sequence_logprobs(model, pid, pm, cid, cm, lean=True)[0]
        b = sequence_logprobs(model, pid, pm, cid, cm, lean=False)[0]
    assert torch.allclose(a, b, atol=1e-6)


def test_a_non_finite_gradient_skips_the_optimizer_step(tiny_model_dir):
    """An inf advantage (or any NaN in the loss) used to reach optimizer.step and write NaN into every weight.
    The step is skipped and counted; the learning-rate schedule still advances."""
    model, _ = load_policy(ModelConfig(path=str(tiny_model_dir)))
    batch = _batch()
    obj = build_objective(ObjectiveConfig(), max_new_tokens=6)
    adv = torch.ones(batch.completion_ids.shape)
    adv[0, 0] = float("inf")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    before = [q.detach().clone() for q in model.parameters()]
    out = update(model, obj, Prepared(batch, adv, None, None), opt, sched, epochs=1, minibatches=2,
                 micro_batch_size=12, grad_clip=1.0, generator=torch.Generator().manual_seed(0))
    assert out["train/nonfinite_grad_skipped"] == 0.5  # the minibatch holding row 0; the other one stepped
    assert all(torch.isfinite(q).all() for q in model.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    assert sched.last_epoch == 2
