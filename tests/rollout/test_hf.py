"""The hf engine: Generation invariants, EOS, stop strings, length, seeds, logprobs vs teacher forcing."""

from __future__ import annotations

import pytest
import torch

from rlx.config import ConfigError
from rlx.rollout import HFEngine, SamplingParams, make_engine
from rollout_helpers import EOS, PROMPTS, teacher_forced_logprobs, tiny_model


def check_invariants(gen, tok, prompts, n):
    pad = tok.pad_token_id
    N, T = gen.completion_ids.shape
    assert N == len(prompts) * n and gen.prompt_ids.shape[0] == N
    # left padding: mask is False...False True...True, pad where False
    pm = gen.prompt_mask.long()
    assert torch.all(pm[:, 1:] >= pm[:, :-1])
    assert torch.all(gen.prompt_ids[~gen.prompt_mask] == pad)
    # rows of one prompt are contiguous and hold that prompt's tokens
    for i, p in enumerate(prompts):
        want = tok(p)["input_ids"]
        for r in range(i * n, (i + 1) * n):
            assert gen.prompt_ids[r][gen.prompt_mask[r]].tolist() == want
    # right padding of completions: mask is a prefix, pad and logprob 0 after it
    cm = gen.completion_mask.long()
    assert torch.all(cm[:, 1:] <= cm[:, :-1])
    assert torch.all(gen.completion_ids[~gen.completion_mask] == pad)
    assert torch.all(gen.logprobs[~gen.completion_mask] == 0)
    assert torch.all(gen.logprobs[gen.completion_mask] <= 0)
    assert gen.logprobs.dtype == torch.float32
    # EOS only as the last masked token; "stop" exactly for rows that emitted it (no stop strings here)
    for r in range(N):
        k = int(cm[r].sum())
        ids = gen.completion_ids[r, :k].tolist()
        assert EOS not in ids[:-1]
        assert (gen.finish_reasons[r] == "stop") == (k > 0 and ids[-1] == EOS)
        assert gen.texts[r] == tok.decode(ids, skip_special_tokens=True)
        assert "</s>" not in gen.texts[r]


def test_invariants_and_eos(eosy):
    model, tok = eosy
    eng = HFEngine(model, tok)
    gen = eng.generate(PROMPTS, SamplingParams(n=5, max_new_tokens=12), seed=0)
    check_invariants(gen, tok, PROMPTS, 5)
    reasons = set(gen.finish_reasons)
    assert reasons == {"stop", "length"}, reasons  # with p(EOS) ~ 17%/step both happen among 20 rows
    lengths = gen.completion_mask.sum(-1)
    assert torch.all(lengths[[r == "length" for r in gen.finish_reasons]] == 12)
    assert len(set(lengths.tolist())) > 3  # rows end at varied lengths


def test_all_rows_done_stops_early():
    model, tok = tiny_model(eos_bias=100.0)
    gen = HFEngine(model, tok).generate(PROMPTS, SamplingParams(n=2, max_new_tokens=20), seed=0)
    assert gen.completion_ids.shape == (8, 1)  # EOS at step 0 everywhere -> the loop ends at once
    assert gen.completion_ids.eq(EOS).all() and gen.completion_mask.all()
    assert gen.finish_reasons == ("stop",) * 8 and gen.texts == ("",) * 8


def test_length_when_no_eos():
    model, tok = tiny_model(eos_bias=-100.0)
    gen = HFEngine(model, tok).generate(PROMPTS, SamplingParams(n=3, max_new_tokens=7), seed=0)
    check_invariants(gen, tok, PROMPTS, 3)
    assert gen.completion_ids.shape == (12, 7) and gen.completion_mask.all()
    assert gen.finish_reasons == ("length",) * 12
    specials = set(tok.all_special_ids)  # one char per token, special tokens dropped from texts
    assert [len(t) for t in gen.texts] == [sum(i not in specials for i in r) for r in gen.completion_ids.tolist()]


def test_stop_strings(plain):
    model, tok = plain
    eng = HFEngine(model, tok)
    greedy = SamplingParams(temperature=0, max_new_tokens=16)
    base = eng.generate(PROMPTS, greedy, seed=0)
    text = base.texts[0]
    assert len(text) == 16 and base.finish_reasons[0] == "length"
    for stop in (text[3], text[4:6]):  # one token, and a string spanning two tokens
        at = text.find(stop)
        gen = eng.generate(PROMPTS, greedy.model_copy(update={"stop": [stop]}), seed=0)
        assert gen.texts[0] == text[:at]  # cut before the stop string
        assert gen.finish_reasons[0] == "stop"
        # the mask runs through the token that completed the stop string, nothing after
        assert int(gen.completion_mask[0].sum()) == at + len(stop)
        assert gen.completion_ids[0, : at + len(stop)].tolist() == base.completion_ids[0, : at + len(stop)].tolist()
        for r in range(1, len(PROMPTS)):  # other rows: stopped iff the stop string occurs in their text
            full = base.texts[r]
            cut = full.find(stop)
            assert gen.texts[r] == (full[:cut] if cut >= 0 else full)
            assert gen.finish_reasons[r] == ("stop" if cut >= 0 else "length")


def test_seeded_determinism_and_no_global_rng(eosy):
    model, tok = eosy
    eng = HFEngine(model, tok)
    params = SamplingParams(n=4, max_new_tokens=10, top_p=0.9)
    state = torch.get_rng_state()
    a = eng.generate(PROMPTS, params, seed=7)
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never touched
    torch.manual_seed(123)  # and does not matter
    b = eng.generate(PROMPTS, params, seed=7)
    c = eng.generate(PROMPTS, params, seed=8)
    for f in ("prompt_ids", "completion_ids", "completion_mask", "logprobs"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    assert a.texts == b.texts and a.finish_reasons == b.finish_reasons
    assert a.texts != c.texts


@pytest.mark.parametrize("n", [1, 3])
def test_logprobs_match_teacher_forcing(eosy, n):
    model, tok = eosy
    gen = HFEngine(model, tok).generate(PROMPTS, SamplingParams(n=n, max_new_tokens=12), seed=3)
    assert not gen.completion_mask.all()  # some rows ended early (padding after EOS is exercised)
    ref = teacher_forced_logprobs(model, gen)
    assert (gen.logprobs - ref).abs().max().item() < 1e-5


def test_temperature_and_truncation_logprobs(eosy):
    model, tok = eosy
    eng = HFEngine(model, tok)
    # temperature 0.7, no truncation: log_softmax(logits / 0.7) of the teacher-forced pass
    gen = eng.generate(PROMPTS, SamplingParams(n=2, temperature=0.7, max_new_tokens=10), seed=1)
    ref = teacher_forced_logprobs(model, gen, temperature=0.7)
    assert (gen.logprobs - ref).abs().max().item() < 1e-5
    assert (gen.logprobs - teacher_forced_logprobs(model, gen)).abs().max().item() > 1e-2  # T=1 differs
    # top-k 5: the tempered logprob minus the log of the kept mass (the renormalised distribution)
    gen = eng.generate(PROMPTS, SamplingParams(n=2, top_k=5, max_new_tokens=10), seed=1)
    ids = torch.cat([gen.prompt_ids, gen.completion_ids], 1)
    mask = torch.cat([gen.prompt_mask, gen.completion_mask], 1).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    p = gen.prompt_ids.shape[1]
    logits = logits[:, p - 1 : -1].float()
    top5 = logits.topk(5, -1).values
    kept_mass = top5.logsumexp(-1) - logits.logsumexp(-1)  # log of the kept probability mass
    ref = teacher_forced_logprobs(model, gen) - kept_mass
    ref = ref.masked_fill(~gen.completion_mask, 0.0)
    assert (gen.logprobs - ref).abs().max().item() < 1e-5
    assert torch.all(gen.completion_ids[gen.completion_mask].unsqueeze(-1) != -1)
    in_top5 = (logits.gather(2, gen.completion_ids.unsqueeze(2)).squeeze(2) >= top5[..., -1])
    assert in_top5[gen.completion_mask].all()


@pytest.mark.parametrize("eos_bias", [0.0, 0.7])
def test_greedy_equals_hf_generate(eos_bias):
    # bias 0.7 puts EOS near the top of this random model's flat logits: greedy rows end at 4 and 2 tokens
    model, tok = tiny_model(eos_bias=eos_bias, seed=1)
    gen = HFEngine(model, tok).generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=12), seed=0)
    enc = tok(PROMPTS, padding=True, return_tensors="pt", padding_side="left")
    with torch.no_grad():
        out = model.generate(**enc, do_sample=False, max_new_tokens=12, eos_token_id=EOS, pad_token_id=0,
                             output_scores=True, return_dict_in_generate=True)
    hf = out.sequences[:, enc["input_ids"].shape[1]:]
    assert gen.completion_ids.shape == hf.shape
    assert torch.equal(gen.completion_ids, hf)  # HF pads finished rows with pad too
    scores = torch.stack(out.scores, 1).float().log_softmax(-1)  # greedy: untempered logits
    ref = scores.gather(2, hf.unsqueeze(2)).squeeze(2).masked_fill(~gen.completion_mask, 0.0)
    assert (gen.logprobs - ref).abs().max().item() < 1e-5
    if eos_bias:  # rows end at different steps: padding after EOS is compared too
        assert gen.finish_reasons == ("length", "stop", "length", "stop")


def test_top_k_1_equals_greedy(eosy):
    model, tok = eosy
    eng = HFEngine(model, tok)
    greedy = eng.generate(PROMPTS, SamplingParams(temperature=0, max_new_tokens=12), seed=0)
    topk1 = eng.generate(PROMPTS, SamplingParams(top_k=1, temperature=1.5, n=2, max_new_tokens=12), seed=5)
    assert torch.equal(topk1.completion_ids, greedy.completion_ids.repeat_interleave(2, 0))
    assert torch.equal(topk1.logprobs, torch.zeros_like(topk1.logprobs))  # point mass


def test_sync_weights_and_training_mode(plain):
    model, tok = plain
    other, _ = tiny_model(seed=9)
    eng = make_engine("hf", model, tok)
    params = SamplingParams(temperature=0, max_new_tokens=6)
    want = HFEngine(other, tok).generate(PROMPTS, params, seed=0)
    eng.sync_weights(other)
    assert eng.generate(PROMPTS, params, seed=0).texts == want.texts
    other.train()
    eng.generate(PROMPTS, params, seed=0)
    assert other.training  # restored after generation


def test_bad_input(plain):
    model, tok = plain
    eng = HFEngine(model, tok)
    with pytest.raises(ConfigError, match="prompts"):
        eng.generate([], SamplingParams(), seed=0)
    with pytest.raises(ConfigError, match="max_new_tokens = 60"):
        eng.generate(PROMPTS, SamplingParams(max_new_tokens=60), seed=0)  # 6 + 60 > 64 positions
    with pytest.raises(ConfigError, match="rollout.engine"):
        make_engine("sglang", model, tok)  # type: ignore[arg-type]


def test_stop_table_keeps_the_leading_space_of_sentencepiece_tokens():
    """Metaspace decoders drop a token's leading space when it is decoded alone ("▁Q" -> "Q"), so the
    per-token table missed stops like " Q" until the end of the row; tokens are now read in context."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "</s>": 1, "a": 2, "x": 3, "▁Q": 4, "▁x": 5, "Q": 6}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    t.pre_tokenizer, t.decoder = pre_tokenizers.Metaspace(), decoders.Metaspace()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, unk_token="<unk>", eos_token="</s>", pad_token="</s>")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=7, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, max_position_embeddings=32))
    table = HFEngine(model, tok)._table()
    assert tok.decode([4]) == "Q" and table[4] == " Q" and table[6] == "Q" and table[3] == "x"
    assert table[1] == ""  # special tokens add no text


def test_a_stop_string_split_over_byte_tokens_is_seen_while_decoding():
    """Byte-level BPE splits "→" into three tokens that each decode alone to U+FFFD, so the per-token table
    never contained the stop: rows ran on to EOS or max_new_tokens and every token after the stop stayed in
    the completion mask (loss and KL on text the reward never saw)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from rlx.rollout.hf import _StopStrings

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {"<eos>": 0, **{ch: i + 1 for i, ch in enumerate(sorted(alphabet))}}
    t = Tokenizer(models.BPE(vocab, merges=[]))
    t.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    t.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<eos>", pad_token="<eos>")
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=32))
    ids = tok("4→ then more", add_special_tokens=False)["input_ids"]
    assert len(ids) == 1 + 3 + 10 and tok.decode(ids[1:2]) == "\ufffd"  # one token per byte
    stops = _StopStrings(HFEngine(model, tok)._table(), ["→", " then"], rows=2,
                         decode=lambda r: tok.decode(r, skip_special_tokens=True))
    seen = [stops.update([0, 1], [tok_id, tok_id]) for tok_id in ids[:4]]
    assert seen == [[], [], [], [0, 1]]  # at the token that completes "→", not later
    assert stops.texts[0] == "4→" and stops.partial == [False, False]
    stops2 = _StopStrings(HFEngine(model, tok)._table(), [" then"], rows=1,
                          decode=lambda r: tok.decode(r, skip_special_tokens=True))
    hits = [bool(stops2.update([0], [i])) for i in ids]
    assert hits.index(True) == 8  # "4→ then": the ASCII stop after a split character, at its last byte


def test_llama_style_bos_once_and_the_same_ids_as_sft():
    """A tokenizer that adds BOS, with a chat template that writes BOS into the text (Llama-3, Gemma): the
    engine's prompt starts with one BOS, not two, and SFT encodes the same prompt to the same ids. A
    tokenizer without a pad token pads with EOS instead of raising."""
    from tokenizers import processors

    from rlx.models.tokenizer import encode_prompt, prompt_completion_rows

    model, tok = tiny_model()
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.chat_template = "<s>[U]{{ messages[0]['content'] }}"
    tok.pad_token = None
    chat = tok.apply_chat_template([{"role": "user", "content": "12+34="}], tokenize=False, add_generation_prompt=True)
    assert tok(chat)["input_ids"][:2] == [1, 1]  # what a plain tokenizer call gives
    want = [1] + tok("[U]12+34=", add_special_tokens=False)["input_ids"]
    assert encode_prompt(tok, chat) == want
    assert encode_prompt(tok, "5*6=") == [1] + tok("5*6=", add_special_tokens=False)["input_ids"]  # BOS added once
    gen = HFEngine(model, tok).generate([chat, "5*6="], SamplingParams(max_new_tokens=3, n=2), seed=0)
    assert gen.prompt_ids[0][gen.prompt_mask[0]].tolist() == want
    assert torch.all(gen.prompt_ids[~gen.prompt_mask] == EOS)
    rows, labels = prompt_completion_rows(tok, [chat], ["49"])
    assert rows[0][:len(want)] == want and labels[0][:len(want)] == [-100] * len(want)


def test_generate_ids_takes_the_ids_as_given(eosy):
    """`generate_ids` equals `generate` on the encoded prompts, and uses ids that no text would encode to
    (a multi-turn context of concatenated segments) as they are."""
    from rlx.models.tokenizer import encode_prompt

    model, tok = eosy
    eng = HFEngine(model, tok)
    params = SamplingParams(max_new_tokens=5, n=2)
    a = eng.generate(PROMPTS, params, seed=3)
    b = eng.generate_ids([encode_prompt(tok, p) for p in PROMPTS], params, seed=3)
    assert torch.equal(a.completion_ids, b.completion_ids) and a.texts == b.texts
    odd = [[1, 1, 20, 21], [22]]  # a doubled BOS: encode_prompt of any text gives one
    g = eng.generate_ids(odd, params, seed=0)
    assert g.prompt_ids[0][g.prompt_mask[0]].tolist() == odd[0] and g.prompt_ids[2][g.prompt_mask[2]].tolist() == odd[1]
