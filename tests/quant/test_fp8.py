import pytest
import torch

from rlx.quant.fp8 import FP8_MAX, FP8Spec, fake_fp8, fp8_dequantize, fp8_quantize, fp8_scale


def test_scale_convention_tensor():
    # amax = 896 -> scale = 896 / 448 = 2; stored = x / 2; 896 -> 448 exactly
    x = torch.tensor([[896.0, 1.0, -2.0]])
    v, s = fp8_quantize(x, FP8Spec("e4m3", "tensor"))
    assert s.item() == 2.0
    assert v.dtype == torch.float8_e4m3fn
    assert v.float().tolist() == [[448.0, 0.5, -1.0]]
    assert fp8_dequantize(v, s).tolist() == [[896.0, 1.0, -2.0]]


def test_saturation_at_448_with_fixed_scale():
    # with scale 1, values beyond +-448 saturate (never NaN, never inf)
    from rlx.quant.fp8 import _round_fp8

    y = _round_fp8(torch.tensor([1000.0, -1000.0, 448.0, 460.0, float("inf"), -float("inf")]), "e4m3")
    assert y.float().tolist() == [448.0, -448.0, 448.0, 448.0, 448.0, -448.0]
    z = _round_fp8(torch.tensor([1e6, -1e6]), "e5m2")
    assert z.float().tolist() == [57344.0, -57344.0]
    assert FP8_MAX["e4m3"] == 448.0


def test_e4m3_rounding_grid():
    # e4m3 has 3 mantissa bits: between 1 and 2 the step is 1/8; 1.06 -> 1.0, 1.07 -> 1.125
    # (midpoint 1.0625); at 256..448 the step is 32: 300 -> 288 (nearer than 320)
    from rlx.quant.fp8 import _round_fp8

    assert _round_fp8(torch.tensor([1.06, 1.07, 300.0]), "e4m3").float().tolist() == [1.0, 1.125, 288.0]


def test_nan_handling():
    # NaN does not poison the block scale (amax ignores it) and stays NaN; inf saturates
    x = torch.tensor([[float("nan"), 4.48, -1.0, float("inf")]])
    s = fp8_scale(x, FP8Spec("e4m3", "tensor"))
    assert s.item() == pytest.approx(4.48 / 448, rel=1e-6)
    y = fake_fp8(x, FP8Spec("e4m3", "tensor"))
    assert torch.isnan(y[0, 0])
    assert y[0, 1].item() == pytest.approx(4.48, rel=1e-6)
    assert y[0, 3].item() == pytest.approx(4.48, rel=1e-6)  # +inf -> +448 * scale
    # an all-zero block gets scale 1
    assert fp8_scale(torch.zeros(3, 3), FP8Spec("e4m3", "tensor")).item() == 1.0


def test_row_and_block_scales_shapes_and_values():
    x = torch.zeros(256, 256)
    x[0, 0] = 448.0 * 3  # block (0, 0)
    x[200, 200] = 448.0 * 5  # block (1, 1)
    s = fp8_scale(x, FP8Spec("e4m3", "block", 128))
    assert s.tolist() == [[3.0, 1.0], [1.0, 5.0]]
    r = fp8_scale(x, FP8Spec("e4m3", "row"))
    assert r.shape == (256, 1) and r[0, 0].item() == 3.0 and r[200, 0].item() == 5.0 and r[1, 0].item() == 1.0


def test_block_scaling_beats_tensor_scaling_on_outlier():
    torch.manual_seed(0)
    x = torch.randn(256, 256) * 1e-3
    x[5, 7] = 1e4  # one extreme outlier: with one tensor scale small values underflow to 0
    err_t = (fake_fp8(x, FP8Spec("e4m3", "tensor")) - x).pow(2)
    err_b = (fake_fp8(x, FP8Spec("e4m3", "block")) - x).pow(2)
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:128, :128] = False  # outside the outlier's block
    assert err_b[mask].sum() < 1e-3 * err_t[mask].sum()
    assert err_b.sum() < err_t.sum()


def test_non_multiple_block_shape_and_ste():
    x = torch.randn(130, 70, requires_grad=True)
    y = fake_fp8(x, FP8Spec("e4m3", "block", 128))
    assert y.shape == x.shape
    y.sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))
    # relative error of e4m3 inside range is at most 2^-4 (3 mantissa bits, half a step)
    rel = ((y - x).abs() / x.abs().clamp_min(1e-2)).detach()
    assert rel[x.abs() > 1e-2].max() <= 2**-4 + 1e-6
