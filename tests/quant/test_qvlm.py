"""Q-VLM block partition (paper qvlm): entropy, partitions by hand, and a search that can only help."""

import math

import pytest
import torch

from rlx.models import ModelConfig, load_policy
from rlx.quant import qvlm
from rlx.quant.core import IntSpec, fake_int


def test_value_entropy_by_hand():
    assert qvlm.value_entropy(torch.tensor([0.0, 1.0]), bins=2) == pytest.approx(math.log(2))
    assert qvlm.value_entropy(torch.tensor([0.0, 0.0, 0.0, 1.0]), bins=2) == pytest.approx(
        -(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))


def test_partitions_by_hand():
    assert qvlm.entropy_partition([3.0, 1.0, 2.0, 0.5], 2) == [[0, 1], [2, 3]]  # last unit is never a cut
    assert qvlm.entropy_partition([3.0, 1.0, 2.0, 0.5], 3) == [[0, 1], [2], [3]]
    assert qvlm.entropy_partition([1.0, 1.0, 1.0], 1) == [[0, 1, 2]]
    assert qvlm.entropy_partition([1.0, 1.0, 1.0], 3) == [[0], [1], [2]]
    parts = qvlm.all_partitions(4)
    assert len(parts) == 8 and [[0], [1], [2], [3]] in parts and [[0, 1, 2, 3]] in parts
    assert all(sum(parts_, []) == [0, 1, 2, 3] for parts_ in parts)
    with pytest.raises(ValueError, match="blocks"):
        qvlm.entropy_partition([1.0, 2.0], 3)


def test_search_never_does_worse_than_plain_rtn(tmp_path):
    torch.manual_seed(0)
    model, _ = load_policy(ModelConfig(tiny={"hidden_size": 32, "num_layers": 2, "intermediate_size": 64,
                                             "num_heads": 2, "num_kv_heads": 2}), seed=0)
    model.eval()
    ids = torch.randint(3, 60, (8, 12))
    mask = torch.ones_like(ids)
    ref = qvlm._hidden(model, ids, mask)
    plain = {n: p.detach().clone() for n, p in model.named_parameters()}
    units = qvlm.decoder_units(model)
    with torch.no_grad():
        for u in units:
            for lin in u.modules():
                if isinstance(lin, torch.nn.Linear):
                    lin.weight.copy_(fake_int(lin.weight, IntSpec(bits=2, granularity="channel")))
    rtn_err = float((qvlm._hidden(model, ids, mask)[-1] - ref[-1]).square().mean())
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(plain[n])
    out = qvlm.search_partition(model, [[0, 1]], ids, mask, bits=2, clips=(1.0, 0.8, 0.6))
    assert out["final_error"] <= rtn_err + 1e-9
    assert set(out["clips"]) == {f"layers.{u}.{n}" for u in (0, 1) for n, m in units[u].named_modules()
                                 if isinstance(m, torch.nn.Linear)}
    assert out["evaluations"] == 1 + 2 * len(out["clips"])  # plain start, then two other clips per layer
    for u in units:  # every decoder Linear now holds 2-bit values: at most 4 distinct per row
        for lin in u.modules():
            if isinstance(lin, torch.nn.Linear):
                assert max(len(torch.unique(r)) for r in lin.weight) <= 4


@pytest.mark.parametrize("partition", [[], [[0]], [[0], [0, 1]], [[1], [0]], [[0, 1], []]])
def test_a_partition_must_cover_every_layer_once_in_order(partition):
    """[[0]] left layer 1 in full precision; [[0], [0, 1]] quantized layer 0 twice; [] quantized nothing."""
    model, _ = load_policy(ModelConfig(tiny={"hidden_size": 32, "num_layers": 2, "intermediate_size": 64,
                                             "num_heads": 2, "num_kv_heads": 2}), seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    ids = torch.randint(3, 60, (2, 6))
    with pytest.raises(ValueError, match="cover the 2 decoder layers once each"):
        qvlm.search_partition(model, partition, ids, torch.ones_like(ids), bits=2)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
