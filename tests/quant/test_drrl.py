"""DR-RL (paper drrl): truncation errors, bounds, FLOPs and reward by hand; the model patch; the policy learns."""

import math

import pytest
import torch

from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer
from rlx.quant import drrl as D


def svd(S):
    return torch.linalg.svd(S)


def test_diagonal_truncation_and_tail_by_hand():
    S = torch.diag(torch.tensor([5.0, 3.0, 2.0, 1.0], dtype=torch.float64))
    U, s, Vh = svd(S)
    torch.testing.assert_close(D.truncate(U, s, Vh, 2), torch.diag(torch.tensor([5.0, 3.0, 0.0, 0.0], dtype=torch.float64)))
    # rank 2 drops 2 and 1: Frobenius sqrt(4 + 1) = sqrt 5, spectral 2
    assert float(D.tail_error(s, 2)) == pytest.approx(math.sqrt(5.0), abs=1e-12)
    assert float(D.tail_error(s, 2, "spectral")) == pytest.approx(2.0, abs=1e-12)
    # rank 0 keeps nothing: sqrt(25 + 9 + 4 + 1) = sqrt 39; rank >= 4 is exact
    torch.testing.assert_close(D.tail_error(s, torch.tensor([0, 4, 9])),
                               torch.tensor([math.sqrt(39.0), 0.0, 0.0], dtype=torch.float64))
    with pytest.raises(ValueError):
        D.tail_error(s, 1, "nuclear")


def test_eckart_young_bound_equals_the_true_error_for_every_rank():
    g = torch.Generator().manual_seed(0)
    S = torch.randn(3, 2, 7, 7, generator=g, dtype=torch.float64)  # [B, H, L, L]
    U, s, Vh = svd(S)
    for r in range(8):
        E = S - D.truncate(U, s, Vh, r)
        torch.testing.assert_close(E.norm(dim=(-2, -1)), D.tail_error(s, r), atol=1e-10, rtol=0)
        torch.testing.assert_close(torch.linalg.matrix_norm(E, ord=2), D.tail_error(s, r, "spectral"), atol=1e-10, rtol=0)
    # moving from rank 2 to 5 is known from the spectrum alone: the squared error drops by s_3^2 + s_4^2 + s_5^2
    drop = D.tail_error(s, 2) ** 2 - D.tail_error(s, 5) ** 2
    torch.testing.assert_close(drop, (s[..., 2:5] ** 2).sum(-1))
    # per-sample ranks broadcast over heads: row 0 keeps 1, row 1 keeps 6
    mixed = D.truncate(U, s, Vh, torch.tensor([1, 6, 3])[:, None])
    torch.testing.assert_close(mixed[1], D.truncate(U[1], s[1], Vh[1], 6))


def test_attention_kl_by_hand_and_causal():
    S = torch.tensor([[0.0, 9.0], [0.0, 0.0]])
    S_r = torch.tensor([[0.0, -9.0], [math.log(3.0), 0.0]])
    # row 0 sees one key: KL 0 whatever the hidden entry. row 1: p = (1/2, 1/2), q = (3/4, 1/4):
    # KL = 1/2 ln(2/3) + 1/2 ln 2 = 1/2 ln(4/3)
    torch.testing.assert_close(D.attention_kl(S, S_r), torch.tensor([0.0, 0.5 * math.log(4.0 / 3.0)]))


def test_kl_bound_holds_for_causal_attention():
    g = torch.Generator().manual_seed(1)
    S = 3.0 * torch.randn(50, 9, 9, generator=g, dtype=torch.float64)
    U, s, Vh = svd(S)
    for r in range(10):
        kl = D.attention_kl(S, D.truncate(U, s, Vh, r)).mean(-1)
        bound = D.kl_bound(s, r, 9)
        assert bool((kl <= bound + 1e-12).all()), r
        assert bool((bound > 0).all()) or r >= 9
    # hand value: s = (4, 2, 1, .5), L = 4, r = 2: sqrt(2/4) * sqrt(1 + .25)
    assert float(D.kl_bound(torch.tensor([4.0, 2.0, 1.0, 0.5]), 2, 4)) == pytest.approx(math.sqrt(0.5 * 1.25))


def test_appended_token_bound_and_weyl_without_a_new_svd():
    g = torch.Generator().manual_seed(2)
    for _ in range(20):
        Q, K = torch.randn(9, 4, generator=g, dtype=torch.float64), torch.randn(9, 4, generator=g, dtype=torch.float64)
        new = Q @ K.T  # S_{t+1} [9, 9]; the old block S_t is new[:8, :8]
        old = torch.zeros_like(new)
        old[:8, :8] = new[:8, :8]
        E = new - old  # the new row and column only
        s_old, s_new = torch.linalg.svdvals(new[:8, :8]), torch.linalg.svdvals(new)
        for r in range(9):
            bound = D.appended_tail_bound(D.tail_error(s_old, r), E.norm())
            assert float(D.tail_error(s_new, r)) <= float(bound) + 1e-10
        lo, hi = D.weyl_interval(torch.cat([s_old, torch.zeros(1, dtype=torch.float64)]), torch.linalg.matrix_norm(E, ord=2))
        assert bool((s_new >= lo - 1e-10).all() and (s_new <= hi + 1e-10).all())
    lo, hi = D.weyl_interval(torch.tensor([3.0, 1.0]), 2.0)
    torch.testing.assert_close(lo, torch.tensor([1.0, 0.0]))  # 1 - 2 clamps at 0
    torch.testing.assert_close(hi, torch.tensor([5.0, 3.0]))


def test_flops_compute_fraction_and_reward_by_hand():
    # L = 10, d_h = 32: dense 2*100*32 = 6400; rank 4 kernel 2*100*4 = 800, factors 4*10*32*4 = 5120 more
    assert D.score_flops(10, 32, None) == 6400
    assert D.score_flops(10, 32, 4) == 800
    assert D.score_flops(10, 32, 4, factors=True) == 5920
    assert D.score_flops(10, 32, 50) == 2000  # capped at min(L, d_h) = 10
    torch.testing.assert_close(D.compute_fraction(10, 32, torch.tensor([4, 10, 32])), torch.tensor([0.4, 1.0, 1.0]))
    torch.testing.assert_close(D.compute_fraction(40, 32, torch.tensor([8])), torch.tensor([0.25]))
    # R = -0.1 - 0.3 * 0.5 = -0.25
    torch.testing.assert_close(D.rank_reward(torch.tensor(0.1), torch.tensor(0.5), 0.3), torch.tensor(-0.25))


def _scores(s):
    s = torch.tensor(s, dtype=torch.float64)
    n = s.shape[-1]
    S = torch.diag(s).expand(1, 1, n, n)
    U, s2, Vh = svd(S)
    return D.LayerScores(0, 1, S, U, s2, Vh, head_dim=32)


def test_bound_greedy_picks_the_cheapest_certified_rank():
    ls = _scores([4.0, 2.0, 1.0, 0.5])  # L = 4; bounds sqrt(1/2) * tail: r=1 1.620, r=2 0.791, r=3 0.354, r=4 0
    ranks = (1, 2, 3, 4)
    assert [int(D.bound_greedy(ranks, e)(ls)[0]) for e in (2.0, 0.8, 0.5, 0.3, 0.0)] == [1, 2, 3, 4, 4]
    assert int(D.bound_greedy((1, 2), 0.1)(ls)[0]) == 2  # none certified: the largest


def test_oracle_maximises_the_true_reward():
    ls = _scores([4.0, 2.0, 1.0, 0.5])
    ranks = (1, 2, 3, 4)
    kl = [float(D.attention_kl(ls.scores, D.truncate(ls.U, ls.s, ls.Vh, r)).mean()) for r in ranks]
    for lam in (0.0, 0.05, 0.3, 100.0):
        R = [-k - lam * min(r, 4) / 4 for k, r in zip(kl, ranks)]
        assert int(D.oracle(ranks, lam)(ls)[0]) == ranks[max(range(4), key=R.__getitem__)]
    assert int(D.oracle(ranks, 100.0)(ls)[0]) == 1


@pytest.fixture(scope="module")
def tiny():
    tok = char_tokenizer()
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=2, num_heads=2, num_kv_heads=1,
                                             intermediate_size=64), tok, seed=0)
    return model.eval(), tok


def test_lowrank_forward_matches_the_model_and_truncates(tiny):
    model, _ = tiny
    ids = torch.randint(4, 90, (3, 7), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(ids).logits
    out, steps = D.lowrank_forward(model, ids, None)
    assert steps == []
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)
    exact, steps = D.lowrank_forward(model, ids, D.static(16))  # rank >= L = 7: exact
    torch.testing.assert_close(exact, ref, atol=1e-4, rtol=0)
    assert [st.layer for st in steps] == [0, 1] and all(float(st.kl.abs().max()) < 1e-5 for st in steps)
    torch.testing.assert_close(steps[0].frac, torch.ones(3))
    low, steps = D.lowrank_forward(model, ids, D.static(1))
    assert float((low - ref).abs().max()) > 1e-4
    torch.testing.assert_close(steps[1].frac, torch.full((3,), 1 / 7))
    assert all(bool((st.kl > 0).all()) for st in steps)


def test_greedy_generate_full_rank_matches_the_exact_model(tiny):
    model, tok = tiny
    prompts = ["12+3=", "7*8=", "45-1="]
    texts, _ = D.greedy_generate(model, tok, prompts, None, max_new_tokens=4)
    again, steps = D.greedy_generate(model, tok, prompts, D.static(32), max_new_tokens=4)
    assert texts == again and len(texts) == 3
    # prompts of 5, 4, 5 tokens run as two length groups; each step recomputes the whole sequence
    lengths = [st.length for st in steps]
    assert lengths[:2] == [4, 4] and set(lengths) <= set(range(4, 9)) and len(lengths) % 2 == 0


@pytest.mark.parametrize("lam, scale, best", [(1.0, 1.0, 1), (0.001, 30.0, 8)])
def test_policy_learns_the_obvious_rank(tiny, lam, scale, best):
    """Small scores and a high compute price: rank 1 wins. Sharp scores (q_proj x 30) and a tiny price:
    the exact rank wins. Starting from ~50/50, REINFORCE must find each."""
    model, _ = tiny
    q = [layer.self_attn.q_proj for layer in model.model.layers]
    saved = [p.weight.detach().clone() for p in q]
    try:
        with torch.no_grad():
            for p in q:
                p.weight.mul_(scale)
        g = torch.Generator().manual_seed(3)
        batches = [torch.randint(4, 90, (32, 8), generator=g)]
        cfg = D.DrrlConfig(ranks=(1, 8), lam=lam, steps=60, batch_size=32, lr=0.05, entropy=0.0, seed=0)
        policy, history = D.train_rank_policy(model, batches, cfg)
        chosen = D.lowrank_forward(model, batches[0], D.PolicySelector(policy, cfg.ranks, sample=False))[1]
        assert all(bool((st.ranks == best).all()) for st in chosen)
        assert sum(history[-10:]) / 10 > sum(history[:10]) / 10
    finally:
        with torch.no_grad():
            for p, w in zip(q, saved):
                p.weight.copy_(w)


def test_config_rejects_bad_ranks():
    with pytest.raises(ValueError, match="ascending"):
        D.DrrlConfig(ranks=(4, 2))
    with pytest.raises(ValueError):
        D.DrrlConfig(lam=-1.0)
