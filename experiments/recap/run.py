"""RECAP (paper recap): RL on one skill while replaying another, with fixed or RECAP-adapted shares.

Target skill: multiplication ('*'); general skill to keep: addition and subtraction ('+-').
Conditions (recipes/arith_recap.yaml: GRPO, 500 steps, 8 prompts x 8 samples, from assets/arith-base),
SEEDS seeds each:

    target_only   every prompt is a multiplication (task.weights=[1,0], fixed): no replay
    fixed         half and half, fixed (plain replay)
    recap         shares moved each step toward the task whose recent accuracy is low or volatile
                  (window 10 steps, temperature 0.5, floor 0.1)

Scored on held-out problems of each skill: '*' by the run's own final evaluation (800 problems: the held-out space of 2-digit products has 825),
'+-' by `rlx eval RUN/model --task arithmetic task.operators=+- --n 1000 --samples 0`.
Runs go to runs/recap.   python experiments/recap/run.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recap.report import write_report  # noqa: E402
from sweeps import ROOT, rlx, run_conditions, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent


def _eval(model: str, ops: str, path: Path) -> float:
    if not path.exists():
        rlx("eval", model, "--task", "arithmetic", f"task.operators={ops}", "--n", "1000", "--samples", "0",
            "--json", str(path))
    return json.loads(path.read_text())["eval/accuracy"]


def main() -> int:
    args = sweep_args(__doc__, "runs/recap")
    common = ["train.checkpoint_every=0", "eval.every=0", "eval.n=800"]
    conditions = {"target_only": [*common, "task.reweight=fixed", "task.weights=[1,0]"],
                  "fixed": [*common, "task.reweight=fixed"],
                  "recap": common}
    out = ROOT / args.out
    code = run_conditions(conditions, "recipes/arith_recap.yaml", seeds=args.seeds, out=out, dest=HERE,
                          metrics=["eval/accuracy"], parallel=args.parallel)
    general = {name: {r.name: _eval(str(r / "model"), "+-", r / "general_eval.json")
                      for r in sorted((out / name).glob("seed_*"))} for name in conditions}
    base_general = _eval("assets/arith-base", "+-", out / "base_general_eval.json")
    (HERE / "general.json").write_text(json.dumps({"base": base_general, **general}, indent=2, sort_keys=True) + "\n")
    print(write_report())
    return code


if __name__ == "__main__":
    raise SystemExit(main())
