"""take_rows / concat_rollouts: refill pieces of different widths join into one valid batch."""

import torch

from rlx.sampling import concat_rollouts, fill_groups, group_rows, take_rows
from rlx.types import RolloutBatch


def _batch(n_groups, g, p, t, reward_rows, seed):
    gen = torch.Generator().manual_seed(seed)
    n = n_groups * g
    return RolloutBatch(
        prompt_ids=torch.randint(4, 50, (n, p), generator=gen),
        prompt_mask=torch.ones(n, p, dtype=torch.bool),
        completion_ids=torch.randint(4, 50, (n, t), generator=gen),
        response_mask=torch.ones(n, t, dtype=torch.bool),
        rollout_logprobs=-torch.rand(n, t, generator=gen),
        rewards=torch.tensor(reward_rows, dtype=torch.float32),
        correct=torch.tensor(reward_rows) > 0.5,
        group_index=torch.arange(n_groups).repeat_interleave(g),
        group_size=g,
        texts=tuple(f"s{seed}-{i}" for i in range(n)),
        finish_reasons=("stop",) * n,
    )


def test_refill_then_concat():
    rounds = [
        _batch(3, 2, 5, 4, [1, 1, 0, 1, 0, 0], seed=0),  # only group 1 is informative
        _batch(2, 2, 7, 6, [0, 1, 1, 0], seed=1),  # both informative
    ]
    res = fill_groups(lambda i: (rounds[i], rounds[i].rewards), target_groups=2, group_size=2, max_extra_rounds=3)
    assert res.rounds == 2 and res.complete
    out = concat_rollouts([take_rows(b, group_rows(k, 2)) for b, k in res.parts], pad_token_id=0)
    assert out.completion_ids.shape == (4, 6) and out.prompt_ids.shape == (4, 7)
    assert out.rewards.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert out.group_index.tolist() == [0, 0, 1, 1]
    assert out.texts == ("s0-2", "s0-3", "s1-0", "s1-1")
    # round-0 rows: prompts left-padded by 2, completions right-padded by 2 (mask False, logprobs 0)
    assert torch.equal(out.prompt_ids[0, 2:], rounds[0].prompt_ids[2]) and torch.all(out.prompt_ids[0, :2] == 0)
    assert not out.prompt_mask[0, :2].any() and out.prompt_mask[0, 2:].all()
    assert not out.response_mask[0, 4:].any() and torch.all(out.rollout_logprobs[0, 4:] == 0)
    assert torch.equal(out.completion_ids[2], rounds[1].completion_ids[0])


def test_take_rows_new_group_size():
    b = _batch(2, 4, 3, 3, [0, 1, 0, 1, 1, 0, 0, 0], seed=2)
    out = take_rows(b, torch.tensor([0, 1, 4, 5]), group_size=2)
    assert out.group_size == 2 and out.group_index.tolist() == [0, 0, 1, 1]
    assert out.rewards.tolist() == [0.0, 1.0, 1.0, 0.0]
