"""The loop scores the policy its rollouts sample: softmax(logits / temperature), as TRL and verl do
(the unit test of `sequence_logprobs(temperature=...)` is in test_fast_logits.py)."""

import json

from rlx.cli import main


def test_rollouts_at_temperature_match_the_trainer(base_model_dir, tmp_path):
    """At temperature 0.7 the engine's and the trainer's log-probs of the same tokens agree, so the logged
    mismatch is float rounding, not the temperature (an untempered trainer showed ~1e-2 here)."""
    args = ["train", "recipes/arith_grpo.yaml", f"model.path={base_model_dir}", "train.steps=2", "eval.n=4",
            "eval.every=0", "rollout.prompts_per_step=4", "rollout.group_size=4", "train.checkpoint_every=0",
            "rollout.temperature=0.7", "objective.tis_cap=2.0"]
    assert main([*args, "--out", str(tmp_path / "t")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "t" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "rollout/mismatch_kl" in r]
    assert len(rows) == 2
    for r in rows:
        assert r["rollout/mismatch_kl"] < 1e-9 and abs(r["rollout/max_importance_ratio"] - 1) < 1e-4
        assert abs(r["train/tis/weight_mean"] - 1) < 1e-4
