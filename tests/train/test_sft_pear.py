"""PEAR-weighted SFT (paper pear) wired into the SFT trainer."""

import pytest
import torch

from rlx.cli import main
from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer
from rlx.rundir import read_metrics
from rlx.train.sft import PearConfig, _token_loss, sft_batch


def _model(seed):
    tok = char_tokenizer()
    cfg = TinyModelConfig(hidden_size=32, num_layers=1, num_heads=4, num_kv_heads=2, intermediate_size=64, max_position=64)
    return build_tiny_model(cfg, tok, seed=seed), tok


def test_behavior_equal_to_the_policy_gives_plain_sft():
    model, tok = _model(0)
    batch = sft_batch(tok, ["12+3=", "7*8=", "99-1="], ["15", "56", "98"], "cpu")
    plain, _ = _token_loss(model, batch)
    for level in ("sequence", "token", "block"):
        weighted, m = _token_loss(model, batch, PearConfig(level=level, gamma=0.9, block=2), behavior=model)
        assert abs(weighted.item() - plain.item()) < 1e-6 and abs(m["pear/ess_frac"] - 1.0) < 1e-6


def test_weights_follow_the_policy_over_the_behavior():
    """log pi_beta = 0 (reference data): a completion the policy finds likelier gets the larger weight."""
    model, tok = _model(1)
    batch = sft_batch(tok, ["1+1=", "1+1="], ["2", "9"], "cpu")
    with torch.no_grad():
        logits = model(input_ids=batch["input_ids"]).logits
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), batch["labels"][:, 1:].clamp(min=0),
                                            reduction="none")
    loss, m = _token_loss(model, batch, PearConfig(level="sequence", clip=20.0))
    # sequence weights ~ pi(answer + EOS); the loss is their weighted mean NLL, not the plain mean
    mask = batch["labels"][:, 1:] != -100
    seq = (-nll * mask).sum(1).clamp(-20, 20).exp()
    w = seq[:, None].expand_as(nll)[mask]
    want = (w / w.mean() * nll[mask]).mean()
    assert abs(loss.item() - want.item()) < 1e-5 and m["pear/weight_max"] > 1.0 > m["pear/weight_min"]


def test_behavior_without_a_level_is_a_config_error():
    from rlx.config import ConfigError, build_config
    from rlx.train.sft import Config

    base = {"kind": "sft", "model": {"path": "x"}, "task": {"name": "arithmetic"}}
    with pytest.raises(ConfigError, match="behavior is set but level is off"):
        build_config(Config, {**base, "train": {"pear": {"behavior": "some/model"}}})


def test_sft_recipe_with_pear_runs_and_logs_weights(tmp_path):
    args = ["sft", "recipes/arith_sft.yaml", "model.tiny.hidden_size=32", "model.tiny.num_layers=1",
            "model.tiny.intermediate_size=64", "train.steps=4", "train.log_every=1", "eval.n=8", "eval.every=0",
            "train.pear.level=token", "train.pear.gamma=0.9", "--out", str(tmp_path / "r")]
    assert main(args) == 0
    rows = [r for r in read_metrics(tmp_path / "r" / "metrics.jsonl") if "train/loss" in r]
    assert len(rows) == 4 and all(0 < r["pear/ess_frac"] <= 1 + 1e-5 for r in rows)
