"""StealthRL (paper stealthrl): does GRPO against a detector ensemble make paraphrases undetectable while
keeping their meaning, and does the evasion transfer to a detector family held out of training?

Stages (toy world of rlx.tasks.stealth; detectors fit with detector_seed 0, thresholds at 1% FPR):
    warm start   rlx sft recipes/stealth_sft.yaml -> runs/stealthrl/sft (once)
    attack       recipes/stealth_grpo.yaml (GRPO + LoRA) from it, SEEDS seeds per condition:
                   heldout_binoculars   reward: classifier + curvature; Binoculars held out (the recipe)
                   heldout_classifier   reward: curvature + Binoculars; the classifier held out
Rows, each scored on all 141 held-out machine texts against 1000 fresh human texts per seed:
    no attack       the machine texts themselves
    SFT paraphrase  the warm-start paraphraser, greedy
    StealthRL       the attacked paraphraser of that seed, greedy
Metrics per detector: TPR at the calibrated 1%-FPR threshold, AUROC (humans vs texts); semantic
preservation; attack success (preserved and flagged by no training detector) and the same against the
held-out detector. Mean [95% bootstrap interval] over seeds (for the first two rows the seeds only change
the human evaluation texts).

    python experiments/stealthrl/run.py [--seeds 3] [--only heldout_binoculars]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx  # noqa: E402

HERE = Path(__file__).resolve().parent
CONDITIONS = {"heldout_binoculars": ["classifier", "curvature"], "heldout_classifier": ["curvature", "binoculars"]}
DETS = ("classifier", "curvature", "binoculars")
N_HUMAN = 1000


def paraphrases(model_dir: Path, task, problems) -> list[str]:
    import torch

    from rlx.models import ModelConfig, load_policy
    from rlx.rollout import make_engine
    from rlx.rollout.base import SamplingParams

    torch.set_num_threads(1)
    model, tok = load_policy(ModelConfig(path=str(model_dir)))
    gen = make_engine("hf", model, tok).generate([task.prompt(p) for p in problems],
                                                 SamplingParams(temperature=0.0, max_new_tokens=16, n=1), seed=0)
    return list(gen.texts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--out", default="runs/stealthrl")
    ap.add_argument("--only", nargs="*", default=list(CONDITIONS))
    args = ap.parse_args()
    out = ROOT / args.out
    sft = out / "sft"
    if not (sft / "model" / "config.json").is_file():
        rlx("sft", "recipes/stealth_sft.yaml", "--out", str(sft))
    for name in args.only:
        rlx("sweep", "recipes/stealth_grpo.yaml", f"model.path={sft / 'model'}",
            f"task.train_detectors=[{','.join(CONDITIONS[name])}]", "train.checkpoint_every=0", "eval.every=0",
            "--seeds", str(args.seeds), "--out", str(out / name), "--skip-done")

    from rlx.tasks import StealthConfig
    from rlx.tasks.stealth import StealthTask, attack_report, fit_detectors

    detectors = fit_detectors(StealthConfig())  # identical for every condition (detector_seed 0)
    results: dict = {}
    for name in args.only:
        task = StealthTask(StealthConfig(train_detectors=CONDITIONS[name]), detectors=detectors)
        problems = task.heldout(141)
        sources = [p.question for p in problems]
        rows = {"no attack": {s: sources for s in range(args.seeds)},
                "SFT paraphrase": {s: paraphrases(sft / "model", task, problems) for s in range(args.seeds)},
                "StealthRL": {s: paraphrases(out / name / f"seed_{s}" / "model", task, problems)
                              for s in range(args.seeds)}}
        results[name] = {row: {s: attack_report(task, sources, texts[s], task.human_texts(N_HUMAN, seed=100 + s))
                               for s in texts} for row, texts in rows.items()}
        results[name]["examples"] = {row: list(zip(sources[:5], texts[0][:5])) for row, texts in rows.items()}
    (HERE / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")

    lines = [f"Produced by `python experiments/stealthrl/run.py --seeds {args.seeds}` (141 held-out machine texts, "
             f"{N_HUMAN} fresh human texts per seed; mean [95% bootstrap interval] over {args.seeds} seeds; "
             "TPR at the threshold calibrated to 1% FPR on 1000 other human texts).", ""]
    for name in args.only:
        held = [d for d in DETS if d not in CONDITIONS[name]][0]
        lines += [f"## {name}: reward from {' + '.join(CONDITIONS[name])}; {held} held out", "",
                  "| row | " + " | ".join(f"TPR@1%FPR {d}{' (held out)' if d == held else ''}" for d in DETS)
                  + " | mean TPR (training) | " + " | ".join(f"AUROC {d}" for d in DETS)
                  + " | mean AUROC (3) | preserved | attack success (training ensemble) | attack success (held out) |",
                  "|---" * 13 + "|"]
        for row in ("no attack", "SFT paraphrase", "StealthRL"):
            reps = list(results[name][row].values())
            col = lambda k: mean_ci([r[k] for r in reps], digits=3)  # noqa: E731
            mean_tpr = [sum(r[f"tpr/{d}"] for d in CONDITIONS[name]) / len(CONDITIONS[name]) for r in reps]
            lines.append(f"| {row} | " + " | ".join(col(f"tpr/{d}") for d in DETS) + f" | {mean_ci(mean_tpr, 3)} | "
                         + " | ".join(col(f"auroc/{d}") for d in DETS)
                         + f" | {mean_ci([sum(r[f'auroc/{d}'] for d in DETS) / 3 for r in reps], 3)}"
                         + f" | {col('preserve')} | {col('asr')} | {col('asr_heldout')} |")
        fpr = {d: mean_ci([r[f"fpr/{d}"] for r in results[name]["no attack"].values()], 3) for d in DETS}
        lines += ["", "Realised FPR on the fresh humans: " + ", ".join(f"{d} {v}" for d, v in fpr.items()) + ".",
                  "", "Examples (source -> seed 0 output): " + "; ".join(
            f"{row}: " + ", ".join(f"`{a}` -> `{b}`" for a, b in ex[:3])
            for row, ex in results[name]["examples"].items() if row != "no attack"), ""]
    (HERE / "results.md").write_text("\n".join(lines) + "\n")
    print((HERE / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
