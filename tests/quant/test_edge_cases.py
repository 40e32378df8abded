"""Inputs a real model brings that the tiny fp32 Llama does not: pruned (all-zero) rows, float16 and
bfloat16 weights, Linear biases, calibration rows of padding only, frozen parameters, NaN weights."""

import pytest
import torch

from rlx.config import ConfigError
from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer
from rlx.quant import QuantConfig, quantize
from rlx.quant.core import IntSpec, fake_int, int_quantize
from rlx.quant.gptq import GPTQError, gptq_weight
from rlx.quant.layers import LayerQuant
from rlx.quant.quest import quest_codes
from rlx.quant.rsq import token_weights


def _model(arch: str = "llama", dtype: torch.dtype = torch.float32):
    tok = char_tokenizer()
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2,
                                             intermediate_size=64, arch=arch), tok, seed=0)
    return model.to(dtype).eval()


def _calib() -> torch.Tensor:
    return torch.randint(4, 100, (16, 12), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_an_all_zero_row_stays_zero_on_the_symmetric_grid(bits):
    """The symmetric grid's zero point is a half-integer: with scale 1 a zero row became +-0.5 (code 0 or
    1 at 1 bit: -0.5 / +0.5). The tiny scale keeps it below 1e-38; the other row is unaffected."""
    w = torch.zeros(2, 8)
    w[1] = torch.linspace(-1, 1, 8)
    spec = IntSpec(bits=bits, symmetric=True, granularity="channel")
    deq = int_quantize(w, spec).dequantize()
    assert deq[0].abs().max() < 1e-37 and fake_int(w, spec)[0].abs().max() < 1e-37
    assert deq[1].abs().max() == pytest.approx(1.0)  # amax of the live row is on the grid's ends
    quest = LayerQuant(quest_codes(w, bits), bits, hadamard=True).weight()
    assert quest[0].abs().max() < 1e-37 and quest[1].abs().max() > 0.1


def test_quest_qat_on_a_float16_model_stays_finite():
    """Adam's eps (1e-8) underflows in float16: QAT turned weights into NaN and quest_codes made them all-zero
    codes, silently. The QuestLinear layers now train float32 master weights and go back to float16."""
    model = _model(dtype=torch.float16)
    quantize(model, QuantConfig(method="quest", bits=4, quest={"qat_steps": 2}), calib=_calib())
    assert all(p.dtype == torch.float16 and torch.isfinite(p).all() for p in model.parameters())
    with torch.no_grad():
        assert torch.isfinite(model(_calib()[:2]).logits).all()


def test_quest_codes_refuse_a_nan_weight():
    w = torch.randn(4, 8)
    w[2, 3] = float("nan")
    with pytest.raises(ValueError, match="1 non-finite"):
        quest_codes(w, 4)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_qllm_tunes_a_16_bit_model_with_biases(dtype):
    """Qwen2 has q/k/v biases: the float32 tuning inputs met the 16-bit bias and F.linear raised."""
    model = _model("qwen2", dtype)
    assert model.model.layers[0].self_attn.q_proj.bias is not None
    quantize(model, QuantConfig(method="qllm", bits=4, group_size=16, qllm={"steps": 2, "rank": 2}), calib=_calib())
    with torch.no_grad():
        assert torch.isfinite(model(_calib()[:2]).logits.float()).all()


def test_rsq_token_weights_of_a_padding_only_row_are_zero():
    """lo = +max, hi = -max on a row without real tokens: (-inf) * 0 made NaN weights and a NaN Hessian."""
    a = torch.tensor([[0.1, 0.3, 0.2, 9.0], [5.0, 6.0, 7.0, 8.0]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 0, 0]])
    w = token_weights(a, mask, 0.1)
    assert torch.equal(w[1], torch.zeros(4))
    torch.testing.assert_close(w[0], torch.tensor([0.1, 1.0, 0.55, 0.0]))  # (a - 0.1) / 0.2 into [0.1, 1]
    ids = _calib()
    pad = torch.ones_like(ids)
    pad[3] = 0
    model = _model()
    quantize(model, QuantConfig(method="rsq", bits=4, group_size=16), calib=(ids, pad))
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_quantlrm_pseudo_deltas_on_a_frozen_model():
    """A model loaded for inference (requires_grad False) crashed in backward(); the flags come back."""
    model = _model()
    model.requires_grad_(False)
    quantize(model, QuantConfig(method="quantlrm", bits=4, group_size=16, quantlrm={"alpha_grid": 3}),
             calib=_calib())
    assert not any(p.requires_grad for p in model.parameters())


def test_nan_weights_are_refused_before_any_layer_changes():
    model = _model()
    lin = model.model.layers[0].mlp.down_proj
    with torch.no_grad():
        lin.weight[0, 0] = float("nan")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ConfigError, match="1 in model.layers.0.mlp.down_proj"):
        quantize(model, QuantConfig(method="gptq", bits=4, group_size=16), calib=_calib())
    assert all(torch.allclose(p, before[n], rtol=0, atol=0, equal_nan=True) for n, p in model.named_parameters())


def test_gptq_weight_refuses_non_finite_input():
    """Its error feedback spread one NaN over the rest of the row: codes collapsed to 0 with no error."""
    W, H = torch.randn(4, 8), torch.eye(8)
    W[0, 1] = float("inf")
    with pytest.raises(GPTQError, match="weight"):
        gptq_weight(W, H, IntSpec(bits=4, group_size=8))
    H[2, 2] = float("nan")
    with pytest.raises(GPTQError, match="Hessian"):
        gptq_weight(torch.randn(4, 8), H, IntSpec(bits=4, group_size=8))
