"""Policy/value losses on hand values, against a slow loop, and the ratio = 1 REINFORCE identity."""

import math

import pytest
import torch

from rlx.objectives import (
    AGG_MODES,
    LossInputs,
    ObjectiveConfig,
    aggregate,
    build_objective,
    entropy_bonus,
    gspo_loss,
    normalizer_for,
    ppo_clip_loss,
    tis_weights,
    value_loss,
)


def _logratio(ratios):
    old = torch.full((1, len(ratios)), -2.0, dtype=torch.float64)
    return old + torch.log(torch.tensor([ratios], dtype=torch.float64)), old


def test_ppo_hand_values():
    logp, old = _logratio([1.5, 0.5, 0.5, 1.5, 4.0])
    adv = torch.tensor([[1.0, -1.0, 1.0, -1.0, -1.0]], dtype=torch.float64)
    mask = torch.ones(1, 5, dtype=torch.bool)
    loss, m = ppo_clip_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.28)
    # A=+1 r=1.5: max(-1.5, -1.28) = -1.28   (clipped high)
    # A=-1 r=0.5: max(0.5, 0.8) = 0.8        (clipped low)
    # A=+1 r=0.5: max(-0.5, -0.8) = -0.5     (unclipped)
    # A=-1 r=1.5: max(1.5, 1.28) = 1.5 ;  A=-1 r=4: max(4, 1.28) = 4
    assert torch.allclose(loss, torch.tensor([[-1.28, 0.8, -0.5, 1.5, 4.0]], dtype=torch.float64), atol=1e-12)
    assert m["policy/clip_frac"].item() == pytest.approx(2 / 5)
    assert m["policy/clip_frac_high"].item() == pytest.approx(1 / 5)
    assert m["policy/clip_frac_low"].item() == pytest.approx(1 / 5)
    assert m["policy/ratio_max"].item() == pytest.approx(4.0)
    dual, md = ppo_clip_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.28, dual_clip=3.0)
    # dual clip caps negative-advantage losses at -c A = 3: only the r=4 token changes
    assert torch.allclose(dual, torch.tensor([[-1.28, 0.8, -0.5, 1.5, 3.0]], dtype=torch.float64), atol=1e-12)
    assert md["policy/dual_clip_frac"].item() == pytest.approx(1 / 5)


def test_approx_kl_is_the_k3_estimate_of_kl_old_to_new():
    """Tokens are sampled by pi_old; k3 = (r - 1) - log r with r = pi / pi_old averages to KL(pi_old || pi)."""
    old_p, new_p = torch.tensor([0.5, 0.5], dtype=torch.float64), torch.tensor([0.9, 0.1], dtype=torch.float64)
    kl = float((old_p * (old_p / new_p).log()).sum())  # 0.5 log(0.5/0.9) + 0.5 log(0.5/0.1) = 0.5108
    assert kl == pytest.approx(0.5108256, abs=1e-6)
    # one sample of each token, weighted as pi_old samples them: equal weights, so the token mean is the expectation
    logp, old = new_p.log().view(1, 2), old_p.log().view(1, 2)
    _, m = ppo_clip_loss(logp, old, torch.ones(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.bool),
                         eps_low=0.2, eps_high=0.2)
    # by hand: r = (1.8, 0.2): ((0.8 - log 1.8) + (-0.8 - log 0.2)) / 2 = (0.2122 + 0.8094) / 2 = 0.5108
    assert m["policy/approx_kl"].item() == pytest.approx(kl, abs=1e-9)


def test_ppo_matches_slow_loop():
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.3 - 1
    old = torch.randn(4, 6, generator=g, dtype=torch.float64) * 0.3 - 1
    adv = torch.randn(4, 6, generator=g, dtype=torch.float64)
    mask = torch.rand(4, 6, generator=g) > 0.3
    loss, _ = ppo_clip_loss(logp, old, adv, mask, eps_low=0.1, eps_high=0.3, dual_clip=2.0)
    for i in range(4):
        for t in range(6):
            r = math.exp(float(logp[i, t] - old[i, t]))
            a = float(adv[i, t])
            ref = max(-a * r, -a * min(max(r, 0.9), 1.3))
            if a < 0:
                ref = min(ref, -2.0 * a)
            assert loss[i, t].item() == pytest.approx(ref, abs=1e-12)


def test_gspo_hand_value_and_gradient():
    old = torch.tensor([[-1.0, -2.0, -3.0]], dtype=torch.float64)
    logp = (old + torch.tensor([[0.2, 0.4, 7.0]], dtype=torch.float64)).requires_grad_(True)
    mask = torch.tensor([[1, 1, 0]], dtype=torch.bool)
    adv = torch.ones(1, 3, dtype=torch.float64)
    loss, _ = gspo_loss(logp, old, adv, mask, eps_low=0.2, eps_high=0.28)
    # s = exp((0.2 + 0.4) / 2) = exp(0.3) = 1.3498588 > 1.28 -> clipped: loss -1.28 on both valid tokens
    assert torch.allclose(loss[0, :2], torch.tensor([-1.28, -1.28], dtype=torch.float64))
    loss, _ = gspo_loss(logp, old, adv, mask, eps_low=0.2, eps_high=10.0)
    assert torch.allclose(loss[0, :2], torch.full((2,), -math.exp(0.3), dtype=torch.float64))
    aggregate(loss, mask, "seq-mean-token-mean").backward()
    # d/dlogp_t of -A * exp(mean_t(logp - old)) = -exp(0.3) / 2 on each valid token, 0 on padding
    assert torch.allclose(logp.grad, torch.tensor([[-math.exp(0.3) / 2, -math.exp(0.3) / 2, 0.0]], dtype=torch.float64))


def test_gspo_gradient_equals_sequence_objective():
    g = torch.Generator().manual_seed(2)
    old = torch.randn(3, 5, generator=g, dtype=torch.float64) - 1
    logp = (old + 0.05 * torch.randn(3, 5, generator=g, dtype=torch.float64)).requires_grad_(True)
    mask = torch.arange(5)[None] < torch.tensor([5, 2, 4])[:, None]
    a_seq = torch.tensor([1.0, -0.5, 2.0], dtype=torch.float64)
    adv = a_seq[:, None] * mask
    loss, _ = gspo_loss(logp, old, adv, mask, eps_low=1.0, eps_high=1.0)  # wide clip: no clipping
    aggregate(loss, mask, "seq-mean-token-mean").backward()
    g_token = logp.grad.clone()
    logp.grad = None
    m = mask.double()
    s = torch.exp(((logp - old) * m).sum(1) / m.sum(1))
    (-(a_seq * s).mean()).backward()  # GSPO's sequence objective, mean over sequences
    assert torch.allclose(g_token, logp.grad, atol=1e-12)


@pytest.mark.parametrize("mode", AGG_MODES)
@pytest.mark.parametrize("policy_loss", ["ppo_clip", "gspo"])
def test_ratio_one_equals_reinforce(mode, policy_loss):
    """With pi = pi_old and no KL, grad of the clipped loss == grad of -sum A log pi, aggregated alike."""
    g = torch.Generator().manual_seed(4)
    n, t, v = 6, 5, 7
    logits = torch.randn(n, t, v, generator=g, dtype=torch.float64).requires_grad_(True)
    tokens = torch.randint(0, v, (n, t), generator=g)
    mask = torch.arange(t)[None] < torch.tensor([5, 3, 1, 4, 2, 5])[:, None]
    seq_adv = torch.randn(n, generator=g, dtype=torch.float64)
    adv = seq_adv[:, None] * mask  # outcome advantages (GSPO needs them per sequence)

    def logprobs():
        return torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)

    cfg = ObjectiveConfig(aggregation=mode, policy_loss=policy_loss, clip_eps_high=0.28)
    obj = build_objective(cfg, max_new_tokens=t)
    lp = logprobs()
    loss, _ = obj.loss(LossInputs(lp, lp.detach(), adv, mask), normalizer_for(mask))
    loss.backward()
    g_ppo = logits.grad.clone()
    logits.grad = None
    aggregate(-adv * logprobs(), mask, mode, max_len=t).backward()
    assert torch.allclose(g_ppo, logits.grad, atol=1e-12)
    assert logits.grad.abs().max() > 1e-3


def test_tis_weights():
    old = torch.tensor([[-1.0, -1.0, -1.0]])
    roll = torch.tensor([[-1.5, -0.5, -4.0]])
    w, m = tis_weights(old, roll, torch.ones(1, 3, dtype=torch.bool), cap=2.0)
    # exp(0.5) = 1.6487, exp(-0.5) = 0.6065, exp(3) = 20.09 -> capped at 2
    assert torch.allclose(w, torch.tensor([[math.exp(0.5), math.exp(-0.5), 2.0]]), atol=1e-6)
    assert m["tis/capped_frac"].item() == pytest.approx(1 / 3)


def test_value_loss_hand():
    v, v_old, ret = torch.tensor([[1.0, 0.6]]), torch.tensor([[0.5, 0.5]]), torch.tensor([[2.0, 0.0]])
    loss, _ = value_loss(v, v_old, ret, torch.ones(1, 2, dtype=torch.bool), clip_eps=0.2)
    # token 0: (1-2)^2 = 1, V_clip = 0.5 + 0.2 = 0.7 -> (0.7-2)^2 = 1.69 -> 0.5 * 1.69 = 0.845
    # token 1: (0.6-0)^2 = 0.36, V_clip = 0.6 (inside the range) -> 0.18
    assert torch.allclose(loss, torch.tensor([[0.845, 0.18]]), atol=1e-6)
    plain, _ = value_loss(v, v_old, ret, torch.ones(1, 2, dtype=torch.bool), clip_eps=None)
    assert torch.allclose(plain, torch.tensor([[0.5, 0.18]]), atol=1e-6)


def test_entropy_bonus():
    assert torch.allclose(entropy_bonus(torch.tensor([[0.5, 2.0]]), 0.01), torch.tensor([[-0.005, -0.02]]))


def test_gspo_logs_token_level_kl_and_the_sequence_ratio_it_clips():
    """policy/approx_kl is the k3 of the token log-ratios (as for PPO); the sequence ratio GSPO clips is
    policy/seq_ratio_max. The k3 of a sequence's mean log-ratio (logged before) is no KL estimate."""
    old = torch.tensor([[-1.0, -2.0, -3.0], [-1.0, -1.0, -1.0]])
    lr = torch.tensor([[0.3, -0.3, 5.0], [0.1, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    _, m = gspo_loss(old + lr, old, torch.ones(2, 3), mask)
    k3 = lambda x: math.expm1(x) - x  # noqa: E731
    assert m["policy/approx_kl"].item() == pytest.approx((k3(0.3) + k3(-0.3) + k3(0.1)) / 3, rel=1e-5)
    assert m["policy/ratio_max"].item() == pytest.approx(math.exp(0.3), rel=1e-6)
    assert m["policy/seq_ratio_max"].item() == pytest.approx(math.exp(0.1), rel=1e-6)  # row means 0.0 and 0.1


@pytest.mark.parametrize("loss_fn", [ppo_clip_loss, gspo_loss])
def test_an_extreme_log_ratio_does_not_make_the_batch_nan(loss_fn):
    """One token whose old log-prob is -300 (log-ratio 299 > 88.7; GSPO's row mean 99.7) gave r = inf, and its
    tied group's A = 0 made -0 * inf = NaN for the whole loss and gradient. The log-ratio is clamped at 20."""
    lp = torch.full((2, 3), -1.0, requires_grad=True)
    old = torch.full((2, 3), -1.0)
    old[1, 2] = -300.0
    adv = torch.zeros(2, 3)
    adv[0] = 1.0
    mask = torch.ones(2, 3, dtype=torch.bool)
    loss, _ = loss_fn(lp, old, adv, mask)
    total = aggregate(loss, mask, "token-mean")
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(lp.grad).all()
    # row 0 (ratio 1, A = 1): -1 per token, so the token mean is -3/6 and each row-0 token's gradient -1/6
    assert float(total.detach()) == pytest.approx(-0.5)
    torch.testing.assert_close(lp.grad[0], torch.full((3,), -1 / 6))
