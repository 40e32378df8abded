"""The lean differentiable forward (rlx.train.fast_logits) against the Hugging Face forward."""

from __future__ import annotations

import pytest
import torch

from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer
from rlx.train.fast_logits import completion_logits, train_path_blocker
from rlx.train.logprobs import sequence_logprobs


def llama(seed=0, kv_heads=2):
    tok = char_tokenizer()
    cfg = TinyModelConfig(hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=kv_heads,
                          intermediate_size=48, max_position=64)
    return build_tiny_model(cfg, tok, seed=seed)


def qwen2(seed=0):
    tok = char_tokenizer()
    cfg = TinyModelConfig(arch="qwen2", hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=1,
                          intermediate_size=48, max_position=64, tie_embeddings=False)
    model = build_tiny_model(cfg, tok, seed=seed)
    with torch.no_grad():  # q/k/v biases init to zero; make them matter
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5, generator=torch.Generator().manual_seed(seed))
    return model


def batch(b=3, g=4, p=5, t=6, seed=0):
    """B distinct left-padded prompts, each repeated G times; right-padded completions of uneven length."""
    gen = torch.Generator().manual_seed(seed)
    prompt = torch.randint(4, 90, (b, p), generator=gen)
    pmask = torch.ones(b, p, dtype=torch.bool)
    pmask[0, :2] = False  # left padding on one prompt
    pmask[1, :4] = False  # a one-token prompt
    prompt[~pmask] = 0
    n = b * g
    comp = torch.randint(4, 90, (n, t), generator=gen)
    cmask = torch.arange(t)[None, :] < torch.randint(1, t + 1, (n,), generator=gen)[:, None]
    comp[~cmask] = 0
    return prompt.repeat_interleave(g, 0), pmask.repeat_interleave(g, 0), comp, cmask


def hf_logits(model, prompt, pmask, comp, cmask):
    """model(cat(prompt, completion)) with mask positions; the T columns that predict completion tokens."""
    ids = torch.cat([prompt, comp], 1)
    mask = torch.cat([pmask, cmask], 1).long()
    out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp_min(0))
    return out.logits[:, prompt.shape[1] - 1:-1]


@pytest.mark.parametrize("build", [llama, lambda: llama(kv_heads=4), qwen2], ids=["llama-gqa", "llama-mha", "qwen2"])
@pytest.mark.parametrize("group", [1, 4])
def test_logits_equal_the_hf_forward_on_valid_positions(build, group):
    model = build().eval()
    prompt, pmask, comp, cmask = batch()
    with torch.no_grad():
        ref = hf_logits(model, prompt, pmask, comp, cmask)
        mine = completion_logits(model, prompt, pmask, comp, cmask, group)
    assert mine.shape == ref.shape == (12, 6, len(char_tokenizer()))
    valid = cmask[..., None].expand_as(ref)
    assert ref[valid].abs().max() > 0.1  # not a degenerate model
    torch.testing.assert_close(mine[valid], ref[valid], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("build", [llama, qwen2], ids=["llama", "qwen2"])
def test_gradients_equal_the_hf_forward(build):
    """Same weighted log-prob objective through both paths: every parameter's gradient agrees."""
    prompt, pmask, comp, cmask = batch(seed=1)
    weights = torch.linspace(-1, 1, comp.numel()).view(comp.shape)
    grads = []
    for lean in (True, False):
        model = build(seed=2).train()
        lp, _, _ = sequence_logprobs(model, prompt, pmask, comp, cmask, group_size=4, lean=lean)
        (lp * weights).sum().backward()
        grads.append({n: q.grad.clone() for n, q in model.named_parameters() if q.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    assert len(grads[0]) == len(list(build().parameters()))  # every parameter (q/k/v, gate/up, norms) gets one
    for name in grads[0]:
        assert grads[1][name].abs().max() > 0, name
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_blocker_sends_other_models_to_the_hf_forward():
    model = llama().train()
    assert train_path_blocker(model) is None
    model.config.attention_dropout = 0.1
    assert train_path_blocker(model) == "attention dropout in training mode"
    assert train_path_blocker(model.eval()) is None  # no dropout at eval time
    from peft import LoraConfig, get_peft_model

    lora = get_peft_model(llama(), LoraConfig(r=2, target_modules=["q_proj"]))
    assert "PeftModel" in train_path_blocker(lora)


def test_a_blocked_model_still_gets_correct_logprobs():
    """GPT-2 has no lean path: sequence_logprobs(lean=True) falls back to the HF forward."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tok = char_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=len(tok), n_positions=64)).eval()
    assert "GPT2LMHeadModel" in train_path_blocker(model)
    prompt, pmask, comp, cmask = batch()
    with torch.no_grad():
        a = sequence_logprobs(model, prompt, pmask, comp, cmask, group_size=4)[0]
        b = sequence_logprobs(model, prompt, pmask, comp, cmask, group_size=4, lean=False)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_only_tokens_that_predict_a_valid_token_are_fed():
    """Rows of one token (T = 1 and inside a longer batch) and a row that fills T: same values as HF."""
    model = llama().eval()
    prompt, pmask, comp, cmask = batch()
    cmask[:] = False
    cmask[0, :1] = True  # one token: only the prompt's last position predicts it
    cmask[1, :] = True  # full length
    cmask[2:, :3] = True
    from rlx.train.fast_logits import packed_completion_logits

    with torch.no_grad():
        logits, where = packed_completion_logits(model, prompt, pmask, comp, cmask, 4)
        assert logits.shape[0] == 12 + 0 + 5 + 10 * 2  # column 0 of every row, then tokens 1.. of each row
        ref = hf_logits(model, prompt, pmask, comp, cmask)
        one = completion_logits(model, prompt[:, :], pmask, comp[:, :1], cmask[:, :1], 4)  # T = 1: no inputs fed
    torch.testing.assert_close(completion_logits(model, prompt, pmask, comp, cmask, 4)[cmask], ref[cmask],
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(one[:, 0], ref[:, 0], rtol=1e-5, atol=1e-5)


def test_a_mask_with_holes_takes_the_hf_forward():
    """The packed path assumes right padding; a completion mask with a hole must not reach it."""
    from rlx.train.fast_logits import is_prefix_mask

    model = llama().eval()
    prompt, pmask, comp, cmask = batch()
    cmask[:] = True
    assert is_prefix_mask(cmask)
    cmask[3, 2] = False
    assert not is_prefix_mask(cmask)
    with torch.no_grad():
        a = sequence_logprobs(model, prompt, pmask, comp, cmask, group_size=4)[0]
        b = sequence_logprobs(model, prompt, pmask, comp, cmask, group_size=4, lean=False)[0]
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_full_rows_take_the_no_scatter_branch_with_the_same_values_and_gradients():
    prompt, pmask, comp, cmask = batch(seed=3)
    cmask[:] = True  # every completion fills T (the compute-bound bench setting)
    grads, values = [], []
    for lean in (True, False):
        model = llama(seed=4).train()
        lp, _, _ = sequence_logprobs(model, prompt, pmask, comp, cmask, group_size=4, lean=lean)
        (lp * torch.linspace(-1, 1, lp.numel()).view(lp.shape)).sum().backward()
        values.append(lp.detach())
        grads.append(torch.cat([q.grad.flatten() for q in model.parameters()]))
    torch.testing.assert_close(values[0], values[1], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("lean, group_size", [(True, 4), (False, 4), (False, 1)])
def test_sequence_logprobs_at_a_temperature_is_the_tempered_softmax(lean, group_size):
    model = llama()
    prompt, pmask, comp, cmask = batch()
    tau = 0.7
    got, ent, _ = sequence_logprobs(model, prompt, pmask, comp, cmask, with_entropy=True, group_size=group_size,
                                    lean=lean, temperature=tau)
    # by hand: one full forward over prompt + completion, logits / tau, log_softmax, gather
    ids, att = torch.cat([prompt, comp], 1), torch.cat([pmask, cmask], 1).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=att, position_ids=(att.cumsum(1) - 1).clamp_min(0)).logits
    p = prompt.shape[1]
    logp = torch.log_softmax(logits[:, p - 1:-1] / tau, dim=-1)
    want = torch.where(cmask, logp.gather(-1, comp.unsqueeze(-1)).squeeze(-1), 0.0)
    want_ent = torch.where(cmask, -(logp.exp() * logp).sum(-1), 0.0)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    torch.testing.assert_close(ent, want_ent, atol=1e-5, rtol=0)
    untempered = sequence_logprobs(model, prompt, pmask, comp, cmask, group_size=group_size, lean=lean)[0]
    assert (untempered - got)[cmask].abs().max() > 1e-2  # the temperature is not a no-op
    with pytest.raises(ValueError, match="temperature must be > 0"):
        sequence_logprobs(model, prompt, pmask, comp, cmask, temperature=0.0)
