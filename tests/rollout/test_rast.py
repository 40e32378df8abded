"""RAST (paper rast): the combined logits, decoding from them, path coverage, and `rlx eval --rast-*`."""

import json

import pytest
import torch
from rollout_helpers import PROMPTS, tiny_model

from rlx.config import ConfigError
from rlx.rollout import HFEngine, RastEngine, SamplingParams
from rlx.rollout.rast import path_coverage, rast_logits


@pytest.fixture(scope="module")
def trio():
    """(large, small RL, small base, tokenizer): three different random models with one char tokenizer."""
    large, tok = tiny_model(eos_bias=3.0, seed=1, layers=3, width=48)
    small_rl, _ = tiny_model(eos_bias=3.0, seed=2)
    small_base, _ = tiny_model(eos_bias=3.0, seed=3)
    return large, small_rl, small_base, tok


def test_rast_logits_hand_values():
    large = torch.tensor([[1.0, 2.0, 3.0]])
    rl, base = torch.tensor([[0.0, 1.0, 5.0]]), torch.tensor([[1.0, 1.0, 2.0]])
    # z_L + 2 * (z_RL - z_base) = [1 - 2, 2 + 0, 3 + 6]
    assert torch.equal(rast_logits(large, rl, base, 2.0), torch.tensor([[-1.0, 2.0, 9.0]]))
    assert torch.equal(rast_logits(large, rl, base, 0.0), large)


def test_rast_logits_vocab_padding():
    """Large vocab 4, small vocab 2: ids 2 and 3 get no shift."""
    large = torch.zeros(1, 4)
    out = rast_logits(large, torch.tensor([[3.0, 1.0]]), torch.tensor([[1.0, 1.0]]), 1.0)
    assert out.tolist() == [[2.0, 0.0, 0.0, 0.0]]


def _gen(engine, temperature=1.0, n=4, seed=7):
    return engine.generate(PROMPTS, SamplingParams(temperature=temperature, max_new_tokens=6, n=n), seed=seed)


def test_alpha_zero_decodes_the_large_model_alone(trio):
    large, rl, base, tok = trio
    for temperature in (0.0, 1.0):
        want = _gen(HFEngine(large, tok), temperature)
        got = _gen(RastEngine(large, tok, small_rl=rl, small_base=base, alpha=0.0), temperature)
        assert torch.equal(got.completion_ids, want.completion_ids)
        torch.testing.assert_close(got.logprobs, want.logprobs, atol=1e-6, rtol=0)


def test_identical_pair_adds_nothing(trio):
    large, rl, _, tok = trio
    want = _gen(HFEngine(large, tok))
    got = _gen(RastEngine(large, tok, small_rl=rl, small_base=rl, alpha=1.5))  # z_RL - z_base = 0 exactly
    assert torch.equal(got.completion_ids, want.completion_ids)
    torch.testing.assert_close(got.logprobs, want.logprobs, atol=1e-6, rtol=0)


def test_base_as_large_with_alpha_one_is_the_small_rl_model(trio):
    """z_base + 1 * (z_RL - z_base) = z_RL: RAST on the small base itself reproduces the RL model."""
    _, rl, base, tok = trio
    want = _gen(HFEngine(rl, tok), temperature=0.0)
    got = _gen(RastEngine(base, tok, small_rl=rl, small_base=base, alpha=1.0), temperature=0.0)
    assert torch.equal(got.completion_ids, want.completion_ids)
    torch.testing.assert_close(got.logprobs, want.logprobs, atol=1e-5, rtol=0)


def _teacher_logits(model, gen):
    ids = torch.cat([gen.prompt_ids, gen.completion_ids], 1)
    mask = torch.cat([gen.prompt_mask, gen.completion_mask], 1).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits
    return logits[:, gen.prompt_ids.shape[1] - 1:-1]  # [N, T, V]: position j predicts completion token j


@pytest.mark.parametrize("fast", [True, False])
def test_sampled_logprobs_equal_the_teacher_forced_combination(trio, fast):
    """Three KV-cached decoders step for step == one full forward of each model, combined afterwards."""
    large, rl, base, tok = trio
    alpha = 0.7
    gen = _gen(RastEngine(large, tok, small_rl=rl, small_base=base, alpha=alpha, fast=fast), temperature=1.0)
    assert gen.completion_mask.sum() > 40 and (~gen.completion_mask).any()  # varied lengths, EOS seen
    z = rast_logits(*(_teacher_logits(m, gen) for m in (large, rl, base)), alpha)
    want = z.log_softmax(-1).gather(2, gen.completion_ids.unsqueeze(2)).squeeze(2).masked_fill(~gen.completion_mask, 0)
    torch.testing.assert_close(gen.logprobs, want, atol=1e-5, rtol=0)


def test_path_coverage():
    rl, tok = tiny_model(seed=4)  # no EOS bias: greedy completions run the full 6 tokens
    gen = _gen(HFEngine(rl, tok), temperature=0.0, n=1)
    assert gen.completion_mask.all()
    assert path_coverage(rl, gen) == 1.0  # greedy tokens are the argmax by definition
    # the last of each row's 6 tokens replaced by a non-argmax one: causal, so only that position misses -> 5/6
    ids = gen.completion_ids.clone()
    ids[:, -1] = (ids[:, -1] + 1) % 100
    assert path_coverage(rl, type(gen)(**{**gen.__dict__, "completion_ids": ids})) == pytest.approx(20 / 24)


def test_bad_input_names_the_field(trio):
    large, rl, base, tok = trio
    with pytest.raises(ConfigError, match="rast.alpha"):
        RastEngine(large, tok, small_rl=rl, small_base=base, alpha=11.0)
    short = tiny_model()[0]
    short.resize_token_embeddings(50)  # fewer ids than the char tokenizer's 100
    with pytest.raises(ConfigError, match="rast.rl: vocabulary of 50"):
        RastEngine(large, tok, small_rl=short, small_base=base)


def test_rlx_eval_with_rast(trio, tmp_path, capsys):
    from rlx.cli import main
    from rlx.models import save_model

    large, rl, base, tok = trio
    for name, m in (("large", large), ("rl", rl), ("base", base)):
        save_model(m, tok, tmp_path / name)
    common = ["eval", str(tmp_path / "large"), "--task", "arithmetic", "--n", "12", "--samples", "0"]
    assert main(common + ["--json", str(tmp_path / "plain.json")]) == 0
    assert main(common + ["--rast-rl", str(tmp_path / "rl"), "--rast-base", str(tmp_path / "base"),
                          "--rast-alpha", "0", "--json", str(tmp_path / "a0.json"), "--out", str(tmp_path / "run")]) == 0
    plain, a0 = (json.loads((tmp_path / f).read_text()) for f in ("plain.json", "a0.json"))
    assert a0["eval/accuracy"] == plain["eval/accuracy"]
    # base = the evaluated model, alpha 1: RAST decodes exactly like the RL model on its own
    rl_texts = tmp_path / "rl.json"
    assert main(["eval", str(tmp_path / "rl"), "--task", "arithmetic", "--n", "12", "--samples", "0",
                 "--json", str(rl_texts)]) == 0
    assert main(common + ["--rast-rl", str(tmp_path / "rl"), "--rast-base", str(tmp_path / "large"),
                          "--json", str(tmp_path / "a1.json")]) == 0
    a1, rl_only = (json.loads((tmp_path / f).read_text()) for f in ("a1.json", "rl.json"))
    assert a1["eval/accuracy"] == rl_only["eval/accuracy"] and a1["eval/format_rate"] == rl_only["eval/format_rate"]
    assert "rast:" in (tmp_path / "run" / "config.yaml").read_text()
    capsys.readouterr()
    assert main(common + ["--rast-rl", str(tmp_path / "rl")]) == 2
    assert "--rast-base" in capsys.readouterr().err
    assert main(common + ["--rast-rl", str(tmp_path / "rl"), "--rast-base", str(tmp_path / "base"),
                          "--rast-alpha", "-1"]) == 2
    assert "rast.alpha" in capsys.readouterr().err
    other = tiny_model(seed=6)[1]
    other.add_tokens(["<extra>"])
    save_model(rl, other, tmp_path / "rl_other_tok")
    assert main(common + ["--rast-rl", str(tmp_path / "rl_other_tok"), "--rast-base", str(tmp_path / "base")]) == 2
    assert "rast.rl: its tokenizer differs" in capsys.readouterr().err


def test_small_models_padded_differently_and_with_a_shorter_context(trio):
    """The RL model's embeddings padded to 128 ids, the base's not: only ids all three models have are
    shifted (it used to be a shape error at the first decode step). A small model whose context is shorter
    than prompt + max_new_tokens is a config error naming it."""
    large, _, base, tok = trio
    out = rast_logits(torch.zeros(1, 4), torch.tensor([[3.0, 1.0, 7.0]]), torch.tensor([[1.0, 1.0]]), 1.0)
    assert out.tolist() == [[2.0, 0.0, 0.0, 0.0]]
    padded = tiny_model(eos_bias=3.0, seed=2)[0]
    padded.resize_token_embeddings(128)
    gen = RastEngine(large, tok, small_rl=padded, small_base=base).generate(
        PROMPTS, SamplingParams(max_new_tokens=4, n=2), seed=0)
    assert gen.completion_ids.shape[0] == 2 * len(PROMPTS)
    short = tiny_model(seed=4)[0]
    short.config.max_position_embeddings = 8
    with pytest.raises(ConfigError, match="rast.base's max_position_embeddings 8"):
        RastEngine(large, tok, small_rl=padded, small_base=short).generate(
            PROMPTS, SamplingParams(max_new_tokens=6), seed=0)
