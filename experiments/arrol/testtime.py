"""Test-time use of the arrol quality head: start 16 samples, keep the head's likeliest 8 after 2 tokens, vote.

For each seed's final checkpoint of runs/arrol/arrol (policy weights and its online-trained head), on
all 2430 held-out problems, sampling at the recipe's temperature (1.0):

    mean@8        mean accuracy of 8 plain samples
    maj@8         majority vote of those 8 (the answer most samples give)
    head mean@8   mean accuracy of the 8 of 16 samples the head rates likeliest after 2 tokens
    head maj@8    majority vote of those 8
    head wvote@8  their vote weighted by the head's predicted success p

The paper reports that the head's weighting improves test-time-scaling accuracy. Writes
experiments/arrol/testtime.md and testtime.json.

    python experiments/arrol/testtime.py            # after experiments/arrol/run.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci  # noqa: E402

HERE = Path(__file__).resolve().parent
KEYS = ["mean@8", "maj@8", "head mean@8", "head maj@8", "head wvote@8"]


def evaluate_run(run: Path, n_problems: int, batch: int, seed: int) -> dict[str, float]:
    from rlx.config import build_config
    from rlx.evaluation.vote import weighted_vote
    from rlx.models import ModelConfig, load_policy
    from rlx.rewards.safe import safe_score
    from rlx.rollout import make_engine
    from rlx.sampling.prune import Pruner
    from rlx.tasks import make_task
    from rlx.train import rlvr
    from rlx.train.collect import sampling_params

    cfg = build_config(rlvr.Config, yaml.safe_load((run / "config.yaml").read_text()))
    model, tok = load_policy(ModelConfig(path=str(run / "model"), threads=1))
    model.eval()
    ckpt = run / "checkpoints" / (run / "checkpoints" / "LATEST").read_text().strip()
    pruner = Pruner(cfg.prune, model.config.hidden_size, cfg.rollout.group_size)
    pruner.load_state_dict(torch.load(ckpt / "trainer_state.pt", weights_only=False)["extra"]["prune"])
    task = make_task(cfg.task)
    engine = make_engine("hf", model, tok)
    g, m = cfg.rollout.group_size, cfg.prune.candidates
    problems = task.heldout(n_problems)
    hits = {k: [] for k in KEYS}

    def verdicts(texts, probs):
        return [bool(safe_score(task.score, t, p)[0].correct) for t, p in zip(texts, probs)]

    for start in range(0, len(problems), batch):
        chunk = problems[start:start + batch]
        prompts = [task.prompt(p, tok) for p in chunk]
        plain = engine.generate(prompts, sampling_params(cfg.rollout, n=g), seed=seed * 7919 + start)
        kept = engine.generate(prompts, sampling_params(cfg.rollout, n=m), seed=seed * 7919 + start + 1,
                               prune=pruner.top_plan())
        weights = pruner.kept_p.tolist()
        for i, prob in enumerate(chunk):
            rows = range(i * g, (i + 1) * g)
            for name, gen, w in (("", plain, None), ("head ", kept, weights)):
                texts = [gen.texts[r] for r in rows]
                ok = verdicts(texts, [prob] * g)
                answers = [task.extract_answer(t) for t in texts]
                hits[f"{name}mean@8"].append(float(np.mean(ok)))
                j = weighted_vote(answers)
                hits[f"{name}maj@8"].append(float(j is not None and ok[j]))
                if w is not None:
                    j = weighted_vote(answers, [w[r] for r in rows])
                    hits["head wvote@8"].append(float(j is not None and ok[j]))
    return {k: float(np.mean(v)) for k, v in hits.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/arrol/arrol")
    ap.add_argument("--n", type=int, default=2430)
    ap.add_argument("--batch", type=int, default=128)
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = sorted(p for p in (ROOT / args.runs).glob("seed_*") if (p / "summary.json").exists())
    if not seeds:
        raise SystemExit(f"no finished runs under {args.runs}: run experiments/arrol/run.py first")
    res = {}
    for run in seeds:
        res[run.name] = evaluate_run(run, args.n, args.batch, seed=int(run.name.split("_")[1]))
        print(run.name, res[run.name], flush=True)
    (HERE / "testtime.json").write_text(json.dumps(res, indent=2) + "\n")
    lines = ["| measure | accuracy | minus maj@8 (paired by seed) |", "|---|---|---|"]
    for k in KEYS:
        d = mean_ci([r[k] - r["maj@8"] for r in res.values()]) if k != "maj@8" else "0"
        lines.append(f"| {k} | {mean_ci([r[k] for r in res.values()])} | {d} |")
    (HERE / "testtime.md").write_text(
        f"Produced by `python experiments/arrol/testtime.py` ({args.n} held-out problems, the final checkpoint and "
        f"quality head of each of {len(res)} arrol runs; mean [95% bootstrap interval] over runs).\n\n"
        + "\n".join(lines) + "\n")
    print((HERE / "testtime.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
