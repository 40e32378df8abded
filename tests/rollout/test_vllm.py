"""The vllm engine: a clear error without vllm (CPU); protocol behaviour on a GPU (`gpu` marker)."""

from __future__ import annotations

import sys

import pytest
import torch
from rollout_helpers import PROMPTS, teacher_forced_logprobs, tiny_model

from rlx.config import ConfigError
from rlx.rollout import HFEngine, SamplingParams, make_engine
from rlx.rollout.vllm import MISSING_VLLM, _to_generation


def test_missing_vllm_is_one_clear_line(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` raise ImportError
    model, tok = tiny_model()
    with pytest.raises(ConfigError) as err:
        make_engine("vllm", model, tok)
    assert str(err.value) == "vllm is not installed: pip install 'rlx[vllm]' (needs a CUDA GPU)" == MISSING_VLLM


def test_padding_of_vllm_rows():
    # two rows: prompt [5, 6] / completion [7, 2] (EOS) and prompt [9] / completion [8, 8, 8] (length)
    gen = _to_generation([[5, 6], [9]], [[7, 2], [8, 8, 8]], [[-0.5, -0.25], [-1.0, -2.0, -3.0]],
                         ["stop", "length"], ["x", "yyy"], pad=0)
    assert gen.prompt_ids.tolist() == [[5, 6], [0, 9]] and gen.prompt_mask.tolist() == [[True, True], [False, True]]
    assert gen.completion_ids.tolist() == [[7, 2, 0], [8, 8, 8]]
    assert gen.completion_mask.tolist() == [[True, True, False], [True, True, True]]
    assert gen.logprobs.tolist() == [[-0.5, -0.25, 0.0], [-1.0, -2.0, -3.0]]


@pytest.fixture(scope="module")
def on_gpu():
    pytest.importorskip("vllm")
    model, tok = tiny_model(seed=1, layers=2, width=64)  # no lm_head bias: vLLM's Llama has none
    model = model.to("cuda")
    return model, tok, make_engine("vllm", model, tok, dtype="float32", gpu_memory_utilization=0.2,
                                   enforce_eager=True)


@pytest.mark.gpu
def test_vllm_greedy_matches_hf_and_teacher_forcing(on_gpu):
    model, tok, eng = on_gpu
    params = SamplingParams(temperature=0, max_new_tokens=12)
    gen = eng.generate(PROMPTS, params, seed=0)
    ref = HFEngine(model, tok).generate(PROMPTS, params, seed=0)
    assert gen.texts == ref.texts and gen.finish_reasons == ref.finish_reasons
    assert torch.equal(gen.completion_ids, ref.completion_ids.cpu())
    assert (gen.logprobs - ref.logprobs.cpu()).abs().max().item() < 1e-3


@pytest.mark.gpu
def test_vllm_sampling_logprobs_and_seed(on_gpu):
    model, tok, eng = on_gpu
    params = SamplingParams(n=4, max_new_tokens=10)
    a = eng.generate(PROMPTS, params, seed=3)
    b = eng.generate(PROMPTS, params, seed=3)
    assert a.texts == b.texts and torch.equal(a.completion_ids, b.completion_ids)
    assert a.completion_ids.shape[0] == 4 * len(PROMPTS)
    move = lambda g: type(g)(**{k: (v.cuda() if torch.is_tensor(v) else v) for k, v in g.__dict__.items()})
    ref = teacher_forced_logprobs(model, move(a)).cpu()
    assert (a.logprobs - ref).abs().max().item() < 1e-3


@pytest.mark.gpu
def test_vllm_sync_weights(on_gpu):
    model, tok, eng = on_gpu
    params = SamplingParams(temperature=0, max_new_tokens=8)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    eng.sync_weights(model)
    assert eng.generate(PROMPTS, params, seed=0).texts == HFEngine(model, tok).generate(PROMPTS, params, seed=0).texts
