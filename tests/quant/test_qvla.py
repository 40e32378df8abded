"""QVLA (paper qvla): per-channel quantization, action sensitivity by hand, the budgeted allocation."""

import pytest
import torch
from torch import nn

from rlx.quant.qvla import (allocate_bits, apply_allocation, average_bits, channel_sensitivity, quantize_row,
                            weight_error)


def test_quantize_row_hand_values():
    row = torch.tensor([0.0, 1.0, 2.0, 3.0])
    torch.testing.assert_close(quantize_row(row, 2), row)  # scale 1, zero 0: exact
    torch.testing.assert_close(quantize_row(row, 1), torch.tensor([0.0, 0.0, 3.0, 3.0]))  # grid {0, 3}
    assert torch.equal(quantize_row(row, 0), torch.zeros(4))


def _identity_layer():
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        lin.bias.zero_()
    return lin


def test_channel_sensitivity_hand_values_and_weights_restored():
    lin = _identity_layer()
    x = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])  # outputs [[1, 2], [-1, 2]]
    s = channel_sensitivity({"l": lin}, lambda: lin(x), [0, 8])["l"]
    # pruning channel 0 changes outputs (+-1, 0) -> mean square 0.5; channel 1 changes (0, -2) twice -> 2
    torch.testing.assert_close(s[:, 0], torch.tensor([0.5, 2.0]))
    assert float(s[:, 1].max()) < 1e-4  # 8 bits barely moves anything
    torch.testing.assert_close(lin.weight, torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    w = weight_error({"l": lin}, [0, 8])["l"]
    torch.testing.assert_close(w[:, 0], torch.tensor([1.0, 4.0]))


def test_allocation_by_hand():
    # channel 0 matters (10 -> 1 -> 0), channel 1 hardly (5 -> 4.9 -> 4.8); 1 weight each, average budget 4
    table = {"l": torch.tensor([[10.0, 1.0, 0.0], [5.0, 4.9, 4.8]])}
    alloc = allocate_bits(table, {"l": 1}, [0, 4, 8], budget=4.0)
    assert alloc == {"l": [8, 0]}  # all bits to the sensitive channel; the other is pruned
    assert average_bits(alloc, {"l": 1}) == 4.0
    assert allocate_bits(table, {"l": 1}, [0, 4, 8], budget=8.0) == {"l": [8, 8]}
    # the budget is spent even on a channel whose measured sensitivity does not drop
    flat = {"l": torch.tensor([[10.0, 1.0, 0.0], [5.0, 5.0, 5.0]])}
    assert allocate_bits(flat, {"l": 1}, [0, 4, 8], budget=6.0) == {"l": [8, 4]}
    with pytest.raises(ValueError, match="below"):
        allocate_bits(table, {"l": 1}, [2, 4], budget=1.0)


def test_allocation_respects_the_budget_with_unequal_channel_sizes():
    g = torch.Generator().manual_seed(0)
    table = {"a": torch.rand(6, 4, generator=g).sort(dim=1, descending=True).values,
             "b": torch.rand(3, 4, generator=g).sort(dim=1, descending=True).values}
    sizes = {"a": 4, "b": 10}
    for budget in (2.0, 3.0, 5.5):
        alloc = allocate_bits(table, sizes, [0, 2, 4, 8], budget)
        assert budget - 10 * 4 / 54 <= average_bits(alloc, sizes) <= budget + 1e-9  # within the largest upgrade


def test_apply_allocation_prunes_and_quantizes():
    lin = _identity_layer()
    with torch.no_grad():
        lin.bias.copy_(torch.tensor([0.5, 0.5]))
    apply_allocation({"l": lin}, {"l": [0, 8]})
    assert torch.equal(lin.weight[0], torch.zeros(2)) and float(lin.bias[0]) == 0.0
    torch.testing.assert_close(lin.weight[1], torch.tensor([0.0, 2.0]), atol=1e-2, rtol=0)


@pytest.mark.parametrize("choices", [[], [0, 2, 2, 4], [4, 9], [4, 2]])
def test_bad_width_choices_are_refused(choices):
    """A duplicate width made an upgrade cost 0 (ZeroDivisionError); 9 bits was allocated and failed later."""
    from rlx.quant.qvla import allocate_bits

    with pytest.raises(ValueError, match="strictly ascending widths in 0..8"):
        allocate_bits({"a": torch.ones(2, len(choices) or 1)}, {"a": 4}, choices, 3.0)
