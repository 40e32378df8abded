"""RAST (paper rast): does a small model's RL logit shift, added to a larger base, act like RL on it?

Models (all 2-operand arithmetic, one char tokenizer):

    large base   assets/arith-base: 4 layers x 128 (1.05M non-embedding parameters), the shipped base
    large RL     the default recipe (recipes/arith_grpo.yaml, GRPO 500 steps) from it, SEEDS seeds
    small base   experiments/rast/small_sft.yaml (2 layers x 96, 0.30M) stopped at SMALL_STEPS SFT
                 steps so that it is weaker than the large base (at 3000 steps it is stronger)
    small RL     the same GRPO recipe from the small base, SEEDS seeds

and per seed k, RAST(alpha) = large base decoded with z_L + alpha * (z_smallRL_k - z_smallbase)
(`rlx.rollout.rast.RastEngine`). Everything is scored by greedy accuracy on the N held-out problems
(2430 = the task's whole held-out space). Intervals are 95% percentile bootstraps over seeds;
"recovery" = (RAST - large base) / (large RL - large base), the paper's measure.

The paper's hypothesis check, path coverage (PCR): teacher-force a base model on its RL model's
greedy completions and count how often its argmax is the RL model's token.

    python experiments/rast/run.py                     # ~15 min on 2 cores; runs go to runs/rast
    python experiments/rast/run.py --seeds 5 --alphas 0.5 1 1.5

Writes experiments/rast/results.json and results.md (the numbers quoted in docs/FEATURES.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx  # noqa: E402

HERE = Path(__file__).resolve().parent


def train_models(out: Path, seeds: int, small_steps: int, parallel: int) -> None:
    small = out / "small-base"
    if not (small / "model" / "config.json").exists():
        if rlx("sft", str(HERE / "small_sft.yaml"), f"train.steps={small_steps}", "--out", str(small)) != 0:
            raise SystemExit("small base SFT failed")
    grpo = "recipes/arith_grpo.yaml"
    for name, extra in (("small-rl", [f"model.path={small / 'model'}"]), ("large-rl", [])):
        if rlx("sweep", grpo, *extra, "--seeds", str(seeds), "--out", str(out / name), "--parallel", str(parallel),
               "--skip-done") != 0:
            raise SystemExit(f"{name} sweep failed")


def evaluate_all(out: Path, seeds: int, alphas: list[float], n: int) -> dict:
    import torch

    from rlx.evaluation.config import EvalConfig
    from rlx.evaluation.evaluate import evaluate
    from rlx.models import ModelConfig, load_policy
    from rlx.rollout import HFEngine, RastEngine, SamplingParams
    from rlx.rollout.rast import path_coverage
    from rlx.tasks import make_task
    from rlx.tasks.config import ArithmeticConfig

    torch.set_num_threads(1)
    task = make_task(ArithmeticConfig())
    problems = task.heldout(n)
    ecfg = EvalConfig(n=n, samples=0, max_new_tokens=8, batch_size=512)

    def load(path):
        return load_policy(ModelConfig(path=str(path)))[0].eval()

    large, tok = load_policy(ModelConfig(path=str(ROOT / "assets" / "arith-base")))
    large.eval()
    small_base = load(out / "small-base" / "model")

    correct: dict[str, np.ndarray] = {}  # per-problem greedy correctness, for paired intervals over problems

    def acc(engine, key: str | None = None) -> float:
        result = evaluate(engine, task, problems, ecfg, tok)
        if key is not None:
            correct[key] = result.greedy_correct
        return result.metrics["eval/accuracy"]

    def greedy(model, count: int = 500):
        prompts = [task.prompt(p, tok) for p in problems[:count]]
        return HFEngine(model, tok).generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=8), seed=0)

    res: dict = {"n": n, "alphas": alphas, "large_base": acc(HFEngine(large, tok), "large_base"),
                 "small_base": acc(HFEngine(small_base, tok)), "seeds": {}}
    print(f"large base {res['large_base']:.4f}  small base {res['small_base']:.4f}", flush=True)
    for k in range(seeds):
        small_rl = load(out / "small-rl" / f"seed_{k}" / "model")
        large_rl = load(out / "large-rl" / f"seed_{k}" / "model")
        row = {"small_rl": acc(HFEngine(small_rl, tok)), "large_rl": acc(HFEngine(large_rl, tok), f"large_rl_{k}"),
               "pcr_large": path_coverage(large, greedy(large_rl)),
               "pcr_small": path_coverage(small_base, greedy(small_rl))}
        for a in alphas:
            row[f"rast_{a:g}"] = acc(RastEngine(large, tok, small_rl=small_rl, small_base=small_base, alpha=a),
                                     f"rast_{a:g}_{k}")
        res["seeds"][str(k)] = row
        print(f"seed {k}: " + "  ".join(f"{key} {v:.4f}" for key, v in row.items()), flush=True)
    res["paired_vs_large_base"] = paired_over_problems(correct, seeds, alphas)
    return res


def paired_over_problems(correct: dict[str, np.ndarray], seeds: int, alphas: list[float]) -> dict:
    """Mean over seeds of (model - large base) per problem, with a 95% bootstrap interval over problems:
    the uncertainty from which problems were drawn, which the interval over seeds leaves out."""
    rng = np.random.default_rng(0)
    base = correct["large_base"].astype(float)
    idx = rng.integers(0, len(base), size=(10_000, len(base)))
    out = {}
    for name in ["large_rl", *(f"rast_{a:g}" for a in alphas)]:
        diff = np.mean([correct[f"{name}_{k}"].astype(float) - base for k in range(seeds)], axis=0)  # [problems]
        boot = diff[idx].mean(axis=1)
        out[name] = [float(diff.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))]
    return out


def summarize(res: dict) -> str:
    from rlx.evaluation.stats import probability_of_improvement

    seeds = list(res["seeds"].values())
    base = res["large_base"]

    ci = mean_ci

    lines = [f"Greedy accuracy on {res['n']} held-out arithmetic problems; mean [95% bootstrap interval] over "
             f"{len(seeds)} seeds (the seed of each GRPO run).", "",
             "| model | accuracy | minus large base | recovery of large RL's gain |", "|---|---|---|---|",
             f"| large base (assets/arith-base) | {base:.4f} | 0 | 0 |",
             f"| small base ({'SFT'}) | {res['small_base']:.4f} | {res['small_base'] - base:+.4f} | - |",
             f"| small RL | {ci([s['small_rl'] for s in seeds])} | - | - |",
             f"| large RL (direct GRPO) | {ci([s['large_rl'] for s in seeds])} | "
             f"{ci([s['large_rl'] - base for s in seeds])} | 1 |"]
    gain = np.mean([s["large_rl"] - base for s in seeds])
    for a in res["alphas"]:
        key = f"rast_{a:g}"
        x = [s[key] for s in seeds]
        rec = np.mean([s[key] - base for s in seeds]) / gain if gain > 0 else float("nan")
        lines.append(f"| RAST alpha {a:g} (large base + small RL shift) | {ci(x)} | {ci([v - base for v in x])} | "
                     f"{rec:.2f} |")
    paired = res["paired_vs_large_base"]
    lines += ["", "Paired over problems (mean over seeds of the per-problem difference to the large base, 95% bootstrap "
              "interval over the held-out problems): " + "; ".join(f"{k} {v[0]:+.4f} [{v[1]:+.4f}, {v[2]:+.4f}]"
                                                                   for k, v in paired.items()) + "."]
    best = max(res["alphas"], key=lambda a: np.mean([s[f"rast_{a:g}"] for s in seeds]))
    p = probability_of_improvement(np.array([[s[f"rast_{best:g}"]] for s in seeds]),
                                   np.array([[s["large_rl"]] for s in seeds]))
    lines += ["", f"P(RAST alpha {best:g} > large RL) over seeds = {float(p):.2f}.", "",
              "Path coverage (the base model's argmax on its RL model's greedy completions, 500 problems): "
              f"large {ci([s['pcr_large'] for s in seeds])}, small {ci([s['pcr_small'] for s in seeds])}."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--alphas", type=float, nargs="+", default=[0.5, 1.0, 1.5])
    ap.add_argument("--small-steps", type=int, default=1500, help="SFT steps of the small base")
    ap.add_argument("--n", type=int, default=2430, help="held-out problems (2430 = all)")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/rast")
    args = ap.parse_args()
    out = ROOT / args.out
    train_models(out, args.seeds, args.small_steps, args.parallel)
    res = evaluate_all(out, args.seeds, args.alphas, args.n)
    (HERE / "results.json").write_text(json.dumps(res, indent=2) + "\n")
    table = summarize(res)
    (HERE / "results.md").write_text("Produced by `python " + " ".join(["experiments/rast/run.py", *sys.argv[1:]])
                                     + "`.\n\n" + table)
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
