"""ASearcher (paper asearcher) at toy scale: turn limits and asynchronous RL for a multi-turn search agent.

Per seed: one warm start (recipes/search_agent.yaml with train.steps=0 and a 138k-parameter model:
1500 SFT steps on search traces, 30% of which stop searching too early), then three RL runs of 40
steps from that same checkpoint, all on questions of 1-5 hops and all evaluated greedily at a turn
limit of 8 on 20 held-out questions per hop count:

    limit3         synchronous GRPO, training turn limit 3 (a k-hop question needs k + 1 turns)
    limit8         synchronous GRPO, training turn limit 8
    limit8_async   the same with async_rl.enabled (producer thread, max_staleness 2)

The claims checked: (1) a small training turn limit restricts what RL teaches on long questions
(compare limit3 and limit8 on 3-5 hops); (2) asynchronous rollouts raise steps per second at the same
accuracy after the same number of updates (compare limit8 and limit8_async; and latency_sync vs
latency_async, where each turn's search calls take 0.1 s of wall time, as web search does, for 20
steps). Runs are sequential (one heavy process at a time) and go to runs/asearcher. README.md reads
the numbers.

    python experiments/asearcher/run.py [--seeds 3]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sweeps import ROOT, mean_ci, rlx, sweep_args  # noqa: E402

HERE = Path(__file__).resolve().parent
RECIPE = "recipes/search_agent.yaml"
HOPS = range(1, 6)
# everything not named here is as in the recipe (the machine is 2 shared cores: a 138k-parameter model)
SMALL = ["env.max_hops=5", "eval.per_hop=20", "eval.max_turns=8", "train.checkpoint_every=0"]
WARM = ["model.tiny.hidden_size=64", "model.tiny.num_layers=2", "model.tiny.intermediate_size=256",
        "model.tiny.max_position=112", "train.steps=0", "warm_start.steps=1500"]
RL = ["model.tiny=null", "warm_start.steps=0", "train.steps=40"]
CONDITIONS = {
    "limit3": ["rollout.turns.max_turns=3"],
    "limit8": ["rollout.turns.max_turns=8"],
    "limit8_async": ["rollout.turns.max_turns=8", "async_rl.enabled=true", "async_rl.max_staleness=2"],
}
# the regime asynchrony is for: every turn's search calls take 0.1 s of wall time (no CPU), 20 steps
LATENCY = ["rollout.turns.max_turns=8", "rollout.turns.tool_latency_s=0.1", "train.steps=20"]
LATENCY_CONDITIONS = {"latency_sync": LATENCY,
                      "latency_async": [*LATENCY, "async_rl.enabled=true", "async_rl.max_staleness=2"]}


def main() -> int:
    args = sweep_args(__doc__, "runs/asearcher")
    out = ROOT / args.out
    summaries: dict[str, dict[str, dict]] = {}
    for seed in range(args.seeds):
        warm = out / "warm" / f"seed_{seed}"
        if not (warm / "summary.json").exists():
            rlx("train", RECIPE, f"seed={seed}", *SMALL, *WARM, "--out", str(warm))
        for name, extra in {**CONDITIONS, **LATENCY_CONDITIONS}.items():
            d = out / name / f"seed_{seed}"
            if not (d / "summary.json").exists():
                rlx("train", RECIPE, f"seed={seed}", *SMALL, *RL, f"model.path={warm / 'model'}", *extra,
                    "--out", str(d))
            summaries.setdefault(name, {})[f"seed_{seed}"] = json.loads((d / "summary.json").read_text())
    (HERE / "summaries.json").write_text(json.dumps(summaries, indent=2, sort_keys=True) + "\n")
    seeds = list(summaries["limit8"])

    def col(name: str, key: str) -> str:
        return mean_ci([summaries[name][s][key] for s in seeds], digits=3)

    lines = ["| condition | " + " | ".join(f"{k} hops" for k in HOPS) + " | all | turns | steps/s | staleness |",
             "|---" * (len(HOPS) + 5) + "|",
             "| warm start (before RL) | " + " | ".join(col("limit8", f"eval/before/accuracy_hop{k}") for k in HOPS)
             + f" | {col('limit8', 'eval/accuracy_before')} | {col('limit8', 'eval/before/turns_mean')} | | |"]
    for name in CONDITIONS:
        lines.append(f"| {name} | " + " | ".join(col(name, f"eval/accuracy_hop{k}") for k in HOPS)
                     + f" | {col(name, 'eval/accuracy')} | {col(name, 'eval/turns_mean')} | "
                     f"{col(name, 'train/steps_per_second')} | {col(name, 'async/staleness_mean')} |")
    def paired(a: str, b: str, keys: list[str], ratio: bool = False) -> str:
        """Per-seed difference (or ratio) of a and b, each the mean over `keys`, then mean [CI] over seeds."""
        def v(name: str, s: str) -> float:
            return sum(summaries[name][s][k] for k in keys) / len(keys)
        return mean_ci([v(a, s) / v(b, s) if ratio else v(a, s) - v(b, s) for s in seeds], digits=3)

    def gain(name: str, keys: list[str]) -> str:
        """Per-seed change from the warm start (the run's own before-RL evaluation), mean [CI] over seeds."""
        return mean_ci([sum(summaries[name][s][k] - summaries[name][s][k.replace("eval/", "eval/before/")]
                            for k in keys) / len(keys) for s in seeds], digits=3)

    long_hops = [f"eval/accuracy_hop{k}" for k in (3, 4, 5)]
    lines += ["", "Paired by seed (the same warm start):", "",
              "| comparison | value |", "|---|---|",
              f"| limit8 - limit3, accuracy on 3-5 hops | {paired('limit8', 'limit3', long_hops)} |",
              f"| limit8 - limit3, accuracy on 1-2 hops | "
              f"{paired('limit8', 'limit3', ['eval/accuracy_hop1', 'eval/accuracy_hop2'])} |",
              f"| limit8 - warm start, accuracy on 3-5 hops | {gain('limit8', long_hops)} |",
              f"| limit3 - warm start, accuracy on 3-5 hops | {gain('limit3', long_hops)} |",
              f"| limit8_async - limit8, accuracy (all hops) | {paired('limit8_async', 'limit8', ['eval/accuracy'])} |",
              f"| limit8_async / limit8, steps per second | "
              f"{paired('limit8_async', 'limit8', ['train/steps_per_second'], ratio=True)} |",
              f"| latency_async / latency_sync, steps per second | "
              f"{paired('latency_async', 'latency_sync', ['train/steps_per_second'], ratio=True)} |",
              f"| latency_async - latency_sync, accuracy (all hops) | "
              f"{paired('latency_async', 'latency_sync', ['eval/accuracy'])} |"]
    lines += ["", "Tool latency 0.1 s per turn of search calls, turn limit 8, 20 RL steps:", "",
              "| condition | accuracy (all hops) | steps/s | staleness | time waiting for rollouts (s/step) |",
              "|---|---|---|---|---|"]
    for name in LATENCY_CONDITIONS:
        lines.append(f"| {name} | {col(name, 'eval/accuracy')} | {col(name, 'train/steps_per_second')} | "
                     f"{col(name, 'async/staleness_mean')} | {col(name, 'time/rollout_mean')} |")
    text = (f"Produced by `python experiments/asearcher/run.py --seeds {args.seeds}`: greedy held-out accuracy "
            f"(20 questions per hop count, turn limit 8 at evaluation) after 40 RL steps (8 questions x 8 "
            f"episodes), mean [95% bootstrap interval] over {len(seeds)} seeds; steps/s is RL steps per "
            "second of wall time on the shared 2-core machine (other jobs were running).\n\n" + "\n".join(lines) + "\n")
    (HERE / "results.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
