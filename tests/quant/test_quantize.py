import argparse
import copy
import json

import pytest
import torch
from transformers import AutoModelForCausalLM

from rlx.config import ConfigError, build_config
from rlx.models import char_tokenizer, save_model
from rlx.quant import QuantConfig, load_codes, quantize, save_quantized, verify_checkpoint
from rlx.quant import cli as qcli
from rlx.quant.config import METHODS


def _calib():
    g = torch.Generator().manual_seed(0)
    return torch.randint(4, 100, (16, 12), generator=g)


FAST = {"quest": {"quest": {"qat_steps": 2}}, "lqlora": {"lqlora": {"iters": 2, "rank": 2}},
        "qllm": {"qllm": {"steps": 2, "rank": 2}}, "lrqat": {"lrqat": {"steps": 2, "rank": 2}},
        "quantlrm": {"quantlrm": {"alpha_grid": 3}}}


@pytest.mark.parametrize("method", METHODS)
def test_every_method_quantizes_saves_and_reloads(method, tiny, tmp_path):
    model, tok = tiny
    m = copy.deepcopy(model)
    cfg = QuantConfig(method=method, bits=4, group_size=16, **FAST.get(method, {}))
    res = quantize(m, cfg, calib=_calib())
    assert len(res.layers) == 7  # q, k, v, o, gate, up, down; lm_head skipped
    assert "lm_head" not in " ".join(res.layers)
    out = save_quantized(m, tok, res, tmp_path / method)
    assert verify_checkpoint(out) < 1e-6  # every stored weight is rebuilt from its codes
    layers, meta = load_codes(out)
    assert meta["config"]["method"] == method and set(layers) == set(res.layers)
    assert all(lq.qt.codes.max() <= 15 for lq in layers.values())
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    x = torch.randint(4, 100, (2, 9))
    with torch.no_grad():
        a, b = m(x).logits, reloaded(x).logits
    # weight-only methods evaluate identically; QLLM keeps activation fake-quant in memory only
    if method != "qllm":
        assert torch.equal(a, b)


def test_reloaded_checkpoint_evaluates_identically_greedy(tiny, tmp_path):
    model, tok = tiny
    m = copy.deepcopy(model)
    res = quantize(m, QuantConfig(method="gptq", bits=3, group_size=16), calib=_calib())
    out = save_quantized(m, tok, res, tmp_path / "g")
    reloaded = AutoModelForCausalLM.from_pretrained(out).eval()
    ids = torch.tensor([[1, 20, 21, 22]])
    kw = dict(max_new_tokens=8, do_sample=False, pad_token_id=0)
    assert torch.equal(m.generate(ids, **kw), reloaded.generate(ids, **kw))


def test_quantize_changes_weights_to_grid(tiny):
    model, _ = tiny
    m = copy.deepcopy(model)
    res = quantize(m, QuantConfig(method="rtn", bits=2, group_size=16), calib=_calib())
    w = m.model.layers[0].mlp.up_proj.weight
    assert torch.equal(w, res.layers["model.layers.0.mlp.up_proj"].weight())
    # 2 bits: at most 4 distinct values per (row, group)
    assert len(torch.unique(w[0, :16])) <= 4
    assert res.metrics["quant/avg_bits"] == 2.0


def test_skip_everything_is_an_error(tiny):
    with pytest.raises(ConfigError, match="skip"):
        quantize(copy.deepcopy(tiny[0]), QuantConfig(method="rtn", skip=["model", "lm_head"]), calib=_calib())


def _args(**kw):
    p = argparse.ArgumentParser()
    qcli.add_arguments(p)
    argv = [kw.pop("checkpoint"), "--out", kw.pop("out")]
    for k, v in kw.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    return p.parse_args(argv)


def test_cli_end_to_end_and_bad_input(tiny, tmp_path):
    model, tok = tiny
    ckpt = save_model(model, tok, tmp_path / "base")
    out = tmp_path / "q"
    assert qcli.main(_args(checkpoint=str(ckpt), out=str(out), method="rtn", bits=4, group_size=16, calib_n=8)) == 0
    assert json.loads((out / "quant_config.json").read_text())["config"]["bits"] == 4
    assert verify_checkpoint(out) < 1e-6
    with pytest.raises(ConfigError, match="method"):
        qcli.main(_args(checkpoint=str(ckpt), out=str(out), method="awq"))
    with pytest.raises(ConfigError, match="bits"):
        qcli.main(_args(checkpoint=str(ckpt), out=str(out), bits=9))
    with pytest.raises(ConfigError, match="checkpoint"):
        qcli.main(_args(checkpoint=str(tmp_path / "missing"), out=str(out)))
    # --out used to be replaced whatever it held (a training run's checkpoints and metrics were deleted)
    assert qcli.main(_args(checkpoint=str(ckpt), out=str(out), method="rtn", bits=8, group_size=16, calib_n=8)) == 0
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "metrics.jsonl").write_text("{}\n")
    with pytest.raises(ConfigError, match="not a quantized checkpoint"):
        qcli.main(_args(checkpoint=str(ckpt), out=str(run), method="rtn", bits=4, group_size=16, calib_n=8))
    assert (run / "metrics.jsonl").read_text() == "{}\n" and (run / "checkpoints").is_dir()


def test_cli_config_file_and_flag_precedence(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    p = argparse.ArgumentParser()
    qcli.add_arguments(p)
    a = p.parse_args(["ck", "--out", "o", "--config", str(root / "recipes" / "quant_smollm2_gptq4.yaml"), "--bits", "3"])
    cfg = qcli.config_from_args(a)
    assert (cfg.method, cfg.bits, cfg.group_size, cfg.gptq.act_order, cfg.calib.n) == ("gptq", 3, 128, True, 128)
    a = p.parse_args(["ck", "--out", "o", "--config", str(root / "recipes" / "quant_arith_quest2.yaml")])
    cfg = qcli.config_from_args(a)
    assert (cfg.method, cfg.bits, cfg.quest.qat_steps, cfg.quest.lr_schedule, cfg.quest.loss) == (
        "quest", 2, 1000, "cosine", "distill")
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: gptq\nbitz: 4\n")
    with pytest.raises(ConfigError, match="bitz"):
        qcli.config_from_args(p.parse_args(["ck", "--out", "o", "--config", str(bad)]))


def test_rlx_cli_dispatch_exit_code(tmp_path):
    from rlx.cli import main

    assert main(["quantize", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2


def test_calibration_loss_mask_marks_completion():
    from rlx.quant.calib import calibration_from_texts

    tok = char_tokenizer()
    ids, mask, loss_mask = calibration_from_texts(["1+2=3", "7=7"], tok, 16, prompts=["1+2=", "7="])
    # row 0: '1','+','2','=','3',EOS -> 6 tokens; completion = '3' + EOS at positions 4, 5
    assert mask[0].tolist() == [1, 1, 1, 1, 1, 1]
    assert loss_mask[0].tolist() == [0, 0, 0, 0, 1, 1]
    # row 1: '7','=','7',EOS then 2 pads
    assert mask[1].tolist() == [1, 1, 1, 1, 0, 0] and loss_mask[1].tolist() == [0, 0, 1, 1, 0, 0]
    assert ids[0, 5].item() == tok.eos_token_id and ids[1, 4].item() == tok.pad_token_id


def test_calibration_encodes_prompts_like_rollouts_and_sft():
    """A tokenizer that adds BOS: calibration rows start with the one BOS the engines and SFT put there (they
    used to have none), the loss mask starts after it, and a prompt that is not a prefix is an error."""
    from tokenizers import processors

    from rlx.models.tokenizer import prompt_completion_rows
    from rlx.quant.calib import calibration_from_texts

    tok = char_tokenizer()
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    ids, mask, loss_mask = calibration_from_texts(["1+2=3", "7=7"], tok, 16, prompts=["1+2=", "7="])
    want, labels = prompt_completion_rows(tok, ["1+2=", "7="], ["3", "7"])
    assert want[0][0] == tok.bos_token_id and want[0][1] != tok.bos_token_id
    for i, (row, lab) in enumerate(zip(want, labels)):
        assert ids[i, :len(row)].tolist() == row and int(mask[i].sum()) == len(row)
        assert loss_mask[i, :len(row)].tolist() == [int(x != -100) for x in lab]
    whole, _ = calibration_from_texts(["1+2=3"], tok, 16)
    assert whole[0].tolist() == want[0]  # no prompts: the text encoded like a prompt, then EOS
    assert calibration_from_texts(["1+2=3"], tok, 3)[0][0].tolist() == want[0][:3]  # truncated to seq_len
    with pytest.raises(ValueError, match="not a prefix"):
        calibration_from_texts(["1+2=3"], tok, 16, prompts=["9="])


def test_a_group_size_that_does_not_divide_a_layer_fails_before_anything_changes(tiny):
    """hidden 32, intermediate 64: group 24 divides neither. GPTQ and RSQ used to hit an IndexError mid-model,
    RTN a ValueError, each with some layers already quantized."""
    model, _ = tiny
    m = copy.deepcopy(model)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    ids = torch.randint(4, 90, (4, 12))
    for method in ("gptq", "rsq", "rtn"):
        with pytest.raises(ConfigError, match=r"group_size = 24 must divide .* has 32"):
            quantize(m, QuantConfig(method=method, bits=4, group_size=24), calib=ids)
        assert all(torch.equal(v, before[k]) for k, v in m.state_dict().items())
    quantize(m, QuantConfig(method="rtn", bits=4, group_size=64), calib=ids)  # >= the width: one scale per row


@pytest.mark.parametrize("method", ["rtn", "gptq"])
def test_quantizing_a_tied_output_layer_leaves_the_embeddings_alone(method, tiny, tmp_path):
    """With skip=[] the tied lm_head is quantized too: it gets its own weight first (the embedding table used
    to be quantized with it), and the checkpoint reloads and verifies."""
    model, tok = tiny
    m = copy.deepcopy(model)
    assert m.lm_head.weight is m.model.embed_tokens.weight
    emb = m.model.embed_tokens.weight.detach().clone()
    ids = torch.randint(4, 90, (4, 12))
    res = quantize(m, QuantConfig(method=method, bits=2, group_size=16, skip=[]), calib=ids)
    assert torch.equal(m.model.embed_tokens.weight, emb) and not torch.equal(m.lm_head.weight, emb)
    assert "lm_head" in res.layers and m.config.tie_word_embeddings is False
    save_quantized(m, tok, res, tmp_path / "q")
    assert verify_checkpoint(tmp_path / "q") < 1e-5


def test_lqlora_candidate_bits_are_checked_at_load():
    for bad in ([16], [0, 4], []):
        with pytest.raises(ConfigError, match="candidate_bits"):
            build_config(QuantConfig, {"method": "lqlora", "lqlora": {"candidate_bits": bad}})


def test_quest_needs_no_dividing_group_size(tiny):
    """QuEST keeps one scale per row, so a group_size that divides no layer is no reason to refuse it."""
    model, _ = tiny
    m = copy.deepcopy(model)
    res = quantize(m, QuantConfig(method="quest", bits=4, group_size=24), calib=torch.randint(4, 90, (4, 12)))
    assert res.layers
