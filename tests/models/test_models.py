from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlx.config import ConfigError
from rlx.models import ModelConfig, TinyModelConfig, char_tokenizer, count_parameters, load_policy, save_model

import pytest


def test_char_tokenizer_round_trip_and_specials():
    tok = char_tokenizer()
    ids = tok("12+3=\n", add_special_tokens=False)["input_ids"]
    assert len(ids) == 6 and tok.decode(ids) == "12+3=\n"
    assert (tok.pad_token_id, tok.bos_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert len(tok) == 100  # 4 specials + 95 printable ASCII + newline
    assert tok("é", add_special_tokens=False)["input_ids"] == [3]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_tiny_model_saves_and_loads_with_from_pretrained(tmp_path, arch):
    cfg = ModelConfig(tiny=TinyModelConfig(arch=arch, hidden_size=32, num_layers=2, num_heads=4, num_kv_heads=2,
                                           intermediate_size=64))
    model, tok = load_policy(cfg, seed=3)
    save_model(model, tok, tmp_path / "ck")
    assert (tmp_path / "ck" / "model.safetensors").is_file()
    again = AutoModelForCausalLM.from_pretrained(tmp_path / "ck")
    tok2 = AutoTokenizer.from_pretrained(tmp_path / "ck")
    x = torch.tensor([tok2("7*8=", add_special_tokens=False)["input_ids"]])
    assert torch.equal(model(x).logits, again(x).logits)
    # the same code path users with network take: ModelConfig(path=...)
    model3, _ = load_policy(ModelConfig(path=str(tmp_path / "ck")))
    assert torch.equal(model3(x).logits, model(x).logits)


def test_seeded_init_is_deterministic():
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2,
                                           intermediate_size=64))
    a, _ = load_policy(cfg, seed=1)
    b, _ = load_policy(cfg, seed=1)
    c, _ = load_policy(cfg, seed=2)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb) and not torch.equal(pa, pc)
    assert count_parameters(a) == pa.numel()


def test_bad_paths_and_corrupt_checkpoint(tmp_path):
    with pytest.raises(ConfigError, match="no Hugging Face checkpoint"):
        load_policy(ModelConfig(path=str(tmp_path / "missing")))
    cfg = ModelConfig(tiny=TinyModelConfig(hidden_size=32, num_layers=1, num_heads=2, num_kv_heads=2,
                                           intermediate_size=64))
    model, tok = load_policy(cfg)
    save_model(model, tok, tmp_path / "ck")
    (tmp_path / "ck" / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ConfigError, match="model.path"):
        load_policy(ModelConfig(path=str(tmp_path / "ck")))


def test_model_config_needs_exactly_one_source():
    with pytest.raises(Exception, match="exactly one"):
        ModelConfig()
    with pytest.raises(Exception, match="divisible"):
        TinyModelConfig(hidden_size=30, num_heads=4)


def test_a_recipe_run_from_another_directory_loads_the_shipped_checkpoint(tmp_path, monkeypatch):
    """`model.path: assets/arith-base` from outside the checkout is the shipped model, not a hub repo id
    (it used to go to huggingface.co); hub ids and paths that exist locally are left alone."""
    from rlx.models.load import load_pretrained, resolve_model_path

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = resolve_model_path("assets/arith-base")
    assert path.endswith("/assets/arith-base") and (Path(path) / "config.json").is_file()
    model, _ = load_pretrained("assets/arith-base")
    assert model.config.num_hidden_layers == 4
    assert resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    (tmp_path / "assets" / "arith-base").mkdir(parents=True)  # a local directory of that name wins
    assert resolve_model_path("assets/arith-base") == "assets/arith-base"
    home = Path.home()
    assert resolve_model_path("~/x") == str(home / "x")
