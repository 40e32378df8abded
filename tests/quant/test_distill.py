"""QAT distillation loss (quest.loss / lrqat.loss = distill): KL from the frozen full-precision model."""

import copy
import math

import pytest
import torch

from rlx.quant import QuantConfig, quantize
from rlx.quant.layers import distill_kl, distill_loss, frozen_teacher, train_lm
from rlx.quant.quest import QuestLinear


def _calib(n=16, t=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, 100, (n, t), generator=g)
    return ids, torch.ones_like(ids)


def test_distill_kl_hand_computed_value_and_gradient():
    # teacher logits [0, ln 3] -> p = [1/4, 3/4]; student logits [0, 0] -> q = [1/2, 1/2]
    # KL(p || q) = 1/4 ln((1/4)/(1/2)) + 3/4 ln((3/4)/(1/2)) = -1/4 ln 2 + 3/4 ln 1.5 = 0.130812...
    t = torch.tensor([[0.0, math.log(3.0)]])
    s = torch.zeros(1, 2, requires_grad=True)
    kl = distill_kl(s, t, torch.ones(1))
    expected = -0.25 * math.log(2) + 0.75 * math.log(1.5)
    assert float(kl.detach()) == pytest.approx(expected, abs=1e-6)
    kl.backward()
    # d KL / d student logits = q - p = [1/2 - 1/4, 1/2 - 3/4] = [0.25, -0.25]
    assert torch.allclose(s.grad, torch.tensor([[0.25, -0.25]]), atol=1e-6)


def test_distill_kl_weights_select_positions():
    t = torch.tensor([[0.0, math.log(3.0)], [5.0, -5.0]])
    s = torch.zeros(2, 2)
    # weight [1, 0]: only the first position counts, normalised by sum w = 1
    only_first = distill_kl(s, t, torch.tensor([1.0, 0.0]))
    assert float(only_first) == pytest.approx(float(distill_kl(s[:1], t[:1], torch.ones(1))), abs=1e-7)
    # equal weights: the mean of the two per-position KLs
    both = distill_kl(s, t, torch.ones(2))
    mean = (distill_kl(s[:1], t[:1], torch.ones(1)) + distill_kl(s[1:], t[1:], torch.ones(1))) / 2
    assert float(both) == pytest.approx(float(mean), abs=1e-7)


def test_distill_loss_zero_and_zero_gradient_when_student_is_teacher(tiny):
    model, _ = tiny
    student = copy.deepcopy(model)
    teacher = frozen_teacher(model)
    ids, mask = _calib()
    loss = distill_loss(student, teacher, ids, mask)
    assert abs(float(loss.detach())) < 1e-6
    loss.backward()
    worst = max(float(p.grad.abs().max()) for p in student.parameters() if p.grad is not None)
    assert worst < 1e-6
    assert all(not p.requires_grad for p in teacher.parameters())


def test_distill_loss_gradient_matches_finite_differences(tiny):
    model, _ = tiny
    teacher = frozen_teacher(model).double()
    student = copy.deepcopy(model).double()
    with torch.no_grad():  # move the student away from the teacher so the gradient is not zero
        g = torch.Generator().manual_seed(3)
        for p in student.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    ids, mask = _calib(n=4, t=8)
    loss_mask = mask.clone()
    loss_mask[:, :3] = 0  # score only positions 3.. (as a task calibration's completion mask does)
    # the final RMSNorm weight: HF's LlamaRMSNorm computes in float32 and casts back before
    # multiplying by its weight, so from this parameter to the loss everything stays float64 and a
    # central difference is accurate to ~eps^2 (deeper weights pass through float32 casts)
    w = student.model.norm.weight
    loss = distill_loss(student, teacher, ids, mask, loss_mask)
    (grad,) = torch.autograd.grad(loss, w)
    assert float(grad.abs().max()) > 1e-4  # a real, non-vanishing gradient is being checked
    eps = 1e-6
    for i in [0, 5, 17, 31]:
        with torch.no_grad():
            w[i] += eps
            up = float(distill_loss(student, teacher, ids, mask, loss_mask))
            w[i] -= 2 * eps
            down = float(distill_loss(student, teacher, ids, mask, loss_mask))
            w[i] += eps
        fd = (up - down) / (2 * eps)
        assert float(grad[i]) == pytest.approx(fd, rel=1e-5, abs=1e-9)


def test_train_lm_distill_reduces_kl_to_teacher(tiny):
    model, _ = tiny
    teacher = frozen_teacher(model)
    student = copy.deepcopy(model)
    for name, lin in [(n, m) for n, m in student.named_modules() if isinstance(m, torch.nn.Linear) and "lm_head" not in n]:
        parent, _, child = name.rpartition(".")
        setattr(student.get_submodule(parent), child, QuestLinear(lin, 2, None, 1.0))
    calib = _calib(n=32)
    params = [p for n, p in student.named_parameters() if "proj" in n]
    losses = train_lm(student, params, calib, steps=30, lr=3e-3, batch_size=8, seed=0, loss="distill", teacher=teacher)
    assert len(losses) == 30 and losses[0] > 0
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_train_lm_distill_needs_teacher_and_known_loss(tiny):
    model, _ = tiny
    params = list(model.parameters())[:1]
    with pytest.raises(ValueError, match="needs a teacher"):
        train_lm(model, params, _calib(), 1, 1e-3, 4, 0, loss="distill")
    with pytest.raises(ValueError, match="loss = 'kl'"):
        train_lm(model, params, _calib(), 1, 1e-3, 4, 0, loss="kl")


@pytest.mark.parametrize("method,section", [("quest", {"quest": {"qat_steps": 3, "loss": "distill"}}),
                                            ("lrqat", {"lrqat": {"steps": 3, "rank": 2, "loss": "distill"}})])
def test_quantize_with_distill_loss_leaves_model_and_grads_clean(method, section, tiny):
    model, _ = tiny
    m = copy.deepcopy(model)
    flags = [p.requires_grad for p in m.parameters()]
    res = quantize(m, QuantConfig(method=method, bits=2, group_size=16, **section), calib=_calib())
    assert len(res.layers) == 7
    assert [p.requires_grad for p in m.parameters()] == flags
    assert res.config.model_dump()[method]["loss"] == "distill"


def test_bad_loss_is_a_validation_error():
    from rlx.config import ConfigError

    with pytest.raises((ConfigError, ValueError), match="loss"):
        QuantConfig(method="quest", quest={"loss": "kl"})


def test_cli_override_selects_distill_and_rejects_unknown_loss():
    import argparse

    from rlx.config import ConfigError
    from rlx.quant import cli as qcli

    p = argparse.ArgumentParser()
    qcli.add_arguments(p)
    cfg = qcli.config_from_args(p.parse_intermixed_args(["ck", "--out", "o", "--method", "quest", "--bits", "2",
                                                         "quest.qat_steps=5", "quest.loss=distill", "lrqat.loss=distill"]))
    assert (cfg.quest.loss, cfg.quest.qat_steps, cfg.lrqat.loss) == ("distill", 5, "distill")
    with pytest.raises(ConfigError, match="quest.loss"):
        qcli.config_from_args(p.parse_intermixed_args(["ck", "--out", "o", "quest.loss=kl"]))


@pytest.mark.parametrize("schedule,factors", [("constant", [1.0, 1.0, 1.0, 1.0]),
                                              # (1 + cos(pi t / 4)) / 2 for t = 0..3
                                              ("cosine", [1.0, 0.8535534, 0.5, 0.1464466])])
def test_train_lm_lr_schedule_uses_hand_computed_rates(tiny, monkeypatch, schedule, factors):
    model, _ = tiny
    m = copy.deepcopy(model)
    seen = []
    step = torch.optim.Adam.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return step(self, *a, **k)

    monkeypatch.setattr(torch.optim.Adam, "step", spy)
    params = [p for n, p in m.named_parameters() if "proj" in n]
    train_lm(m, params, _calib(), steps=4, lr=2e-3, batch_size=4, seed=0, schedule=schedule)
    assert seen == pytest.approx([2e-3 * f for f in factors], rel=1e-6)


def test_lr_schedule_is_validated_and_reaches_both_qat_methods(tiny):
    from rlx.config import ConfigError

    model, _ = tiny
    with pytest.raises(ValueError, match="schedule = 'linear'"):
        train_lm(model, list(model.parameters())[:1], _calib(), 1, 1e-3, 4, 0, schedule="linear")
    with pytest.raises((ConfigError, ValueError), match="lr_schedule"):
        QuantConfig(method="quest", quest={"lr_schedule": "linear"})
    for method, section in [("quest", {"qat_steps": 2}), ("lrqat", {"steps": 2, "rank": 2})]:
        runs = []
        for schedule in ("constant", "cosine"):
            m = copy.deepcopy(model)
            cfg = QuantConfig(method=method, bits=2, group_size=16, **{method: {**section, "lr": 0.05, "lr_schedule": schedule}})
            quantize(m, cfg, calib=_calib())
            runs.append(torch.cat([p.detach().flatten() for p in m.parameters()]))
        assert not torch.equal(runs[0], runs[1])  # the second step's smaller rate changes the result
