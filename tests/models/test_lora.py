"""LoRA: sft trains adapters and saves the merged model; targets that cannot work are refused at start."""

import json

import pytest
import torch
from safetensors.torch import load_file

from rlx.cli import main
from rlx.config import ConfigError
from rlx.models import LoraConfig, TinyModelConfig, build_tiny_model, char_tokenizer, load_pretrained
from rlx.models.lora import wrap_lora

TINY = ["model.tiny.hidden_size=32", "model.tiny.num_layers=1", "model.tiny.intermediate_size=64", "train.steps=3",
        "train.batch_size=4", "eval.n=4", "eval.every=0", "train.checkpoint_every=0"]


def _tiny(tie: bool = True):
    return build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, intermediate_size=64, tie_embeddings=tie),
                            char_tokenizer(), seed=0)


def test_sft_trains_only_the_adapters_and_saves_the_merged_model(tmp_path):
    """model.lora was ignored by sft: every weight trained and config.yaml still said lora."""
    out = tmp_path / "lora"
    assert main(["sft", "recipes/arith_sft.yaml", *TINY, "model.lora.r=4", "model.lora.target_modules=[q_proj,v_proj]",
                 "--out", str(out)]) == 0
    base = _tiny()  # the recipe's initial weights (seed 0)
    merged = load_file(str(out / "model" / "model.safetensors"))
    changed = {k for k, v in base.state_dict().items() if k in merged and not torch.equal(merged[k], v)}
    assert changed and changed <= {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight"}
    model, _ = load_pretrained(str(out / "model"))
    assert not any("lora" in n for n, _ in model.named_parameters())  # a plain HF model
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train/steps"] == 3


def test_a_tied_embedding_target_is_refused():
    """Merging an lm_head adapter wrote its delta into the shared table: the saved model's logits differed from
    the trained model's by up to 6.05."""
    with pytest.raises(ConfigError, match=r"\['lm_head'\] share the tied embedding table"):
        wrap_lora(_tiny(tie=True), LoraConfig(target_modules=["q_proj", "lm_head"]))
    peft_model = wrap_lora(_tiny(tie=False), LoraConfig(target_modules=["q_proj", "lm_head"]))
    assert any("lm_head" in n and "lora" in n for n, _ in peft_model.named_parameters())


def test_a_target_that_matches_nothing_is_refused():
    with pytest.raises(ConfigError, match=r"\['qproj'\] match no module .*'q_proj'"):
        wrap_lora(_tiny(), LoraConfig(target_modules=["qproj"]))


def test_an_odd_head_dimension_is_refused_at_load(tmp_path, capsys):
    """hidden 12 / 4 heads = 3: rotary embeddings crashed after the run directory was made."""
    assert main(["sft", "recipes/arith_sft.yaml", "model.tiny.hidden_size=12", "model.tiny.num_heads=4",
                 "model.tiny.num_kv_heads=4", "--out", str(tmp_path / "r")]) == 2
    assert "hidden_size / num_heads = 3 must be even" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_pear_with_a_utility_free_cadv_is_refused(tmp_path, capsys):
    assert main(["sft", "recipes/arith_sft.yaml", *TINY, "train.cadv.mode=ipo", "train.cadv.utility=0",
                 "train.pear.level=token", "--out", str(tmp_path / "r")]) == 2
    assert "train.cadv.utility: 0 drops" in capsys.readouterr().err


def test_the_search_agent_refuses_lora(tmp_path, capsys):
    """It trains every weight: model.lora was silently ignored."""
    assert main(["train", "recipes/search_agent.yaml", "model.lora.r=4", "--out", str(tmp_path / "r")]) == 2
    assert "model.lora: the search agent trains every weight" in capsys.readouterr().err
