"""Sequence-parallel prefill (paper longvideo, MR-SP stage 2): chunk bounds by hand, and the logits of a
2-process gloo run equal the single-process prefill exactly (and the HF forward to 1e-5)."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from rlx.distributed.seq_parallel import sequence_parallel_logits, shard_bounds


def test_shard_bounds_by_hand():
    # P = 10 over 3 ranks: C = ceil(10 / 3) = 4 -> [0, 4), [4, 8), [8, 10)
    assert [shard_bounds(10, r, 3) for r in range(3)] == [(0, 4), (4, 8), (8, 10)]
    # P = 5 over 4 ranks: C = 2 -> [0, 2), [2, 4), [4, 5), and the last rank owns nothing: [5, 5)
    assert [shard_bounds(5, r, 4) for r in range(4)] == [(0, 2), (2, 4), (4, 5), (5, 5)]
    assert shard_bounds(7, 0, 1) == (0, 7)


def _model():
    from rlx.models import ModelConfig, TinyModelConfig, load_policy

    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                           intermediate_size=64, max_position=128))
    return load_policy(cfg, seed=0)[0].eval()


def _ids():
    return torch.randint(4, 100, (2, 37), generator=torch.Generator().manual_seed(0))  # 37: chunks 19 + 18


def _worker(rank: int, world: int, init: str, out: str, model, ids) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        logits = sequence_parallel_logits(model, ids)
        if rank == 0:
            torch.save(logits, out)
    finally:
        dist.destroy_process_group()


def test_two_process_prefill_equals_the_single_process_forward(tmp_path):
    out = tmp_path / "logits.pt"
    model, ids = _model(), _ids()
    # fork: the workers inherit the imported modules and the model (a fresh interpreter would spend
    # most of the test importing transformers)
    mp.start_processes(_worker, args=(2, f"file://{tmp_path / 'store'}", str(out), model, ids), nprocs=2,
                       join=True, start_method="fork")
    sp = torch.load(out)
    with torch.no_grad():
        ref = model(input_ids=ids).logits  # [2, 37, V], the Hugging Face forward in one process
    assert sp.shape == ref.shape
    assert (sp - ref).abs().max().item() < 1e-5  # the HF forward: other kernels, equal up to rounding
    # the single-process prefill (the same function with one rank, no split) gives exactly the same
    # logits: every op is row-wise except attention, whose rows see the same keys in the same order
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store1'}", rank=0, world_size=1)
    try:
        one = sequence_parallel_logits(model, ids)
    finally:
        dist.destroy_process_group()
    assert torch.equal(sp, one)
