"""Half-precision models train through float32 master weights (train/optim.py: MasterWeights)."""

import torch
from safetensors.torch import load_file

from rlx.cli import main
from rlx.train.optim import MasterWeights, OptimConfig, make_optimizer


def _adam(lr: float) -> OptimConfig:
    return OptimConfig(lr=lr, weight_decay=0.0, grad_clip=0.0, fused=False)


def test_small_steps_accumulate_in_the_masters():
    """bfloat16 spacing at 0.02 is 2^-13 = 1.2e-4: an Adam step of ~1e-6 rounded to no change on the weight
    itself, every time. Through the masters 200 steps move it by 200 x 1e-6 = 2e-4 (to within one spacing)."""
    w = torch.nn.Parameter(torch.full((4,), 0.02, dtype=torch.bfloat16))
    opt, sched = make_optimizer([w], _adam(1e-6), 200)
    assert isinstance(opt, MasterWeights)
    for _ in range(200):
        opt.zero_grad()
        w.grad = torch.ones(4, dtype=torch.bfloat16)
        opt.step()
        sched.step()
    start = float(torch.tensor(0.02, dtype=torch.bfloat16))  # 0.0200195...
    assert abs(float(opt.masters[0][0]) - (start - 200e-6)) < 1e-7
    assert w.dtype == torch.bfloat16 and abs(float(w.detach()[0]) - (start - 200e-6)) <= 2**-13

    plain = torch.nn.Parameter(torch.full((4,), 0.02, dtype=torch.bfloat16))
    adam = torch.optim.AdamW([plain], lr=1e-6, weight_decay=0.0)  # what ran before: the weight never moves
    for _ in range(200):
        plain.grad = torch.ones(4, dtype=torch.bfloat16)
        adam.step()
    assert torch.equal(plain, torch.full((4,), 0.02, dtype=torch.bfloat16))


def test_resume_continues_from_the_masters_exactly():
    def steps(opt, w, first, k):
        for i in range(first, first + k):
            opt.zero_grad()
            w.grad = torch.linspace(-1, 1, 6, dtype=torch.bfloat16) * (i + 1)
            opt.step()

    a = torch.nn.Parameter(torch.linspace(0.1, 0.6, 6).to(torch.bfloat16))
    b = torch.nn.Parameter(a.detach().clone())
    opt_a, _ = make_optimizer([a], _adam(1e-3), 6)
    steps(opt_a, a, 0, 6)
    opt_b, _ = make_optimizer([b], _adam(1e-3), 6)
    steps(opt_b, b, 0, 3)
    state = opt_b.state_dict()
    c = torch.nn.Parameter(b.detach().clone())  # the weights a checkpoint holds (rounded)
    opt_c, _ = make_optimizer([c], _adam(1e-3), 6)
    opt_c.load_state_dict(state)
    steps(opt_c, c, 3, 3)
    assert torch.equal(opt_c.masters[0], opt_a.masters[0]) and torch.equal(c, a)


def test_float32_parameters_are_stepped_as_before():
    w = torch.nn.Parameter(torch.ones(3))
    opt, _ = make_optimizer([w], _adam(0.1), 1)
    assert isinstance(opt, torch.optim.AdamW)


def test_bfloat16_sft_changes_the_weights(tmp_path):
    """20 SFT steps at lr 1e-5 from the shipped base in bfloat16: 6.8% of the weights had changed before (the
    same share as after 5 steps: the rest were stuck), 32% with the masters (their moves of ~2e-4 pass the
    bfloat16 spacing of the larger weights only gradually)."""
    out = tmp_path / "bf16"
    assert main(["sft", "recipes/arith_sft_continue.yaml", "train.steps=20", "eval.n=4", "eval.every=0",
                 "train.checkpoint_every=0", "model.dtype=bfloat16", "--out", str(out)]) == 0
    base = load_file("assets/arith-base/model.safetensors")
    after = load_file(str(out / "model" / "model.safetensors"))
    changed = sum(int((after[k] != base[k].to(torch.bfloat16)).sum()) for k in base)  # vs the loaded weights
    total = sum(v.numel() for v in base.values())
    assert after[next(iter(after))].dtype == torch.bfloat16 and changed / total > 0.2
