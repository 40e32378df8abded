"""aggregate(): each mode vs a slow loop and hand values; micro-batch accumulation == one batch."""

import pytest
import torch

from rlx.objectives import AGG_MODES, LossInputs, ObjectiveConfig, aggregate, build_objective, normalizer_for


def slow_aggregate(loss, mask, mode, max_len=None):
    seqs, tok_sum, tok_count = [], 0.0, 0
    for i in range(loss.shape[0]):
        vals = [float(loss[i, t]) for t in range(loss.shape[1]) if mask[i, t]]
        tok_sum += sum(vals)
        tok_count += len(vals)
        if vals:
            seqs.append((sum(vals), len(vals)))
    if mode == "token-mean":
        return tok_sum / tok_count
    if mode == "seq-mean-token-mean":
        return sum(s / n for s, n in seqs) / len(seqs)
    if mode == "seq-mean-token-sum":
        return sum(s for s, _ in seqs) / len(seqs)
    return sum(s for s, _ in seqs) / (len(seqs) * max_len)


LOSS = torch.tensor([[1.0, 2.0, 3.0, 9.0], [4.0, 5.0, 7.0, 7.0], [6.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
MASK = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]], dtype=torch.bool)


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("token-mean", 21 / 6),  # (1+2+3+4+5+6) / 6 tokens
        ("seq-mean-token-mean", (2 + 4.5 + 6) / 3),  # row means 6/3=2, 9/2=4.5, 6/1=6
        ("seq-mean-token-sum", 21 / 3),  # row sums 6, 9, 6 over 3 sequences
        ("seq-mean-token-sum-norm", 21 / (3 * 4)),  # row sums / (3 sequences * max_len 4)
    ],
)
def test_hand_values(mode, expected):
    got = aggregate(LOSS, MASK, mode, max_len=4)
    assert got.item() == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_matches_slow_loop(mode):
    g = torch.Generator().manual_seed(0)
    loss = torch.randn(7, 9, generator=g, dtype=torch.float64)
    lengths = torch.tensor([9, 1, 4, 0, 7, 3, 2])  # includes an empty row
    mask = torch.arange(9)[None, :] < lengths[:, None]
    got = aggregate(loss, mask, mode, max_len=9).item()
    assert got == pytest.approx(slow_aggregate(loss, mask, mode, max_len=9), abs=1e-12)


def test_masked_inf_is_ignored():
    loss = LOSS.clone()
    loss[0, 3] = float("inf")
    loss[2, 1] = float("nan")
    for mode in AGG_MODES:
        assert torch.isfinite(aggregate(loss, MASK, mode, max_len=4))


def test_norm_mode_needs_max_len():
    with pytest.raises(ValueError, match="max_len"):
        aggregate(LOSS, MASK, "seq-mean-token-sum-norm")


def _grads(mode, chunks, use_global):
    """Grad of a PPO-style loss w.r.t. per-token logits, accumulated over row chunks."""
    g = torch.Generator().manual_seed(1)
    n, t, v = 10, 6, 5
    logits = torch.randn(n, t, v, generator=g, dtype=torch.float64).requires_grad_(True)
    tokens = torch.randint(0, v, (n, t), generator=g)
    lengths = torch.tensor([6, 1, 3, 5, 2, 6, 4, 1, 0, 3])
    mask = torch.arange(t)[None, :] < lengths[:, None]
    old = torch.randn(n, t, generator=g, dtype=torch.float64) * 0.1 - 1.5
    adv = torch.randn(n, t, generator=g, dtype=torch.float64)
    ref = torch.randn(n, t, generator=g, dtype=torch.float64) * 0.1 - 1.5
    cfg = ObjectiveConfig(aggregation=mode, kl_coef=0.1, entropy_coef=0.01, clip_eps_high=0.28)
    obj = build_objective(cfg, max_new_tokens=t)
    norm = normalizer_for(mask)
    start = 0
    for size in chunks:
        rows = slice(start, start + size)
        start += size
        logp_all = torch.log_softmax(logits[rows], -1)
        logp = logp_all.gather(-1, tokens[rows, :, None]).squeeze(-1)
        ent = -(logp_all.exp() * logp_all).sum(-1)
        inputs = LossInputs(logprobs=logp, old_logprobs=old[rows], advantages=adv[rows], response_mask=mask[rows],
                            ref_logprobs=ref[rows], entropies=ent)
        loss, _ = obj.loss(inputs, norm if use_global else normalizer_for(mask[rows]))
        loss.backward()
    assert start == n
    return logits.grad.clone()


@pytest.mark.parametrize("mode", AGG_MODES)
def test_grad_accumulation_equals_one_batch(mode):
    full = _grads(mode, [10], use_global=True)
    micro = _grads(mode, [3, 1, 4, 2], use_global=True)  # uneven micro-batches, one holds the empty row
    assert torch.allclose(full, micro, atol=1e-6, rtol=0)
    assert full.abs().max() > 1e-3  # the test is not vacuous


@pytest.mark.parametrize("mode", ["token-mean", "seq-mean-token-mean"])
def test_local_normalisation_would_differ(mode):
    """Sanity: normalising each micro-batch by its own counts (the classic bug) changes the gradient."""
    full = _grads(mode, [10], use_global=True)
    wrong = _grads(mode, [3, 1, 4, 2], use_global=False)
    assert not torch.allclose(full, wrong, atol=1e-4)
