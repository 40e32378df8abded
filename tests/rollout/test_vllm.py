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


class _FakeVLLM:
    """Stands in for the `vllm` module on CPU: records what rlx asks of vLLM and answers like vLLM's
    v1 `LLM.generate` (per request, n completions with token ids, per-position logprob dicts, finish
    reasons). It checks the mapping layer, not vLLM itself (that is the `gpu` tests' job)."""

    class SamplingParams:
        def __init__(self, **kw):
            self.__dict__.update(kw)

    class LLM:
        last = None

        def __init__(self, **kw):
            self.kw, self.requests, self.rpcs, self.resets = kw, None, [], 0
            type(self).last = self

        def generate(self, prompts, params, use_tqdm=True):
            from types import SimpleNamespace as NS

            self.requests = list(zip(prompts, params))
            outs = []
            for prompt, sp in self.requests:
                comps = []
                for j in range(sp.n):
                    toks = [40 + j, sp.stop_token_ids[0]] if j % 2 == 0 else [41, 42, 43][: sp.max_tokens]
                    comps.append(NS(token_ids=toks, logprobs=[{t: NS(logprob=-0.5 * (k + 1))} for k, t in enumerate(toks)],
                                    finish_reason="stop" if j % 2 == 0 else "length", text=f"c{j}"))
                outs.append(NS(outputs=comps))
            return outs

        def collective_rpc(self, fn, args=()):
            self.rpcs.append(args)

        def reset_prefix_cache(self):
            self.resets += 1


def test_vllm_mapping_layer_on_a_fake_vllm(monkeypatch, tmp_path):
    """Prompts go as token ids (one BOS rule shared with the hf engine), every request carries the EOS ids
    as stop_token_ids, its own seed, and the sampling settings; outputs are padded into a Generation; a
    custom eos_token_ids list is accepted (it used to reach vllm.LLM and raise TypeError); sync pushes the
    state dict and resets the prefix cache."""
    from rlx.models.tokenizer import encode_prompt
    from rlx.rollout.vllm import request_seeds

    monkeypatch.setitem(sys.modules, "vllm", _FakeVLLM)
    model, tok = tiny_model()
    eng = make_engine("vllm", model, tok, eos_token_ids=[2, 7], workdir=str(tmp_path), max_model_len=64)
    llm = _FakeVLLM.LLM.last
    assert llm.kw["max_model_len"] == 64 and llm.kw["logprobs_mode"] == "processed_logprobs"
    assert llm.kw["dtype"] == "float32"  # the trainer's: vLLM's own "auto" serves a float32 checkpoint in float16
    assert "eos_token_ids" not in llm.kw
    params = SamplingParams(n=2, max_new_tokens=3, temperature=0.8, top_p=0.9, top_k=5, stop=["\n"])
    gen = eng.generate(PROMPTS[:2], params, seed=11)
    seeds = request_seeds(11, 2, 2)
    for (prompt, sp), text, seed in zip(llm.requests, PROMPTS[:2], seeds):
        assert prompt == {"prompt_token_ids": encode_prompt(tok, text)}
        assert (sp.n, sp.temperature, sp.top_p, sp.top_k, sp.max_tokens, sp.stop, sp.seed, sp.logprobs) == \
            (2, 0.8, 0.9, 5, 3, ["\n"], seed, 0)
        assert sp.stop_token_ids == [2, 7]
    assert gen.completion_ids.tolist() == [[40, 2, 0], [41, 42, 43]] * 2
    assert gen.completion_mask.tolist() == [[True, True, False], [True, True, True]] * 2
    assert gen.logprobs.tolist() == [[-0.5, -1.0, 0.0], [-0.5, -1.0, -1.5]] * 2
    assert gen.finish_reasons == ("stop", "length") * 2 and gen.texts == ("c0", "c1") * 2
    assert gen.prompt_ids[0][gen.prompt_mask[0]].tolist() == encode_prompt(tok, PROMPTS[0])
    eng.sync_weights(model)
    (weights,), = llm.rpcs
    assert {n for n, _ in weights} == set(model.state_dict()) and llm.resets == 1
    top_k_off = eng.generate(PROMPTS[:1], SamplingParams(max_new_tokens=2), seed=0)
    assert llm.requests[0][1].top_k == -1 and top_k_off.completion_ids.shape[0] == 1


def test_vllm_dtype_follows_the_trainer(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", _FakeVLLM)
    model, tok = tiny_model()
    make_engine("vllm", model.to(torch.bfloat16), tok, workdir=str(tmp_path))
    assert _FakeVLLM.LLM.last.kw["dtype"] == "bfloat16"
    make_engine("vllm", model, tok, workdir=str(tmp_path), dtype="float16")  # an explicit choice is kept
    assert _FakeVLLM.LLM.last.kw["dtype"] == "float16"
