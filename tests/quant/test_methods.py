import itertools
import math

import numpy as np
import pytest
import torch

from rlx.config import ConfigError
from rlx.quant.config import GPTQConfig
from rlx.quant.core import IntSpec, int_quantize
from rlx.quant.gptq import GPTQError, HessianAccumulator, gptq_weight
from rlx.quant.lqlora import allocate_bits, lq_decompose
from rlx.quant.qllm import disassemble_assemble
from rlx.quant.quantlrm import channel_importance
from rlx.quant.quest import _quest_forward, gaussian_mse_alpha, quest_fake
from rlx.quant.rsq import token_weights


def _correlated(n=2048, d=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 8, generator=g)
    mix = torch.randn(8, d, generator=g)
    return z @ mix + 0.05 * torch.randn(n, d, generator=g)


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("group", [0, 16])
def test_gptq_beats_rtn_on_correlated_inputs(act_order, group):
    X = _correlated()
    W = torch.randn(32, 64, generator=torch.Generator().manual_seed(1))
    acc = HessianAccumulator(64)
    acc.add(X)
    spec = IntSpec(bits=3, granularity="group" if group else "channel", group_size=group or 128)
    qt, _ = gptq_weight(W, acc.hessian(), spec, GPTQConfig(act_order=act_order, block_size=16))
    err_gptq = (X @ (W - qt.dequantize()).T).pow(2).mean()
    err_rtn = (X @ (W - int_quantize(W, spec).dequantize()).T).pow(2).mean()
    assert err_gptq < 0.5 * err_rtn
    assert qt.codes.max() <= 7


def test_gptq_lazy_blocks_match_unblocked():
    X = _correlated(512, 32)
    W = torch.randn(8, 32, generator=torch.Generator().manual_seed(2))
    acc = HessianAccumulator(32)
    acc.add(X)
    spec = IntSpec(bits=4, granularity="group", group_size=8)
    a, _ = gptq_weight(W, acc.hessian(), spec, GPTQConfig(block_size=1))
    b, _ = gptq_weight(W, acc.hessian(), spec, GPTQConfig(block_size=32))
    assert torch.allclose(a.dequantize(), b.dequantize(), atol=1e-5)


def test_gptq_non_pd_hessian_fallback_and_error():
    H = -torch.eye(4)  # negative definite: diag mean -1 -> lambda = -0.01 -> first tries fail
    W = torch.randn(2, 4)
    with pytest.raises(GPTQError, match="not positive definite"):
        gptq_weight(W, H, IntSpec(bits=4, granularity="channel"), GPTQConfig(max_retries=1))
    # rank-1 Hessian (one calibration token) is fixed by damping on the first try
    x = torch.randn(1, 4)
    qt, info = gptq_weight(W, 2 * x.T @ x, IntSpec(bits=4, granularity="channel"), GPTQConfig())
    assert info["damp_lambda"] > 0 and torch.isfinite(qt.dequantize()).all()


def test_gptq_dead_columns_zeroed():
    X = _correlated(256, 8)
    X[:, 3] = 0
    acc = HessianAccumulator(8)
    acc.add(X)
    qt, _ = gptq_weight(torch.randn(4, 8), acc.hessian(), IntSpec(bits=4, granularity="channel"))
    assert qt.dequantize()[:, 3].abs().max() <= qt.scale.max() / 2 + 1e-6


def test_quest_alpha_one_bit_is_mean_abs():
    # 1 bit: levels +-alpha; MSE E[(z - alpha sign z)^2] = 1 - 2 alpha E|z| + alpha^2 -> alpha = E|z| = sqrt(2/pi)
    assert gaussian_mse_alpha(1) == pytest.approx(math.sqrt(2 / math.pi), abs=1e-5)
    # more bits -> wider optimal clip
    assert gaussian_mse_alpha(2) < gaussian_mse_alpha(3) < gaussian_mse_alpha(4)


def test_gaussian_grid_mse_closed_form():
    from rlx.quant.quest import _gaussian_grid_mse

    # 1 bit at alpha = sqrt(2/pi): 1 - 2 alpha E|z| + alpha^2 = 1 - 2/pi
    assert _gaussian_grid_mse(math.sqrt(2 / math.pi), 1) == pytest.approx(1 - 2 / math.pi, abs=1e-12)
    # 2 bits, alpha 1.5 (levels -1.5, -0.5, 0.5, 1.5): scipy quadrature over the 4 cells gives 0.1188535568463895
    assert _gaussian_grid_mse(1.5, 2) == pytest.approx(0.1188535568463895, abs=1e-10)


def test_quest_trust_mask():
    # one row: rms sigma of [0.1, -0.1, 0.1, 10] = sqrt((0.03 + 100) / 4) = 5.0015; 1 bit: amax = 0.798 sigma = 3.99
    x = torch.tensor([[0.1, -0.1, 0.1, 10.0]], requires_grad=True)
    x_hat, mask = _quest_forward(x.detach(), 1, 1.0)
    sigma = math.sqrt((3 * 0.01 + 100) / 4)
    amax = math.sqrt(2 / math.pi) * sigma
    assert x_hat[0].tolist() == pytest.approx([amax, -amax, amax, amax], rel=1e-4)
    # step = 2 amax; trust radius = amax; |0.1 - amax| < amax (trusted); |10 - amax| > amax (masked)
    assert mask.tolist() == [[1.0, 1.0, 1.0, 0.0]]
    quest_fake(x, 1, 1.0).sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 1.0, 0.0]]
    # a tighter trust radius masks more
    _, m2 = _quest_forward(x.detach(), 1, 0.01)
    assert m2.sum() == 0


def test_ilp_meets_budget_and_matches_brute_force():
    rng = np.random.default_rng(0)
    errors = rng.random((4, 3)) * np.array([8.0, 2.0, 0.5])  # more bits -> less error
    costs = np.array([[2.0, 4.0, 8.0]] * 4) * np.array([[1], [2], [1], [3]])
    budget = 30.0
    choice = allocate_bits(errors, costs, budget)
    used = costs[np.arange(4), choice].sum()
    assert used <= budget
    best = min((sum(errors[i, c[i]] for i in range(4)), c) for c in itertools.product(range(3), repeat=4)
               if sum(costs[i, c[i]] for i in range(4)) <= budget)
    assert errors[np.arange(4), choice].sum() == pytest.approx(best[0], abs=1e-9)
    with pytest.raises(ConfigError, match="budget"):
        allocate_bits(errors, costs, 5.0)


def test_lqlora_error_decreases_and_beats_plain_quant():
    torch.manual_seed(0)
    W = torch.randn(64, 8) @ torch.randn(8, 64) + 0.1 * torch.randn(64, 64)  # low rank + noise
    spec = IntSpec(bits=2, granularity="group", group_size=16)
    qt, A, B, errors = lq_decompose(W, 8, spec, 6)
    assert errors[-1] < errors[0]
    rec = qt.dequantize() + B @ A
    assert float(torch.linalg.matrix_norm(W - rec)) == pytest.approx(min(errors), rel=1e-5)
    plain = float(torch.linalg.matrix_norm(W - int_quantize(W, spec).dequantize()))
    assert min(errors) < 0.8 * plain  # measured ~0.71 on this seed


def test_qllm_disassembly_is_exact_and_shrinks_range():
    torch.manual_seed(0)
    W = torch.randn(5, 4)
    # channel 2 is an outlier (max 20 vs median 1 -> 20 / (2 * 1) = 10 -> capped split 4)
    ch_max = torch.tensor([1.0, 1.0, 20.0, 1.0])
    W[:, 0] = W[:, 1] + 1e-3  # the most similar pair is merged first
    P, Wp, info = disassemble_assemble(W, ch_max, ratio=2.0, max_split=4)
    # 4 sub-channels for ch 2, ch 3 kept, only one disjoint pair (0, 1) among 3 normal channels:
    # 4 + 1 + 1 = 6 channels
    assert P.shape == (4, 6)
    assert info["outliers"] == 1.0 and info["merged_pairs"] == 1.0
    X = torch.randn(10, 4) * torch.tensor([1.0, 1.0, 20.0, 1.0])
    X[:, 0] = X[:, 1]  # equal inputs on the merged pair: merging is then exact too
    # x_a w_a + x_b w_b = x (w_a + w_b) when x_a = x_b: (x_a + x_b) (w_a + w_b)/2 = x (w_a + w_b)
    assert torch.allclose((X @ P) @ Wp.T, X @ W.T, atol=1e-4)
    xp = X @ P
    split_cols = (P[2] != 0).nonzero().flatten()
    assert len(split_cols) == 4
    assert torch.allclose(xp[:, split_cols].abs().amax(), X[:, 2].abs().amax() / 4)


def test_quantlrm_protects_both_ends():
    # deltas per column: col0 all tiny, col1 all mid, col2 all large, col3 has zeros
    d = torch.tensor([[0.01, 0.5, 1.0, 0.0],
                      [0.01, 0.5, 1.0, 0.0],
                      [0.01, 0.5, 1.0, 0.5]])
    imp = channel_importance(d)
    # u = |d| / 1; median of all 12 entries = 0.5 (sorted: 0,0,.01,.01,.01,.5,.5,.5,.5,1,1,1 -> (0.5+0.5)/2)
    # f: col0 (0.49)^2 = 0.2401; col1 0; col2 0.25; col3 mean(0.25, 0.25, 0) * (1 + 2 zeros) = 0.5
    assert imp.tolist() == pytest.approx([0.2401, 0.0, 0.25, 0.5], abs=1e-6)


def test_rsq_token_weights_range():
    a = torch.tensor([[1.0, 3.0, 2.0, 9.0]])
    mask = torch.tensor([[1, 1, 1, 0]])
    w = token_weights(a, mask, 0.1)
    # real tokens 1..3 -> 0.1 + 0.9 * (a - 1) / 2 = [0.1, 1.0, 0.55]; padding 0
    assert w[0].tolist() == pytest.approx([0.1, 1.0, 0.55, 0.0], abs=1e-6)


def _obs_reference(W, H, bits, group, damp=0.01):
    """GPTQ in its original OBS form: explicit inverse Hessian, downdated after every column (float64)."""
    W, H = W.double().clone(), H.double().clone()
    d = H.shape[0]
    H += damp * torch.diag(H).mean() * torch.eye(d, dtype=torch.float64)
    Hinv = torch.linalg.inv(H)
    Q = torch.zeros_like(W)
    qmax = 2**bits - 1
    for j in range(d):
        if j % group == 0:
            blk = W[:, j:j + group]
            lo, hi = blk.min(1).values.clamp(max=0), blk.max(1).values.clamp(min=0)
            s = (hi - lo) / qmax
            z = torch.round(-lo / s)
        Q[:, j] = s * (torch.clamp(torch.round(W[:, j] / s + z), 0, qmax) - z)
        err = (W[:, j] - Q[:, j]) / Hinv[j, j]
        W[:, j + 1:] -= err[:, None] * Hinv[j, j + 1:][None, :]
        Hinv = Hinv - Hinv[:, j:j + 1] @ Hinv[j:j + 1, :] / Hinv[j, j]
    return Q


def test_gptq_matches_slow_obs_reference():
    X = _correlated(1024, 32, seed=3)
    W = torch.randn(6, 32, generator=torch.Generator().manual_seed(4))
    acc = HessianAccumulator(32)
    acc.add(X)
    H = acc.hessian()
    qt, _ = gptq_weight(W, H, IntSpec(bits=3, granularity="group", group_size=8), GPTQConfig(block_size=8))
    ref = _obs_reference(W, H, 3, 8)
    # same codes: the two forms are algebraically identical (Cholesky rows == downdated inverse rows)
    assert torch.allclose(qt.dequantize().double(), ref, atol=1e-5)


def test_rsq_attention_concentration_ignores_padding_queries(base_model_dir):
    """A sequence's token importances must not change when it is padded to a longer one's length
    (padding query rows attend to the real tokens; before the fix they inflated every score)."""
    from rlx.models import load_pretrained
    from rlx.quant.rsq import attention_concentration

    model, tok = load_pretrained(base_model_dir)
    enc = tok(["12+34=46", "7*8=56 and 9*9=81"], padding=True, return_tensors="pt", padding_side="right")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    n = int(mask[0].sum())
    assert n < ids.shape[1]  # the first sequence is padded
    padded = attention_concentration(model, ids, mask)[0, :n]
    alone = attention_concentration(model, ids[:1, :n], mask[:1, :n])[0]
    torch.testing.assert_close(padded, alone, rtol=0, atol=1e-5)
    assert float(padded[0]) > 1.0  # the first token collects attention from every later query
