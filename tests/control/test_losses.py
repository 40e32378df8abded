"""Value-learning math: Q(lambda), HL-Gauss / two-hot projections, expectile, Huber, quantile."""

import numpy as np
import pytest
import torch
from scipy.stats import norm

from rlx.control.losses import (categorical_mean, expectile_loss, hl_gauss_probs, huber, q_lambda_targets,
                                quantile_target, two_hot_probs)


def _col(*v):
    return torch.tensor(v, dtype=torch.float64).unsqueeze(1)  # [T, 1]


def test_q_lambda_hand_values():
    # gamma 0.9, lambda 0.5, r = 1, 2, 3, v_tp1 = 10, 20, 30, no episode end:
    # G2 = 3 + 0.9*30 = 30
    # G1 = 2 + 0.9*(20 + 0.5*(30 - 20)) = 2 + 0.9*25 = 24.5
    # G0 = 1 + 0.9*(10 + 0.5*(24.5 - 10)) = 1 + 0.9*17.25 = 16.525
    r, v = _col(1, 2, 3), _col(10, 20, 30)
    g = q_lambda_targets(r, 0.9 * _col(1, 1, 1), v, _col(1, 1, 1), 0.5)
    torch.testing.assert_close(g, _col(16.525, 24.5, 30.0), rtol=0, atol=1e-12)
    # truncated at t=1 (discount stays 0.9, continue 0): G1 = 2 + 0.9*20 = 20; G0 = 1 + 0.9*(10 + 0.5*10) = 14.5
    g = q_lambda_targets(r, 0.9 * _col(1, 1, 1), v, _col(1, 0, 1), 0.5)
    torch.testing.assert_close(g[:2], _col(14.5, 20.0), rtol=0, atol=1e-12)
    # terminated at t=1 (discount 0): G1 = 2; G0 = 1 + 0.9*(10 + 0.5*(2 - 10)) = 1 + 0.9*6 = 6.4
    g = q_lambda_targets(r, _col(0.9, 0.0, 0.9), v, _col(1, 0, 1), 0.5)
    torch.testing.assert_close(g[:2], _col(6.4, 2.0), rtol=0, atol=1e-12)
    # lambda = 0 is one-step Q-learning: G_t = r_t + discount_t * v_{t+1}
    g = q_lambda_targets(r, 0.9 * _col(1, 1, 1), v, _col(1, 1, 1), 0.0)
    torch.testing.assert_close(g, r + 0.9 * v, rtol=0, atol=1e-12)


def _slow_forward_view(r, disc, v, cont, lam):
    """Forward view: G_t = sum_n (1-lam) lam^(n-1) G_t^(n) over n < H, plus lam^(H-1) G_t^(H),
    where H is the number of steps to the end of the episode segment (or of the rollout) and
    G_t^(n) = r_t + disc_t r_{t+1} + ... + (prod disc) v_{t+n-1}."""
    T, N = r.shape
    out = np.zeros((T, N))
    for i in range(N):
        for t in range(T):
            end = t
            while end < T - 1 and cont[end, i] == 1:
                end += 1
            H = end - t + 1
            total = 0.0
            for n in range(1, H + 1):
                ret, scale = 0.0, 1.0
                for k in range(n):
                    ret += scale * r[t + k, i]
                    scale *= disc[t + k, i]
                ret += scale * v[t + n - 1, i]
                w = (1 - lam) * lam ** (n - 1) if n < H else lam ** (n - 1)
                total += w * ret
            out[t, i] = total
    return out


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.65, 1.0])
def test_q_lambda_matches_slow_forward_view(lam):
    g = torch.Generator().manual_seed(0)
    T, N = 9, 5
    r = torch.randn(T, N, generator=g, dtype=torch.float64)
    v = torch.randn(T, N, generator=g, dtype=torch.float64)
    done = (torch.rand(T, N, generator=g) < 0.25).double()
    term = done * (torch.rand(T, N, generator=g) < 0.5).double()
    disc = 0.97 * (1 - term)
    fast = q_lambda_targets(r, disc, v, 1 - done, lam)
    slow = _slow_forward_view(r.numpy(), disc.numpy(), v.numpy(), (1 - done).numpy(), lam)
    np.testing.assert_allclose(fast.numpy(), slow, rtol=0, atol=1e-10)


def test_hl_gauss_sums_to_one_and_recovers_target():
    edges = torch.linspace(0.0, 11.0, 12, dtype=torch.float64)  # 11 bins of width 1, centres 0.5 .. 10.5
    centers = (edges[1:] + edges[:-1]) / 2
    sigma = 0.75
    y = torch.tensor([5.5, 5.3, 4.0, 6.71], dtype=torch.float64)  # all >= 5 sigma inside the support
    p = hl_gauss_probs(y, edges, sigma)
    torch.testing.assert_close(p.sum(-1), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-12)
    # 5.5 is the middle bin's centre and the support is symmetric about it, so the mean is exact
    assert abs(float((p[0] * centers).sum()) - 5.5) < 1e-9
    # elsewhere the discretisation error of a Gaussian on unit bins with sigma 0.75 is below
    # exp(-2 pi^2 sigma^2) / pi = exp(-11.1) / pi ~ 4.8e-6 (first Fourier term of the bin-centre
    # sawtooth); the mass cut at the edges (>= 5 sigma away, < 3e-7) adds less than 1e-6
    torch.testing.assert_close((p * centers).sum(-1), y, rtol=0, atol=1e-5)
    # one bin by hand: y = 5.5, bin [5, 6] holds Phi(0.5/0.75) - Phi(-0.5/0.75) = 0.4950149...
    expected = (norm.cdf(0.5 / 0.75) - norm.cdf(-0.5 / 0.75)) / (norm.cdf(5.5 / 0.75) - norm.cdf(-5.5 / 0.75))
    assert abs(float(p[0, 5]) - expected) < 1e-12


def test_hl_gauss_clips_targets_outside_the_support():
    """Float32, the default support (0..100, 51 bins, sigma 0.75 x width): a target 10 past an edge used to
    give an all-zero row (zero loss, zero gradient); it now gets the edge target's histogram."""
    edges = torch.linspace(0.0, 100.0, 52)
    sigma = 0.75 * 100.0 / 51
    p = hl_gauss_probs(torch.tensor([110.0, -10.0, 100.0, 0.0]), edges, sigma)
    torch.testing.assert_close(p.sum(-1), torch.ones(4), rtol=0, atol=1e-5)
    torch.testing.assert_close(p[0], p[2], rtol=0, atol=0)  # 110 -> 100
    torch.testing.assert_close(p[1], p[3], rtol=0, atol=0)  # -10 -> 0
    assert p[0, -1] > 0.4 and p[1, 0] > 0.4  # the mass sits at the edge bins


def test_two_hot_exact_mean_and_clipping():
    centers = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    p = two_hot_probs(torch.tensor([1.25, 5.0, -1.0, 3.0], dtype=torch.float64), centers)
    # 1.25 sits a quarter of the way from 1 to 2: 0.75 on bin 1, 0.25 on bin 2
    torch.testing.assert_close(p[0], torch.tensor([0, 0.75, 0.25, 0], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(p[1], torch.tensor([0, 0, 0, 1.0], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(p[2], torch.tensor([1.0, 0, 0, 0], dtype=torch.float64), rtol=0, atol=1e-12)
    torch.testing.assert_close(p[3], torch.tensor([0, 0, 0, 1.0], dtype=torch.float64), rtol=0, atol=1e-12)
    # categorical_mean of log-probs gives back the (clipped) targets
    m = categorical_mean(torch.log(p.clamp_min(1e-300)), centers)
    torch.testing.assert_close(m, torch.tensor([1.25, 3.0, 0.0, 3.0], dtype=torch.float64), rtol=0, atol=1e-12)


def test_expectile_loss_hand_value():
    # u = [-2, 1], tau = 0.7: weights [0.3, 0.7]; loss = (0.3*4 + 0.7*1) / 2 = 0.95
    loss, _ = expectile_loss(torch.tensor([-2.0, 1.0], dtype=torch.float64), 0.7)
    assert abs(float(loss) - 0.95) < 1e-12
    # tau = 0.5 is half the MSE: (0.5*4 + 0.5*1) / 2 = 1.25
    loss, _ = expectile_loss(torch.tensor([-2.0, 1.0], dtype=torch.float64), 0.5)
    assert abs(float(loss) - 1.25) < 1e-12


def test_expectile_minimiser_is_the_expectile():
    # for samples {0, 10} and tau 0.9, the tau-expectile m solves 0.9 (10 - m) = 0.1 m -> m = 9
    m = torch.tensor(5.0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([m], lr=0.5)
    for _ in range(500):
        loss, _ = expectile_loss(torch.tensor([0.0, 10.0], dtype=torch.float64) - m, 0.9)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert abs(float(m.detach()) - 9.0) < 1e-6


def test_huber_and_quantile_target():
    # delta 1: u = 0.5 -> 0.5*0.25/1 = 0.125 ; u = -3 -> 3 - 0.5 = 2.5 ; delta 2, u = 1 -> 0.5*1/2 = 0.25
    torch.testing.assert_close(huber(torch.tensor([0.5, -3.0]), 1.0), torch.tensor([0.125, 2.5]), rtol=0, atol=1e-7)
    assert abs(float(huber(torch.tensor(1.0), 2.0)) - 0.25) < 1e-7
    # ensemble of 4 values [1, 2, 3, 10]; alpha 0.25 -> position 0.25*3 = 0.75 -> 1 + 0.75*(2-1) = 1.75
    vals = torch.tensor([[3.0], [1.0], [10.0], [2.0]])
    torch.testing.assert_close(quantile_target(vals, 0.25), torch.tensor([1.75]), rtol=0, atol=1e-7)
    torch.testing.assert_close(quantile_target(vals, 0.0), torch.tensor([1.0]), rtol=0, atol=1e-7)
    torch.testing.assert_close(quantile_target(vals, 0.5), torch.tensor([2.5]), rtol=0, atol=1e-7)


def test_soft_q_lambda_trace_carries_the_entropy_of_the_followed_action():
    """Hand values: T = 2, one env, no episode end. G_1 = r_1 + g v_2; G_0 = r_0 + g [v_1 + lam (G_1 + b_1 - v_1)]."""
    from rlx.control.losses import q_lambda_targets

    r, v, b = torch.tensor([[1.0], [2.0]]), torch.tensor([[3.0], [5.0]]), torch.tensor([[0.7], [0.4]])
    disc, cont = torch.full((2, 1), 0.9), torch.ones(2, 1)
    g1 = 2.0 + 0.9 * 5.0
    out = q_lambda_targets(r, disc, v, cont, 0.5, b)
    assert out[1, 0].item() == pytest.approx(g1)
    assert out[0, 0].item() == pytest.approx(1.0 + 0.9 * (3.0 + 0.5 * (g1 + 0.4 - 3.0)))
    assert q_lambda_targets(r, disc, v, cont, 0.5)[0, 0].item() == pytest.approx(1.0 + 0.9 * (3.0 + 0.5 * (g1 - 3.0)))


def test_soft_q_lambda_reaches_the_soft_fixed_point():
    """A one-state MDP that never ends, reward 0, two actions played from softmax(Q / alpha): the soft Q is
    gamma alpha log 2 / (1 - gamma) = 6.238. Without the trace's entropy term Q(lambda) stopped at
    (1 - lambda) of that (2.18 at lambda 0.65): the adversary of paper qarl was under-regularised."""
    import math

    from rlx.control.online import Rollout, rollout_targets
    from rlx.robust.qarl import soft_value

    T, N, gamma, lam, alpha = 32, 64, 0.9, 0.65, 1.0
    gen = torch.Generator().manual_seed(0)
    q = torch.zeros(2)
    for _ in range(200):
        acts = torch.randint(0, 2, (T, N), generator=gen)
        z = torch.zeros(T, N)
        ro = Rollout(torch.zeros(T, N, 1), acts, z, z, z, torch.zeros(T, N, 1))
        bonus = -alpha * torch.log_softmax(q / alpha, -1)[acts]
        tgt = rollout_targets(ro, lambda o: soft_value(q.expand(o.shape[0], 2), alpha), gamma, lam, bonus)
        q = torch.stack([tgt[acts == a].mean() for a in range(2)])
    assert q.tolist() == pytest.approx([gamma * alpha * math.log(2) / (1 - gamma)] * 2, rel=1e-3)
