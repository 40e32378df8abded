import pytest
import torch

from rlx.quant.core import IntSpec, QTensor, fake_int, int_dequantize, int_params, int_quantize
from rlx.quant.hadamard import hadamard, hadamard_matrix


def test_asymmetric_hand_computed():
    # row [-1, 0, 0.5, 2] at 2 bits: scale = (2 - (-1)) / 3 = 1, zero = round(1 / 1) = 1
    # codes = round(x / 1 + 1) = [0, 1, 1.5 -> 2 (half to even), 3]; x_hat = 1 * (q - 1) = [-1, 0, 1, 2]
    w = torch.tensor([[-1.0, 0.0, 0.5, 2.0]])
    qt = int_quantize(w, IntSpec(bits=2, granularity="channel"))
    assert qt.scale.item() == pytest.approx(1.0, abs=1e-7)
    assert qt.zero.item() == 1.0
    assert qt.codes.tolist() == [[0, 1, 2, 3]]
    assert int_dequantize(qt).tolist() == [[-1.0, 0.0, 1.0, 2.0]]


def test_symmetric_grid_is_midrise():
    # amax = 3 at 2 bits: scale = 2 * 3 / 3 = 2, zero = 1.5 -> levels 2 * (q - 1.5) = [-3, -1, 1, 3]
    w = torch.tensor([[-3.0, -0.2, 0.9, 3.0]])
    qt = int_quantize(w, IntSpec(bits=2, symmetric=True, granularity="channel"))
    assert qt.scale.item() == pytest.approx(2.0, abs=1e-7)
    assert int_dequantize(qt).tolist() == [[-3.0, -1.0, 1.0, 3.0]]
    # 1 bit symmetric: levels +-amax
    qt1 = int_quantize(w, IntSpec(bits=1, symmetric=True, granularity="channel"))
    assert int_dequantize(qt1).tolist() == [[-3.0, -3.0, 3.0, 3.0]]


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("symmetric", [False, True])
@pytest.mark.parametrize("gran", ["tensor", "channel", "group"])
def test_round_trip_error_bound(bits, symmetric, gran):
    torch.manual_seed(bits)
    w = torch.randn(16, 64) * torch.linspace(0.1, 3, 64)
    spec = IntSpec(bits=bits, symmetric=symmetric, granularity=gran, group_size=16)
    qt = int_quantize(w, spec)
    err = (w - int_dequantize(qt)).abs()
    g_idx = torch.arange(64) // qt.group_size
    bound = qt.scale[:, g_idx] / 2
    assert (err <= bound * (1 + 1e-5) + 1e-7).all()
    assert qt.codes.max() <= 2**bits - 1
    # codes dequantize to what fake_int computes in one go
    assert torch.allclose(fake_int(w, spec), int_dequantize(qt), atol=1e-6)


def test_group_scales_are_per_group():
    w = torch.zeros(1, 8)
    w[0, :4] = torch.tensor([0.0, 1, 2, 3])
    w[0, 4:] = torch.tensor([0.0, 10, 20, 30])
    qt = int_quantize(w, IntSpec(bits=2, granularity="group", group_size=4))
    # asymmetric 2 bit: scales (3-0)/3 = 1 and (30-0)/3 = 10; both groups exactly representable
    assert torch.allclose(qt.scale, torch.tensor([[1.0, 10.0]]))
    assert torch.equal(int_dequantize(qt), w)


def test_ste_gradient_inside_and_saturated():
    x = torch.tensor([[-1.0, 0.2, 0.7, 2.0]], requires_grad=True)
    spec = IntSpec(bits=2, granularity="channel")
    scale, zero = int_params(x.detach().reshape(1, 1, 4), spec)
    # pin the range to [-1, 2] then ask about x = 5 (saturated) through a second call
    y = fake_int(x, spec)
    y.sum().backward()
    assert x.grad.tolist() == [[1.0, 1.0, 1.0, 1.0]]
    x2 = torch.tensor([[0.5, 5.0]], requires_grad=True)
    y2 = fake_int(x2, spec, scale=scale.reshape(1, 1), zero=zero.reshape(1, 1))
    y2.sum().backward()
    # 5 / 1 + 1 = 6 > qmax 3: clamped, so no gradient; 0.5 is inside the range
    assert x2.grad.tolist() == [[1.0, 0.0]]
    # 0.5 / 1 + 1 = 1.5 -> round half to even = 2 -> 1 * (2 - 1) = 1; 5 saturates to 1 * (3 - 1) = 2
    assert y2.tolist() == [[1.0, 2.0]]


def test_nan_and_inf_in_int_quant():
    x = torch.tensor([[1.0, float("nan"), -1.0, float("inf")]])
    y = fake_int(x, IntSpec(bits=8, symmetric=True, granularity="channel"))
    # stats ignore non-finite values: amax = 1; NaN stays NaN; inf saturates to +amax = 1
    assert torch.isnan(y[0, 1])
    assert y[0, 3].item() == pytest.approx(1.0, abs=1e-6)
    assert y[0, 0].item() == pytest.approx(1.0, abs=1e-6)


def test_bad_specs():
    with pytest.raises(ValueError, match="bits"):
        IntSpec(bits=9)
    with pytest.raises(ValueError, match="group_size"):
        int_quantize(torch.randn(2, 10), IntSpec(granularity="group", group_size=4))


@pytest.mark.parametrize("d", [1, 2, 8, 64, 24, 96])
def test_hadamard_orthogonal_and_fast_matches_dense(d):
    H = hadamard_matrix(d, dtype=torch.float64)
    assert torch.allclose(H @ H.T, torch.eye(d, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(H, H.T)
    x = torch.randn(5, d, dtype=torch.float64)
    assert torch.allclose(hadamard(x), x @ H, atol=1e-12)
    assert torch.allclose(hadamard(hadamard(x)), x, atol=1e-12)


def test_hadamard_4_by_hand():
    # Sylvester H_4 / 2: first row all 1/2; x = e_0 maps to [1/2, 1/2, 1/2, 1/2]
    assert torch.allclose(hadamard(torch.tensor([1.0, 0, 0, 0])), torch.full((4,), 0.5))
    # x = [1, 1, 1, 1] maps to [2, 0, 0, 0]
    assert torch.allclose(hadamard(torch.ones(4)), torch.tensor([2.0, 0, 0, 0]))


def test_qtensor_g_idx_dequant_loop():
    torch.manual_seed(0)
    codes = torch.randint(0, 16, (3, 6), dtype=torch.uint8)
    scale, zero = torch.rand(3, 2) + 0.1, torch.randint(0, 16, (3, 2)).float()
    g_idx = torch.tensor([1, 0, 0, 1, 1, 0])
    fast = QTensor(codes, scale, zero, 3, g_idx).dequantize()
    for i in range(3):  # slow reference loop
        for j in range(6):
            g = int(g_idx[j])
            assert fast[i, j].item() == pytest.approx(float(scale[i, g] * (codes[i, j] - zero[i, g])), abs=1e-6)
