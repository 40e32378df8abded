"""Every language-model recipe runs end to end on a tiny config in seconds (CPU, no downloads)."""

import json
from pathlib import Path

import pytest
import yaml

from rlx.cli import main

ROOT = Path(__file__).resolve().parents[1]
RLVR = sorted(p for p in (ROOT / "recipes").glob("*.yaml")
              if yaml.safe_load(p.read_text()).get("kind") == "rlvr" and "vllm" not in p.stem)
TINY = ["train.steps=2", "eval.n=4", "eval.every=0", "rollout.prompts_per_step=2", "rollout.group_size=4",
        "train.checkpoint_every=1", "train.micro_batch_size=4"]


@pytest.mark.parametrize("recipe", RLVR, ids=[p.stem for p in RLVR])
def test_rlvr_recipe_runs(recipe, tiny_model_dir, tmp_path):
    overrides = [f"model.path={tiny_model_dir}", *TINY]
    if yaml.safe_load(recipe.read_text()).get("d3s"):
        overrides.append("rollout.group_size=8")
    if yaml.safe_load(recipe.read_text()).get("difficulty"):  # a random model solves nothing: keep pass rate 0
        overrides += ["difficulty.candidates=6", "difficulty.min_pass=0"]
    if yaml.safe_load(recipe.read_text())["task"]["name"] == "code":  # long prompts; programs run in the sandbox
        overrides += ["rollout.max_new_tokens=16", "eval.max_new_tokens=16", "rollout.reward_workers=2"]
    assert main(["train", str(recipe), *overrides, "--out", str(tmp_path / "run")]) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {"eval/accuracy", "eval/accuracy_before", "time/train_seconds"} <= summary.keys()
    if yaml.safe_load(recipe.read_text()).get("difficulty"):
        assert summary["difficulty/candidates"] == 6 and 1 <= summary["difficulty/pool_size"] <= 6
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "time/rollout" in r]
    assert [r["step"] for r in steps] == [1, 2]
    assert all(r["rollout/mismatch_kl"] < 1e-6 for r in steps if "rollout/mismatch_kl" in r)
    assert (tmp_path / "run" / "model" / "config.json").is_file()
    assert any((tmp_path / "run" / "plots").glob("*.png"))


def test_lora_and_kl_switches(tiny_model_dir, tmp_path):
    args = ["train", "recipes/arith_grpo.yaml", f"model.path={tiny_model_dir}", *TINY, "model.lora.r=4",
            "objective.kl_coef=0.05", "--out", str(tmp_path / "lora")]
    assert main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "lora" / "metrics.jsonl").read_text().splitlines()]
    assert any("train/kl/ref" in r for r in rows)
    assert (tmp_path / "lora" / "checkpoints" / "step_00000002" / "model" / "adapter_config.json").is_file()


def test_fp8_rollout_flow_shows_mismatch_and_unified_removes_it(tiny_model_dir, tmp_path):
    kls = {}
    for flow in ("fp8_rollout", "fp8_unified"):
        out = tmp_path / flow
        assert main(["train", "recipes/arith_grpo.yaml", f"model.path={tiny_model_dir}", *TINY,
                     f"train.precision_flow={flow}", "--out", str(out)]) == 0
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        kls[flow] = max(r["rollout/mismatch_kl"] for r in rows if "rollout/mismatch_kl" in r)
    assert kls["fp8_rollout"] > 1e-7 and kls["fp8_unified"] < 1e-9, kls


def test_unified_fp8_scores_the_reference_in_fp8_too(tiny_model_dir, tmp_path):
    """Before the first update the policy is its reference, so the KL is 0 in either flow. The reference used to
    be scored in full precision while the unified flow scored the policy in FP8: KL 0.0022 at step 1, a pull
    toward the full-precision model that LoRA runs (reference = adapters off, also FP8) did not have."""
    out = tmp_path / "u"
    assert main(["train", "recipes/arith_grpo.yaml", f"model.path={tiny_model_dir}", *TINY, "train.steps=1",
                 "objective.kl_coef=0.05", "train.precision_flow=fp8_unified", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    kl = [r["train/kl/ref"] for r in rows if "train/kl/ref" in r]
    assert kl == [0.0]


def test_sft_recipe_runs(tmp_path):
    args = ["sft", "recipes/arith_sft.yaml", "model.tiny.hidden_size=32", "model.tiny.num_layers=1",
            "model.tiny.intermediate_size=64", "train.steps=3", "eval.n=4", "eval.every=0",
            "--out", str(tmp_path / "sft")]
    assert main(args) == 0
    summary = json.loads((tmp_path / "sft" / "summary.json").read_text())
    assert summary["train/steps"] == 3 and 0.0 <= summary["eval/accuracy"] <= 1.0


def test_group_scales_and_self_consistency_reach_the_metrics(tiny_model_dir, tmp_path):
    args = ["train", "recipes/arith_spark.yaml", f"model.path={tiny_model_dir}", *TINY,
            "objective.uncertainty_alpha=0.2", "objective.dispersion_floor=0.5", "objective.perception_coef=0.01",
            "--out", str(tmp_path / "r")]
    assert main(args) == 0
    rows = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "time/rollout" in r]
    assert all(0 <= r["rollout/pseudo_label_agreement"] <= 1 for r in steps)
    trained = [r for r in steps if "train/dispersion_mean" in r]  # steps with a batch
    assert trained
    assert all(0 < r["train/uncertainty_scale_mean"] <= 1 and 0 <= r["train/dispersion_mean"] <= 1 for r in trained)
    assert all(r["train/perception_kl"] >= 0 and r["train/perception_coef"] == 0.01 for r in trained)


def test_the_gpu_recipe_runs_unchanged_on_cpu_with_local_stand_ins(tmp_path):
    """recipes/gsm8k_qwen_vllm.yaml, with only the parts that need a GPU or the network swapped by overrides:
    a tiny Qwen2 built from a config (with a Qwen-style chat template) for the hub model, a local
    GSM8K-format directory (`#### answer`) for openai/gsm8k, the hf engine for vLLM, float32 on CPU.
    Everything else (boxed answers through the chat template, math-verify scoring, the dapo preset,
    warmup) runs as a user with a GPU would run it."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rlx.models import char_tokenizer, save_model

    tok = char_tokenizer()
    tok.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                         "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    model_dir = save_model(Qwen2ForCausalLM(cfg), tok, tmp_path / "qwen-tiny")
    data = tmp_path / "gsm8k"
    data.mkdir()
    for split, rng in (("train", range(0, 40)), ("test", range(40, 50))):
        (data / f"{split}.jsonl").write_text("".join(
            json.dumps({"question": f"Tom has {i} apples and buys 3. How many now?",
                        "answer": f"{i} + 3 = {i + 3}\n#### {i + 3}"}) + "\n" for i in rng))
    out = tmp_path / "run"
    overrides = [f"model.path={model_dir}", "model.device=cpu", "model.dtype=float32", "rollout.engine=hf",
                 f"task.dataset={data}", "task.dataset_config=null", "rollout.max_new_tokens=8",
                 "eval.max_new_tokens=8", "eval.every=0", "eval.batch_size=16", *TINY]
    assert main(["train", str(ROOT / "recipes" / "gsm8k_qwen_vllm.yaml"), *overrides, "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train/steps"] == 2 and {"eval/accuracy", "eval/accuracy_before"} <= summary.keys()
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "time/rollout" in r] == [1, 2]
    assert (out / "model" / "config.json").is_file() and (out / "checkpoints" / "LATEST").is_file()


def test_skipped_steps_still_advance_the_lr_schedule(tiny_model_dir, tmp_path):
    """Dynamic sampling on a model that solves nothing keeps no group, so every step is skipped; the LR
    schedule counts RL steps all the same, so the LR at step s does not depend on how many were skipped."""
    import torch

    out = tmp_path / "run"
    assert main(["train", str(ROOT / "recipes" / "arith_grpo.yaml"), f"model.path={tiny_model_dir}", *TINY,
                 "train.steps=3", "objective.dynamic_sampling=true", "objective.dynamic_sampling_max_rounds=0",
                 "train.optim.warmup_steps=10", "--out", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r.get("train/skipped_step") for r in rows if "time/rollout" in r] == [1.0, 1.0, 1.0]
    state = torch.load(out / "checkpoints" / "step_00000003" / "trainer_state.pt", weights_only=False)
    assert state["scheduler"]["last_epoch"] == 3


def test_no_scoring_pass_when_the_update_is_on_policy_and_kl_is_off(tiny_model_dir, tmp_path, monkeypatch):
    """reinforce_pp puts KL in the reward, but with kl_coef 0 there is nothing to score: no extra forward."""
    from rlx.train import rlvr

    calls = []
    real = rlvr.score_batch
    monkeypatch.setattr(rlvr, "score_batch", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = ["train", str(ROOT / "recipes" / "arith_reinforce_pp.yaml"), f"model.path={tiny_model_dir}", *TINY]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert calls == []
    assert main([*args, "objective.kl_coef=0.05", "--out", str(tmp_path / "b")]) == 0
    assert len(calls) == 2 * 2  # old and reference log-probs, each step


def test_resume_before_the_first_checkpoint_starts_over(tiny_model_dir, tmp_path):
    """A run killed after its step-0 evaluation row but before its first checkpoint: `--resume` used to
    raise FileNotFoundError, and the run directory (holding a row) refused a fresh start too."""
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 0, "eval/accuracy": 0.123}\n{"step": 1, "time/rollout": 9.9}\n')
    args = ["train", str(ROOT / "recipes" / "arith_grpo.yaml"), f"model.path={tiny_model_dir}", *TINY]
    assert main([*args, "--out", str(out)]) == 2  # holds a run: needs --resume
    assert main([*args, "--out", str(out), "--resume"]) == 0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "time/rollout" in r] == [1, 2]
    assert not any(r.get("eval/accuracy") == 0.123 or r.get("time/rollout") == 9.9 for r in rows)
