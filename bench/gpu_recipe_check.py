"""recipes/gsm8k_qwen_vllm.yaml on a GPU with no network: the recipe's own settings, a model of the real size.

    python bench/gpu_recipe_check.py                 # 3 steps; prints every step's timings and the summary
    python bench/gpu_recipe_check.py --steps 5 --engine vllm
    python bench/gpu_recipe_check.py model.device=cpu rollout.max_new_tokens=4 ...   # extra dotted overrides

What a machine without network cannot fetch is swapped, and nothing else:
  - the hub model -> a randomly initialised Qwen2 with Qwen2.5-0.5B-Instruct's body (24 layers, 896 wide,
    14 heads, 2 KV heads, MLP 4864, rope theta 1e6, tied embeddings) and rlx's char tokenizer with a chat
    template (a random model never writes EOS, so every completion runs the full 512 tokens);
  - openai/gsm8k -> a local directory of GSM8K-format rows (`question`, `answer` ending in `#### N`);
  - train.steps -> --steps, eval.every -> 0 (before/after evaluation still run), and the engine -> --engine
    (default hf: vLLM cannot be installed on a machine without a package registry);
  - dynamic sampling off: a random model earns no reward, so the dapo preset would drop every group, resample
    up to its budget and skip the update; with it off every step generates once and runs the full update.
Everything else (bf16, 32 prompts x 8 samples, 512 new tokens, the dapo preset, micro-batch 8, math-verify
scoring of boxed answers, warmup) is the recipe's. Needs CUDA.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def qwen_half_b(out: Path) -> Path:
    """Qwen2.5-0.5B's architecture, random weights, the char tokenizer; saved as an HF directory."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from rlx.models import char_tokenizer, save_model

    tok = char_tokenizer()
    tok.chat_template = ("{% for m in messages %}<s>{{ m['role'] }}\n{{ m['content'] }}</s>\n{% endfor %}"
                         "{% if add_generation_prompt %}<s>assistant\n{% endif %}")
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                      rope_theta=1e6, tie_word_embeddings=True, bos_token_id=tok.bos_token_id,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return save_model(Qwen2ForCausalLM(cfg), tok, out)


def gsm8k_like(out: Path, n_train: int = 400, n_test: int = 64) -> Path:
    """GSM8K's row format: a word problem and a worked answer ending in `#### N`."""
    rng = random.Random(0)
    out.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        rows = []
        for _ in range(n):
            a, b, c = rng.randint(2, 60), rng.randint(2, 40), rng.randint(2, 9)
            rows.append({"question": f"Sam has {a} marbles and finds {b} more. He then gives away {c}. "
                                     "How many marbles does Sam have now?",
                         "answer": f"{a} + {b} = {a + b}\n{a + b} - {c} = {a + b - c}\n#### {a + b - c}"})
        (out / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--engine", default="hf", choices=["hf", "vllm"])
    ap.add_argument("--out", default=None, help="run directory (default: a temporary one)")
    ap.add_argument("--trace-every", type=float, default=0,
                    help="print every thread's stack to stderr every N seconds (where a slow run spends its time)")
    ap.add_argument("overrides", nargs="*", help="more dotted overrides, applied last (e.g. model.device=cpu)")
    args = ap.parse_args(argv)
    import torch

    if args.trace_every > 0:
        import faulthandler

        faulthandler.dump_traceback_later(args.trace_every, repeat=True)

    if not torch.cuda.is_available() and "model.device=cpu" not in args.overrides:
        raise SystemExit("needs CUDA: the recipe asks for model.device cuda")
    from rlx.cli import main as rlx_main

    with tempfile.TemporaryDirectory() as d:
        model = qwen_half_b(Path(d) / "qwen2.5-0.5b-shape")
        data = gsm8k_like(Path(d) / "gsm8k")
        out = Path(args.out) if args.out else Path(d) / "run"
        overrides = [f"model.path={model}", f"task.dataset={data}", "task.dataset_config=null",
                     f"rollout.engine={args.engine}", f"train.steps={args.steps}", "eval.every=0",
                     "objective.dynamic_sampling=false", *args.overrides]
        gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
        print(f"{gpu}  torch {torch.__version__}\nrlx train recipes/gsm8k_qwen_vllm.yaml "
              + " ".join(overrides), flush=True)
        t0 = time.perf_counter()
        rc = rlx_main(["train", str(ROOT / "recipes" / "gsm8k_qwen_vllm.yaml"), *overrides, "--out", str(out)])
        wall = time.perf_counter() - t0
        rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        cfg = __import__("yaml").safe_load((out / "config.yaml").read_text())
        completions = cfg["rollout"]["prompts_per_step"] * cfg["rollout"]["group_size"]
        keys = ("time/step", "time/rollout", "time/logprobs", "time/update", "rollout/response_len",
                "rollout/truncated_frac", "rollout/reward_mean", "rollout/mismatch_kl", "rollout/max_importance_ratio",
                "train/grad_norm")
        print("\nstep rows (the keys present):")
        for r in rows:
            if "time/rollout" in r:
                print("  " + json.dumps({"step": r["step"], **{k: float(f"{r[k]:.4g}") for k in keys if k in r}}))
                n_tok = r["rollout/response_len"] * completions
                print(f"    generated {n_tok:.0f} tokens in {r['time/rollout']:.2f} s = {n_tok / r['time/rollout']:.0f} tok/s")
        summary = json.loads((out / "summary.json").read_text())
        print("summary: " + json.dumps({k: v for k, v in summary.items() if k.startswith(("eval/", "train/steps"))}))
        print(f"rc {rc}, wall {wall:.1f} s for {args.steps} steps plus before/after evaluation, "
              f"peak GPU memory {torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else 0:.1f} GiB")
        return rc


if __name__ == "__main__":
    sys.exit(main())
