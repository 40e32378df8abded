"""The lean Llama/Qwen2 decode path against the generic HF forward and a teacher-forced pass."""

from __future__ import annotations

import pytest
import torch
from rollout_helpers import PROMPTS, teacher_forced_logprobs, tiny_model

from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer
from rlx.rollout import HFEngine, SamplingParams
from rlx.rollout.fast import fast_path_blocker


def qwen2(seed=0):
    tok = char_tokenizer()
    cfg = TinyModelConfig(arch="qwen2", hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=1,
                          intermediate_size=48, max_position=64, tie_embeddings=False)
    model = build_tiny_model(cfg, tok, seed=seed).eval()
    with torch.no_grad():  # make the q/k/v biases matter (they init to zero)
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(seed))
    return model, tok


def gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = char_tokenizer()
    cfg = GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(tok), n_positions=64,
                     bos_token_id=1, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    return GPT2LMHeadModel(cfg).eval(), tok


def test_blocker(monkeypatch):
    assert fast_path_blocker(tiny_model()[0]) is None
    assert fast_path_blocker(qwen2()[0]) is None
    assert "GPT2LMHeadModel" in fast_path_blocker(gpt2()[0])
    dyn, _ = tiny_model()
    dyn.model.rotary_emb.rope_type = "dynamic"  # length-dependent frequencies: not table-driven
    assert "rope type dynamic" == fast_path_blocker(dyn)
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(tiny_model()[0], LoraConfig(r=2, target_modules=["q_proj"]))
    assert "PeftModel" in fast_path_blocker(lora)  # the wrapper class
    assert "LoRA" in fast_path_blocker(lora.base_model.model)  # injected adapters inside a Llama
    monkeypatch.setattr("rlx.rollout.fast.MAX_PARAMS", 1000)
    assert "parameters (fast path is for models up to 0M)" in fast_path_blocker(tiny_model()[0])


@pytest.mark.parametrize("build", [lambda: tiny_model(eos_bias=3.0, seed=1), qwen2, gpt2], ids=["llama", "qwen2", "gpt2"])
@pytest.mark.parametrize("fast", [True, False])
def test_logprobs_match_teacher_forcing(build, fast):
    model, tok = build()
    params = SamplingParams(n=3, max_new_tokens=10)
    gen = HFEngine(model, tok, fast=fast).generate(PROMPTS, params, seed=4)
    ref = teacher_forced_logprobs(model, gen)
    assert (gen.logprobs - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize("build", [lambda: tiny_model(eos_bias=3.0, seed=1), qwen2], ids=["llama", "qwen2"])
def test_fast_equals_generic(build):
    model, tok = build()
    params = SamplingParams(n=4, max_new_tokens=12, temperature=0.9, top_p=0.95)
    a = HFEngine(model, tok, fast=True).generate(PROMPTS, params, seed=11)
    b = HFEngine(model, tok, fast=False).generate(PROMPTS, params, seed=11)
    assert torch.equal(a.completion_ids, b.completion_ids) and torch.equal(a.completion_mask, b.completion_mask)
    assert (a.logprobs - b.logprobs).abs().max().item() < 1e-5
    assert a.texts == b.texts and a.finish_reasons == b.finish_reasons


def test_fast_sees_weight_updates():
    model, tok = tiny_model(seed=2)
    eng = HFEngine(model, tok)
    params = SamplingParams(temperature=0, max_new_tokens=8)
    before = eng.generate(PROMPTS, params, seed=0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(3)) * 0.5)
    after = eng.generate(PROMPTS, params, seed=0)
    assert after.texts != before.texts
    assert (after.logprobs - teacher_forced_logprobs(model, after)).abs().max().item() < 1e-5


def test_peft_lora_model_uses_the_generic_path_exactly():
    import warnings

    from peft import LoraConfig, get_peft_model

    model, tok = tiny_model(eos_bias=3.0, seed=1)
    lora = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gen = HFEngine(lora, tok).generate(PROMPTS, SamplingParams(n=2, max_new_tokens=8), seed=0)
    assert not [w for w in caught if "past_key_values" in str(w.message)]  # the cache argument is named right
    assert (gen.logprobs - teacher_forced_logprobs(lora, gen)).abs().max().item() < 1e-5
