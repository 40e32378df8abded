import pytest
import torch
from torch import nn

from rlx.quant.fp8 import FP8Spec, fake_fp8
from rlx.quant.fp8_flow import FP8Linear, fp8_precision


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a = nn.Linear(16, 16)
        self.lm_head = nn.Linear(16, 4)

    def forward(self, x):
        return self.lm_head(torch.relu(self.a(x)))


def _plain_out(net, x):
    return net.lm_head(torch.relu(nn.functional.linear(x, net.a.weight, net.a.bias)))


@pytest.mark.parametrize("mode,rollout_fp8,train_fp8", [("rollout_only", True, False), ("unified", True, True),
                                                        ("off", False, False)])
def test_modes(mode, rollout_fp8, train_fp8):
    net = Net()
    x = torch.randn(3, 16) * 5
    ref = _plain_out(net, x)
    expect_fp8 = net.lm_head(torch.relu(nn.functional.linear(
        fake_fp8(x, FP8Spec("e4m3", "row")), fake_fp8(net.a.weight, FP8Spec("e4m3", "block")), net.a.bias)))
    flow = fp8_precision(net, mode)
    assert isinstance(net.a, FP8Linear) and type(net.lm_head) is nn.Linear  # lm_head skipped
    with flow.rollout():
        r = net(x)
    with flow.train():
        t = net(x)
    assert torch.equal(r, expect_fp8 if rollout_fp8 else ref)
    assert torch.equal(t, expect_fp8 if train_fp8 else ref)
    # outside any context: high precision
    assert torch.equal(net(x), ref)
    # the rollout/trainer mismatch is zero exactly when the flow is unified (or off)
    assert torch.equal(r, t) == (mode != "rollout_only")


def test_unified_ste_gradient_and_shared_parameters():
    net = Net()
    w_before = net.a.weight
    flow = fp8_precision(net, "unified")
    assert net.a.weight is w_before  # optimizer state keeps pointing at the same tensors
    x = torch.randn(4, 16)
    with flow.train():
        net(x).sum().backward()
    g_fp8 = net.a.weight.grad.clone()
    # STE: the gradient equals the high-precision formula evaluated at the quantized operands
    net.zero_grad()
    xq = fake_fp8(x, FP8Spec("e4m3", "row"))
    wq = fake_fp8(net.a.weight.detach(), FP8Spec("e4m3", "block")).requires_grad_(True)
    out = net.lm_head(torch.relu(nn.functional.linear(xq, wq, net.a.bias)))
    out.sum().backward()
    assert torch.allclose(g_fp8, wq.grad, atol=1e-6)
    flow.remove()
    assert type(net.a) is nn.Linear and net.a.weight is w_before


def test_bad_mode():
    with pytest.raises(ValueError, match="mode"):
        fp8_precision(Net(), "bf16")


def test_scaled_mm_function_runs_the_fp8_gemm_on_cpu_like_fake_quant():
    """The real-FP8 path's math (row scales, transposes, bias, STE backward) through torch._scaled_mm,
    which PyTorch also implements on CPU; the CUDA kernel itself is covered by the gpu test below."""
    from rlx.quant.fp8_flow import _ScaledMM

    try:  # torch < 2.13 has only per-tensor scales in its CPU kernel (rlx calls _scaled_mm on CUDA only)
        torch._scaled_mm(torch.zeros(16, 16, dtype=torch.float8_e4m3fn), torch.zeros(16, 16, dtype=torch.float8_e4m3fn).t(),
                         scale_a=torch.ones(16, 1), scale_b=torch.ones(1, 16), out_dtype=torch.bfloat16)
    except RuntimeError as e:
        pytest.skip(f"torch {torch.__version__}: no per-row _scaled_mm on CPU ({str(e)[:60]}...)")
    torch.manual_seed(0)
    x = torch.randn(2, 32, 256, requires_grad=True)  # a batch of sequences: [B, T, in]
    w = torch.randn(128, 256, requires_grad=True)
    b = torch.randn(128, requires_grad=True)
    y = _ScaledMM.apply(x, w, b)
    ref = nn.functional.linear(fake_fp8(x.detach(), FP8Spec("e4m3", "row")),
                               fake_fp8(w.detach(), FP8Spec("e4m3", "row")), b.detach())
    assert y.shape == (2, 32, 128)
    # same FP8 operands; the GEMM writes x W^T in bf16 (8-bit mantissa), the bias is added after:
    # within half a bf16 step of |x W^T|
    assert ((y - ref).abs() <= (ref - b.detach()).abs() * 2.0**-8 + 1e-3).all()
    assert (y - ref).abs().max() > 0  # it really went through the bf16-output kernel
    g = torch.randn(2, 32, 128)
    y.backward(g)
    torch.testing.assert_close(x.grad, g @ w.detach(), rtol=1e-6, atol=1e-5)  # straight-through
    torch.testing.assert_close(w.grad, g.reshape(-1, 128).T @ x.detach().reshape(-1, 256), rtol=1e-6, atol=1e-4)
    torch.testing.assert_close(b.grad, g.sum((0, 1)))


@pytest.mark.gpu
def test_scaled_mm_backend_matches_fake_quant_on_gpu():
    if not torch.cuda.is_available() or torch.cuda.get_device_capability() < (8, 9):
        pytest.fail("needs a CUDA GPU with FP8 support (compute capability >= 8.9)")
    torch.manual_seed(0)
    lin = nn.Linear(256, 128).cuda()
    x = torch.randn(64, 256, device="cuda", requires_grad=True)
    real = fp8_precision(nn.Sequential(lin), "unified", weight_granularity="row", backend="scaled_mm")
    with real.train():
        y = real.model(x)
    y.sum().backward()
    ref = nn.functional.linear(fake_fp8(x.detach(), FP8Spec("e4m3", "row")),
                               fake_fp8(lin.weight.detach(), FP8Spec("e4m3", "row")), lin.bias)
    # the FP8 GEMM accumulates in fp32 and writes bf16: agree to bf16 precision
    assert torch.allclose(y.float(), ref.float(), rtol=2e-2, atol=2e-2)
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.gpu
def test_fake_fp8_matches_cuda_cast():
    if not torch.cuda.is_available():
        pytest.fail("needs a CUDA GPU")
    x = torch.randn(300, 300) * 100
    cpu = fake_fp8(x, FP8Spec("e4m3", "block"))
    gpu = fake_fp8(x.cuda(), FP8Spec("e4m3", "block")).cpu()
    assert torch.equal(cpu, gpu)


@pytest.mark.parametrize("kw", [{"fmt": "e5m2", "weight_granularity": "row"}, {}])
def test_scaled_mm_refuses_settings_it_would_ignore(kw):
    """The FP8 GEMM backend is e4m3 with per-row weight scales; e5m2 or the default 128 x 128 blocks are an error."""
    with pytest.raises(ValueError, match="backend = scaled_mm runs e4m3"):
        fp8_precision(nn.Sequential(nn.Linear(4, 4)), "unified", backend="scaled_mm", **kw)
