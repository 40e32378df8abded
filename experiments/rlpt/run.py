"""RLPT (paper rlpt): RL on next-segment reasoning over unlabeled text, its transfer to arithmetic, and
whether it is a better start for RLVR than the base model.

(a) RLPT from assets/arith-base (recipes/arith_rlpt.yaml: GRPO, 8 prompts x 8 samples, lr 1e-5,
RLPT_STEPS steps), SEEDS seeds per condition:

    asr_exact, asr_consistent   predict the next number from the text before it ("12+" -> "34",
                                "12+34=" -> "46"); judge exact (verbatim) or consistent (the prediction
                                put in place yields a true equation)
    msr_exact, msr_consistent   predict a masked number from both sides ("12+?=46>" -> "34")

(c) How often the judges disagree: 8 samples (temperature 1, the rollout setting) per problem on 200
held-out RLPT problems from assets/arith-base, scored by each judge (`rlx eval ... --samples 8`, the same
seeded samples); the pass@1 difference is the share of samples that are consistent but not verbatim.

Each model is scored with `rlx eval MODEL --task arithmetic --n 2430 --samples 0` (greedy accuracy on
all 2430 held-out arithmetic problems, which the RLPT corpus never contains; assets/arith-base: 0.3877),
and the consistent-judge models also on RLPT's held-out set with the exact judge (how many rewarded
predictions are not verbatim).

(b) RLPT then GRPO: each seed's asr_consistent / msr_consistent model is trained further with
recipes/arith_grpo.yaml for GRPO_STEPS steps (total RLPT_STEPS + GRPO_STEPS = 500), compared with GRPO
alone for 500 steps from the base: 0.4631 [0.4613, 0.4658] over 3 seeds (experiments/nsr, the same
recipe and evaluation; cited, not rerun). Runs go to runs/rlpt.

    python experiments/rlpt/run.py --parallel 1
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx, run_conditions, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent
RLPT_STEPS, GRPO_STEPS = 250, 250
GRPO_500 = "0.4631 [0.4613, 0.4658]"  # experiments/nsr/results.md, condition grpo
BASE = 0.3877  # assets/arith-base, greedy, all 2430 held-out problems
THEN_GRPO = ["asr_consistent", "msr_consistent"]


def _eval(model: Path, path: Path, task: str, *extra: str, n: int = 2430) -> float:
    if not path.exists():
        rlx("eval", str(model), "--task", task, *extra, "--n", str(n), "--samples", "0", "--json", str(path))
    return json.loads(path.read_text())["eval/accuracy"]


def main() -> int:
    args = sweep_args(__doc__, "runs/rlpt")
    out = ROOT / args.out
    common = [f"train.steps={RLPT_STEPS}", "train.checkpoint_every=0", "eval.every=0", "eval.n=200"]
    conditions = {f"{mode}_{judge}": [*common, f"task.mode={mode}", f"task.judge={judge}"]
                  for mode in ("asr", "msr") for judge in ("exact", "consistent")}
    code = run_conditions(conditions, "recipes/arith_rlpt.yaml", seeds=args.seeds, out=out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    transfer: dict = {}
    verbatim: dict = {}
    for name, overrides in conditions.items():
        for run in sorted((out / name).glob("seed_*")):
            transfer.setdefault(name, {})[run.name] = _eval(run / "model", run / "arithmetic_eval.json", "arithmetic")
            if name.endswith("_consistent"):
                task = [o for o in overrides if o.startswith("task.mode")]
                verbatim.setdefault(name, {})[run.name] = _eval(
                    run / "model", run / "rlpt_exact_eval.json", "rlpt", *task, "task.judge=exact",
                    "--max-new-tokens", "8", n=200)
    then: dict = {}
    for name in THEN_GRPO:
        for run in sorted((out / name).glob("seed_*")):
            dest = out / f"{name}_then_grpo" / run.name
            if not (dest / "summary.json").exists():
                rlx("train", "recipes/arith_grpo.yaml", f"model.path={run / 'model'}", f"seed={run.name[5:]}",
                    f"train.steps={GRPO_STEPS}", "train.checkpoint_every=0", "eval.every=0", "eval.n=200",
                    "--out", str(dest))
            then.setdefault(name, {})[run.name] = _eval(dest / "model", dest / "arithmetic_eval.json", "arithmetic")
    gap: dict = {}
    for mode in ("asr", "msr"):
        for judge in ("exact", "consistent"):
            path = out / f"base_samples_{mode}_{judge}.json"
            if not path.exists():
                rlx("eval", "assets/arith-base", "--task", "rlpt", f"task.mode={mode}", f"task.judge={judge}",
                    "--n", "200", "--samples", "8", "--max-new-tokens", "8", "--json", str(path))
            gap.setdefault(mode, {})[judge] = json.loads(path.read_text())["eval/pass@1"]
    (HERE / "transfer.json").write_text(json.dumps({"rlpt": transfer, "rlpt_exact_rate": verbatim,
                                                    "rlpt_then_grpo": then, "base_sample_pass@1": gap},
                                                   indent=2, sort_keys=True) + "\n")
    summaries = json.loads((HERE / "summaries.json").read_text())
    lines = ["| condition | RLPT held-out accuracy before | after (training judge) | after, exact judge | "
             f"arithmetic accuracy after (before: {BASE}) |", "|---|---|---|---|---|"]
    for name, seeds in summaries.items():
        before = next(iter(seeds.values()))["eval/accuracy_before"]
        exact = mean_ci(list(verbatim[name].values())) if name in verbatim else "(same)"
        lines.append(f"| {name} | {before:.4f} | {mean_ci([s['eval/accuracy'] for s in seeds.values()])} | "
                     f"{exact} | {mean_ci(list(transfer[name].values()))} |")
    lines += ["", f"| {RLPT_STEPS + GRPO_STEPS} steps in all | arithmetic accuracy |", "|---|---|",
              f"| GRPO alone, 500 steps (experiments/nsr, cited) | {GRPO_500} |"]
    lines += [f"| {name} {RLPT_STEPS} + GRPO {GRPO_STEPS} | {mean_ci(list(then[name].values()))} |" for name in then]
    lines += ["", "| assets/arith-base, 8 samples x 200 held-out RLPT problems | pass@1 exact | pass@1 consistent |",
              "|---|---|---|"]
    lines += [f"| {mode} | {g['exact']:.4f} | {g['consistent']:.4f} |" for mode, g in gap.items()]
    (HERE / "results.md").write_text(
        "Produced by `python experiments/rlpt/run.py --parallel 1` (RLPT accuracy on 200 held-out RLPT "
        "problems; arithmetic accuracy greedy on all 2430 held-out arithmetic problems; mean [95% bootstrap "
        f"interval] over {args.seeds} seeds).\n\n" + "\n".join(lines) + "\n")
    print((HERE / "results.md").read_text())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
