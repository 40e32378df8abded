"""D^3S down-sampling: max-variance subsets (vs brute force), |A| x H token selection, schedule."""

import itertools

import pytest
import torch

from rlx.sampling import D3SConfig, d3s_keep_fraction, d3s_sample_select, d3s_token_select, max_variance_subset


def test_max_variance_subset_brute_force():
    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        g = 2 + trial % 6
        k = 1 + trial % g
        v = torch.randn(3, g, generator=gen, dtype=torch.float64)
        if trial % 3 == 0:
            v = torch.randint(0, 3, (3, g), generator=gen).double()  # ties
        idx = max_variance_subset(v, k)
        for b in range(3):
            best = max(v[b, list(c)].var(correction=0).item() for c in itertools.combinations(range(g), k))
            assert v[b, idx[b]].var(correction=0).item() == pytest.approx(best, abs=1e-12)
            assert len(set(idx[b].tolist())) == k


def test_sample_select_hand():
    adv = torch.tensor([-1.0, 0.1, 0.2, 1.0, 0.0, 0.3, -0.4, 0.31])
    rows, m = d3s_sample_select(adv, group_size=4, keep_fraction=0.5)
    # group 0: {-1, 1} has variance 1, the maximum; group 1: {-0.4, 0.31}, variance 0.355^2
    assert rows.tolist() == [0, 3, 6, 7]
    assert m["d3s/adv_var_after"] > m["d3s/adv_var_before"]


def test_sample_select_token_advantages():
    mask = torch.tensor([[1, 1, 0], [1, 0, 0], [1, 1, 1], [1, 0, 0]], dtype=torch.bool)
    adv = torch.tensor([2.0, -1.0, 0.5, 0.4])[:, None] * mask
    rows, _ = d3s_sample_select(adv, group_size=4, keep_fraction=0.5, response_mask=mask)
    assert rows.tolist() == [0, 1]


def test_token_select_hand():
    adv = torch.tensor([[1.0, 1.0, 1.0], [-2.0, -2.0, 50.0]])
    ent = torch.tensor([[0.1, 0.5, 0.25], [0.1, 0.3, 9.0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]], dtype=torch.bool)
    new, m = d3s_token_select(adv, ent, mask, keep_fraction=0.5)
    # scores |A| H: [0.1, 0.5, 0.25], [0.2, 0.6, masked]; keep ceil(0.5 * 5) = 3 -> 0.6, 0.5, 0.25
    assert new.tolist() == [[False, True, True], [False, True, False]]
    assert m["d3s/token_keep"].item() == pytest.approx(3 / 5)
    full, _ = d3s_token_select(adv, ent, mask, keep_fraction=1.0)
    assert torch.equal(full, mask)


def test_schedule():
    assert d3s_keep_fraction(0, 0.25, 1.0, 100) == 0.25
    assert d3s_keep_fraction(50, 0.25, 1.0, 100) == pytest.approx(0.625)
    assert d3s_keep_fraction(500, 0.25, 1.0, 100) == 1.0
    cfg = D3SConfig(sample_keep_start=0.5, token_keep_start=0.2)
    assert cfg.ramp_steps == 100 and cfg.sample_keep_end == 1.0


def test_token_select_breaks_ties_by_position():
    """Equal scores at the threshold (mostly the 0-score tokens of tied groups): the earlier tokens are kept,
    the same on every device (topk is not stable: it kept positions 4-7 of 8 and 188, 189, ... of 300)."""
    for t in (8, 300):
        adv, ent, mask = torch.ones(1, t), torch.ones(1, t), torch.ones(1, t, dtype=torch.bool)
        kept, _ = d3s_token_select(adv, ent, mask, 0.5)
        assert kept[0].nonzero().squeeze(1).tolist() == list(range(t // 2))


def test_the_first_rl_step_keeps_the_start_share(tmp_path, tiny_model_dir):
    """The schedule is documented 0-based ("start at step 0") but was given the 1-based RL step: with
    ramp_steps 1 the first update already used the end share (1.0), so D3S never down-sampled."""
    import json

    from rlx.cli import main

    out = tmp_path / "run"
    assert main(["train", "recipes/arith_d3s.yaml", f"model.path={tiny_model_dir}", "train.steps=2", "eval.n=4",
                 "eval.every=0", "rollout.prompts_per_step=2", "rollout.group_size=8", "d3s.ramp_steps=1",
                 "train.log_every=1", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    keeps = [(r["rollout/d3s/sample_keep"], r["rollout/d3s/token_keep"]) for r in rows if "rollout/d3s/sample_keep" in r]
    assert keeps == [(0.5, 0.5), (1.0, 1.0)]


def test_scoring_passes_run_in_eval_mode(tmp_path, tiny_model_dir, monkeypatch):
    """The D3S entropy pass and the perception loss's digit-masked scoring ran after model.train(): with
    dropout (e.g. model.lora.dropout) their rankings and targets were noisy, unlike the old log-probs."""
    import rlx.train.rlvr as rlvr_mod
    import rlx.train.select as select_mod
    from rlx.cli import main

    modes = []

    def recording(real):
        def score(model, *a, **k):
            modes.append(model.training)
            return real(model, *a, **k)
        return score

    monkeypatch.setattr(select_mod, "score_batch", recording(select_mod.score_batch))
    monkeypatch.setattr(rlvr_mod, "score_batch", recording(rlvr_mod.score_batch))
    assert main(["train", "recipes/arith_d3s.yaml", f"model.path={tiny_model_dir}", "train.steps=1", "eval.n=4",
                 "eval.every=0", "rollout.prompts_per_step=2", "rollout.group_size=8",
                 "objective.perception_coef=0.01", "--out", str(tmp_path / "run")]) == 0
    assert len(modes) >= 2 and not any(modes)
