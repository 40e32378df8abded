"""Online rollout pruning (paper arrol): the balanced survivor rule, the quality head, the config checks."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from rlx.sampling.prune import PruneConfig, Pruner, balanced_keep, diverse_keep, prefix_clusters
from rlx.train.rlvr_config import Config


def test_balanced_keep_hand_values():
    # keep 2 of 4, target 0.5. Sorted likeliest first; S_k = k likeliest + (2-k) least likely.
    p = torch.tensor([[0.9, 0.8, 0.1, 0.2],     # k=1: {0.9, 0.1} mean 0.5       -> rows 0, 2
                      [0.9, 0.95, 0.8, 0.99],   # easy: k=0 {0.8, 0.9} 0.85 is closest -> rows 0, 2 (likeliest failures)
                      [0.05, 0.1, 0.2, 0.01]])  # hard: k=2 {0.2, 0.1} 0.15 is closest -> rows 1, 2 (likeliest successes)
    assert balanced_keep(p, 2).tolist() == [[0, 2], [0, 2], [1, 2]]
    assert balanced_keep(p[:1], 2, target=0.0).tolist() == [[2, 3]]  # the two least likely
    assert balanced_keep(p[:1], 2, target=1.0).tolist() == [[0, 1]]  # the two likeliest
    assert balanced_keep(p[:1], 4).tolist() == [[0, 1, 2, 3]]


def test_balanced_keep_matches_brute_force():
    g = torch.Generator().manual_seed(0)
    p = torch.rand(50, 7, generator=g)
    keep = 3
    got = balanced_keep(p, keep, target=0.4)
    for row, idx in zip(p.tolist(), got.tolist()):
        assert len(set(idx)) == keep and idx == sorted(idx)
        order = sorted(range(7), key=lambda i: -row[i])
        subsets = [order[:k] + order[7 - (keep - k):] if k < keep else order[:k] for k in range(keep + 1)]
        best = min(subsets, key=lambda s: abs(sum(row[i] for i in s) / keep - 0.4))
        assert sorted(best) == idx
    with pytest.raises(ValueError, match="keep"):
        balanced_keep(p, 8)


def test_diverse_keep_hand_values():
    p = torch.tensor([[0.9, 0.9, 0.8, 0.1, 0.1, 0.2]])
    c = torch.tensor([[0, 0, 1, 2, 2, 3]])
    # picks: 0 (first: the likeliest cluster c0), 3 (mean 0.9 >= 0.5: least likely c2), 5 (mean 0.5 is not
    # below: least likely unused c3), 2 (mean 0.4: likeliest unused c1)
    assert diverse_keep(p, c, 4).tolist() == [[0, 2, 3, 5]]
    # second round once every cluster gave one: p [0.9, 0.9, 0.9, 0.1], clusters [0, 0, 0, 1], keep 3
    assert diverse_keep(torch.tensor([[0.9, 0.9, 0.9, 0.1]]), torch.tensor([[0, 0, 0, 1]]), 3).tolist() == [[0, 1, 3]]
    # three identical rollouts and one different: diverse keeps one of each kind; extremes (k = 0: the two
    # least likely, mean 0.7 is closest to 0.5) keeps two copies of the same rollout, a group that must tie
    p = torch.tensor([[0.7, 0.7, 0.7, 0.8]])
    c = torch.tensor([[0, 0, 0, 1]])
    assert diverse_keep(p, c, 2).tolist() == [[0, 3]]
    assert balanced_keep(p, 2).tolist() == [[1, 2]]
    assert prefix_clusters(torch.tensor([[[1, 2], [1, 3], [1, 2]], [[5, 0], [5, 0], [4, 0]]])).tolist() == [[0, 1, 0], [1, 1, 0]]


def test_warmup_keeps_a_random_g_of_m_per_prompt():
    pr = Pruner(PruneConfig(candidates=6, warmup_steps=5), hidden_size=4, group_size=2)
    feats = torch.randn(3 * 6, 4)
    ids = torch.arange(18)[:, None]  # every prefix distinct
    rows = pr.plan(step=1, seed=9).choose(feats, ids)
    assert rows.tolist() == sorted(rows.tolist()) and rows.numel() == 6
    assert (rows // 6).tolist() == [0, 0, 1, 1, 2, 2]  # two survivors from each prompt's six candidates
    assert torch.equal(rows, pr.plan(step=1, seed=9).choose(feats, ids))  # the seed fixes the choice
    others = [pr.plan(step=1, seed=s).choose(feats, ids) for s in range(10, 14)]
    assert any(not torch.equal(rows, o) for o in others)  # and different seeds choose differently


def test_head_learns_and_then_steers_the_survivors():
    """Features whose first coordinate says correct (+1) / wrong (-1): after training, a group with
    two predicted-correct and four predicted-wrong candidates keeps one of each."""
    torch.manual_seed(0)
    pr = Pruner(PruneConfig(candidates=6, warmup_steps=0, head_lr=0.05), hidden_size=3, group_size=2)
    briers = []
    for step in range(1, 201):
        y = torch.rand(4 * 6) < 0.3
        feats = torch.randn(4 * 6, 3) * 0.3
        feats[:, 0] = y.float() * 2 - 1
        rows = pr.plan(step, seed=step).choose(feats, torch.arange(24)[:, None])
        briers.append(pr.observe(y[rows])["prune/head_brier"])
    assert briers[0] == pytest.approx(0.25)  # zero-initialised head: p = 0.5 for everything
    assert sum(briers[-20:]) / 20 < 0.02
    feats = torch.zeros(6, 3)
    feats[:, 0] = torch.tensor([1.0, -1, -1, 1, -1, -1])
    rows = pr.plan(300, seed=0).choose(feats, torch.arange(6)[:, None]).tolist()
    assert len(rows) == 2 and sum(feats[r, 0] > 0 for r in rows) == 1


def test_observe_checks_its_input():
    pr = Pruner(PruneConfig(candidates=4), hidden_size=2, group_size=2)
    assert pr.observe(torch.ones(4, dtype=torch.bool)) == {}  # nothing planned yet
    pr.plan(1, seed=0).choose(torch.randn(8, 2), torch.arange(8)[:, None])
    with pytest.raises(ValueError, match="3 verdicts for 4 survivors"):
        pr.observe(torch.ones(3, dtype=torch.bool))


def test_state_round_trip():
    a = Pruner(PruneConfig(candidates=4, warmup_steps=0), hidden_size=2, group_size=2)
    for s in range(3):
        a.plan(s + 1, seed=s).choose(torch.randn(8, 2), torch.arange(8)[:, None])
        a.observe(torch.tensor([True, False, True, True]))
    b = Pruner(PruneConfig(candidates=4, warmup_steps=0), hidden_size=2, group_size=2)
    b.load_state_dict(a.state_dict())
    x = torch.randn(8, 2)
    assert torch.equal(a.head(x), b.head(x))
    assert a.opt.state_dict()["state"][0]["step"] == b.opt.state_dict()["state"][0]["step"] == 3


BASE = {"model": {"path": "x"}, "task": {"name": "arithmetic"}, "rollout": {"group_size": 4, "max_new_tokens": 8}}


@pytest.mark.parametrize("prune, rollout, match", [
    ({"candidates": 4}, {}, "must exceed rollout.group_size"),
    ({"candidates": 8, "at_tokens": 8}, {}, "must be below rollout.max_new_tokens"),
    ({"candidates": 8}, {"engine": "vllm"}, "runs inside the hf engine"),
])
def test_config_errors(prune, rollout, match):
    with pytest.raises(ValidationError, match=match):
        Config.model_validate({**BASE, "prune": prune, "rollout": {**BASE["rollout"], **rollout}})
    Config.model_validate({**BASE, "prune": {"candidates": 8}})


@pytest.mark.parametrize("rule, want", [("diverse", [0, 3]), ("extremes", [1, 2])])
def test_pruner_applies_the_configured_rule(rule, want):
    pr = Pruner(PruneConfig(candidates=4, warmup_steps=0, rule=rule), hidden_size=1, group_size=2)
    with torch.no_grad():
        pr.head.weight.fill_(1.0)
    feats = torch.logit(torch.tensor([[0.7], [0.7], [0.7], [0.8]]))  # p = sigmoid(x) = 0.7, 0.7, 0.7, 0.8
    prefixes = torch.tensor([[4, 5], [4, 5], [4, 5], [6, 2]])  # three identical rollouts so far, one different
    assert pr.plan(50, seed=0).choose(feats, prefixes).tolist() == want


def test_top_plan_keeps_the_likeliest_and_reports_their_p():
    pr = Pruner(PruneConfig(candidates=4, warmup_steps=0), hidden_size=1, group_size=2)
    with torch.no_grad():
        pr.head.weight.fill_(1.0)
    p = torch.tensor([0.2, 0.9, 0.6, 0.1, 0.5, 0.3, 0.8, 0.7])  # two prompts of four candidates
    rows = pr.top_plan().choose(torch.logit(p)[:, None], torch.arange(8)[:, None])
    assert rows.tolist() == [1, 2, 6, 7]
    assert torch.allclose(pr.kept_p, torch.tensor([0.9, 0.6, 0.8, 0.7]))
