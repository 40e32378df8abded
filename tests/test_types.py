"""Typed batches: RolloutBatch.to moves every tensor field and keeps the rest."""

import torch

from rlx.types import RolloutBatch


def _batch(with_completion_mask: bool) -> RolloutBatch:
    n, t = 4, 3
    return RolloutBatch(prompt_ids=torch.zeros(n, 2, dtype=torch.long), prompt_mask=torch.ones(n, 2, dtype=torch.bool),
                        completion_ids=torch.ones(n, t, dtype=torch.long), response_mask=torch.ones(n, t, dtype=torch.bool),
                        rollout_logprobs=torch.zeros(n, t), rewards=torch.arange(4.0), correct=torch.ones(n, dtype=torch.bool),
                        group_index=torch.tensor([0, 0, 1, 1]), group_size=2, texts=("a", "b", "c", "d"),
                        completion_mask=torch.ones(n, t, dtype=torch.bool) if with_completion_mask else None)


def test_to_moves_every_tensor_even_when_some_are_already_there():
    for cm in (True, False):
        b = _batch(cm)
        assert all(getattr(b.to("cpu"), k) is v for k, v in vars(b).items())  # nothing copied
        moved = b.to("meta")  # a real second device on any machine
        tensors = [v for v in vars(moved).values() if isinstance(v, torch.Tensor)]
        assert len(tensors) == (9 if cm else 8) and all(v.device.type == "meta" for v in tensors)
        assert moved.texts == b.texts and moved.group_size == 2 and (moved.completion_mask is None) == (not cm)
    # the engine's tensors on the device, rewards / group index still on the CPU (with model.device cuda:0 the
    # move was skipped because completion_ids was already there, and d3s indexed CPU rewards with GPU rows)
    from dataclasses import replace

    mixed = replace(moved, rewards=torch.arange(4.0), group_index=torch.tensor([0, 0, 1, 1]))
    again = mixed.to("meta")
    assert again.rewards.device.type == "meta" and again.group_index.device.type == "meta"
