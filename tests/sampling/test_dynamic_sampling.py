"""Dynamic sampling: zero-variance groups never come back; the refill respects its budget."""

import pytest
import torch

from rlx.sampling import fill_groups, group_rows, informative_groups


def test_informative_groups_hand():
    r = torch.tensor([1, 1, 1, 0, 1, 0, 0.5, 0.5, 0.5000001, 0.2, 0.7, 0.2])
    # spreads: 0, 1, ~1.2e-7 (<= tol 1e-6: counts as constant), 0.5
    assert informative_groups(r, 3).tolist() == [1, 3]
    assert informative_groups(r, 3, tol=0.0).tolist() == [1, 2, 3]
    assert informative_groups(r, 3, tol=0.6).tolist() == [1]
    with pytest.raises(ValueError, match="G=5"):
        informative_groups(r, 5)


def test_group_rows():
    assert group_rows(torch.tensor([2, 0]), 3).tolist() == [6, 7, 8, 0, 1, 2]


def _sampler(seed, groups_per_round, g, p_constant):
    gen = torch.Generator().manual_seed(seed)
    calls = []

    def sample_round(i):
        calls.append(i)
        rewards = torch.rand(groups_per_round, g, generator=gen)  # non-binary rewards
        constant = torch.rand(groups_per_round, generator=gen) < p_constant
        rewards[constant] = rewards[constant, :1]  # some groups all equal
        return rewards.reshape(-1).clone(), rewards.reshape(-1)

    return sample_round, calls


@pytest.mark.parametrize("seed", range(20))
def test_fill_groups_guarantees(seed):
    g, per_round, target = 4, 5, 8
    budget = seed % 4
    sample_round, calls = _sampler(seed, per_round, g, p_constant=0.6)
    res = fill_groups(sample_round, target_groups=target, group_size=g, max_extra_rounds=budget)
    assert len(calls) == res.rounds <= 1 + budget
    assert calls == list(range(res.rounds))
    assert res.num_groups == sum(k.numel() for _, k in res.parts) <= target
    for payload, kept in res.parts:
        rows = payload[group_rows(kept, g)].view(-1, g)
        assert torch.all(rows.max(1).values - rows.min(1).values > 1e-6)  # never a zero-variance group
    if not res.complete:
        assert res.rounds == 1 + budget  # stopped only because the budget ran out
    else:
        assert res.num_groups == target
    assert res.generated_groups == per_round * res.rounds
    assert res.dropped_groups <= res.generated_groups


def test_fill_groups_all_constant_exhausts_budget():
    calls = []

    def sample_round(i):
        calls.append(i)
        return None, torch.ones(8)

    res = fill_groups(sample_round, target_groups=2, group_size=4, max_extra_rounds=3)
    assert len(calls) == 4 and res.num_groups == 0 and not res.complete and res.parts == []
    assert res.dropped_groups == 8


def test_fill_groups_stops_early_and_truncates():
    calls = []

    def sample_round(i):
        calls.append(i)
        return i, torch.tensor([0.0, 1.0] * 3)  # 3 informative groups of 2

    res = fill_groups(sample_round, target_groups=2, group_size=2, max_extra_rounds=5)
    assert calls == [0] and res.complete and res.parts[0][1].tolist() == [0, 1]


def test_fill_groups_bad_args():
    with pytest.raises(ValueError, match="max_extra_rounds"):
        fill_groups(lambda i: (None, torch.ones(2)), target_groups=1, group_size=2, max_extra_rounds=-1)
