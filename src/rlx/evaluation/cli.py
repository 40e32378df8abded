"""`rlx eval CHECKPOINT --task NAME`: greedy accuracy and pass@k of a checkpoint, as JSON and a table.

    rlx eval assets/arith-base --task arithmetic --n 500 --samples 16
    rlx eval runs/q4 --task arithmetic task.max_operands=3 --out runs/q4-eval
    rlx eval assets/arith-base --task arithmetic --rast-rl SMALL_RL --rast-base SMALL_BASE   # paper rast
    rlx eval assets/arith-base --task arithmetic --split generalization --samples 0  # paper seedbench

CHECKPOINT is a Hugging Face directory or hub id (the same path users with network take).
Task options are dotted overrides of the task config (`task.FIELD=VALUE`). With --out, the run
directory contract applies (config.yaml, metrics.jsonl, summary.json, plots/).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Literal

from pydantic import Field

from rlx.config import ConfigError, Section, apply_overrides, build_config, dump_yaml
from rlx.evaluation.config import EvalConfig
from rlx.rollout.rast import RastConfig

__all__ = ["add_arguments", "main", "EvalRunConfig"]


class EvalRunConfig(Section):
    kind: Literal["eval"] = Field("eval", description="what this run directory holds")
    checkpoint: str = Field(description="HF directory or hub id")
    seed: int = Field(0, ge=0, description="sampling seed for pass@k")
    task: dict = Field(description="task config (validated by the task's own schema)")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="evaluation settings")
    device: str = Field("auto", description="auto, cpu or cuda")
    threads: int = Field(0, ge=0, description="torch CPU threads; 0 = 1 (best for small models)")
    rast: RastConfig | None = Field(None, description="decode with a small model pair's RL logit shift (paper rast)")
    split: Literal["heldout", "generalization", "levels"] = Field(
        "heldout", description="heldout: the task's held-out set; generalization / levels: rlx.tasks.splits")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="Hugging Face directory (e.g. assets/arith-base, RUN/model) or hub id")
    p.add_argument("--task", required=True, help="task name: arithmetic, countdown, math, code, ssl, rlpt, video, stealth")
    p.add_argument("overrides", nargs="*", help="task.FIELD=VALUE overrides, e.g. task.max_operands=3")
    p.add_argument("--n", type=int, default=500, help="held-out problems (default 500)")
    p.add_argument("--samples", type=int, default=4, help="samples per problem for pass@k (default 4; 0: greedy only)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature for pass@k")
    p.add_argument("--max-new-tokens", type=int, default=16, help="completion length limit")
    p.add_argument("--batch-size", type=int, default=256, help="prompts per generation call")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda")
    p.add_argument("--out", default=None, help="run directory to write (optional)")
    p.add_argument("--rast-rl", default=None, help="RAST: a small model after RL (needs --rast-base)")
    p.add_argument("--rast-base", default=None, help="RAST: the same small model before RL")
    p.add_argument("--rast-alpha", type=float, default=1.0, help="RAST: shift strength (default 1)")
    p.add_argument("--split", choices=["heldout", "generalization", "levels"], default="heldout",
                   help="heldout: the task's held-out set (default); generalization: the three levels "
                   "in_distribution / harder / new_composition (paper seedbench); levels: those plus the "
                   "operands x digits ladder (paper randcalc); arithmetic tasks only")
    p.add_argument("--json", dest="json_path", default=None, help="also write the result JSON here")


def _config(args) -> tuple[EvalRunConfig, object]:
    bad = [o for o in args.overrides if not o.startswith("task.")]
    if bad:
        raise ConfigError(f"config error: override {bad[0]!r}: rlx eval takes only task.FIELD=VALUE overrides")
    if args.split != "heldout" and args.task != "arithmetic":
        raise ConfigError(f"config error: --split {args.split}: the generalisation levels exist only for --task arithmetic")
    if (args.rast_rl is None) != (args.rast_base is None):
        raise ConfigError("config error: rast: give both --rast-rl and --rast-base (the small model after and before RL)")
    rast = None if args.rast_rl is None else {"rl": args.rast_rl, "base": args.rast_base, "alpha": args.rast_alpha}
    task_data = apply_overrides({"task": {"name": args.task}}, args.overrides)["task"]
    cfg = build_config(EvalRunConfig, {
        "checkpoint": args.checkpoint, "seed": args.seed, "task": task_data, "device": args.device,
        "eval": {"n": args.n, "samples": args.samples, "max_new_tokens": args.max_new_tokens,
                 "batch_size": args.batch_size,  # the temperature is for sampling only: greedy-only runs ignore it
                 **({"temperature": args.temperature} if args.samples > 0 else {})},
        "rast": rast, "split": args.split,
    })
    from rlx.tasks.config import load_task_config

    return cfg, load_task_config(task_data)  # one line per bad field, named task.FIELD


def main(args) -> int:
    cfg, task_cfg = _config(args)
    from rich.console import Console
    from rich.table import Table

    from rlx.evaluation.evaluate import evaluate
    from rlx.models import ModelConfig, load_policy
    from rlx.rollout import make_engine
    from rlx.runtime import pick_device, set_threads
    from rlx.tasks import make_task

    set_threads(cfg.threads)
    task = make_task(task_cfg)
    model, tokenizer = load_policy(ModelConfig(path=cfg.checkpoint))
    model.to(pick_device(cfg.device)).eval()
    run = None
    if args.out:
        from rlx.rundir import RunDir

        run = RunDir(Path(args.out), dump_yaml(cfg), resumable=False)
    if cfg.rast is None:
        engine = make_engine("hf", model, tokenizer)
    else:
        from rlx.rollout.rast import RastEngine

        small_rl, tok_rl = load_policy(ModelConfig(path=cfg.rast.rl))
        small_base, tok_base = load_policy(ModelConfig(path=cfg.rast.base))
        for name, tok in (("rast.rl", tok_rl), ("rast.base", tok_base)):
            if tok.get_vocab() != tokenizer.get_vocab():
                raise ConfigError(f"config error: {name}: its tokenizer differs from {cfg.checkpoint}'s; RAST needs "
                                  "one tokenizer for all three models")
        engine = RastEngine(model, tokenizer, small_rl=small_rl, small_base=small_base, alpha=cfg.rast.alpha)
    t0 = time.perf_counter()
    if cfg.split == "heldout":
        problems = task.heldout(cfg.eval.n)  # a fixed pool (math) may hold fewer than n
        result = evaluate(engine, task, problems, cfg.eval, tokenizer, seed=cfg.seed)
        metrics = {**result.metrics, "eval/problems": float(len(problems))}
    else:
        result, metrics = _evaluate_split(engine, task, task_cfg, cfg, tokenizer, levels=cfg.split == "levels")
    metrics["time/eval_seconds"] = time.perf_counter() - t0
    if run is not None and result is None and cfg.eval.samples > 0:
        print("note: passk_counts.json (per-problem counts for `rlx compare`) is written for --split heldout only",
              file=sys.stderr)
    if run is not None and result is not None:
        from rlx.evaluation.evaluate import write_passk_counts

        write_passk_counts(result, cfg.eval.samples, run.path / "passk_counts.json")
    if run is not None:
        run.log(0, metrics)
        run.write_summary(metrics)
        run.close()
    if args.json_path:
        Path(args.json_path).write_text(json.dumps(metrics, indent=2) + "\n")
    rast = "" if cfg.rast is None else f" + RAST shift of {cfg.rast.rl} - {cfg.rast.base} (alpha {cfg.rast.alpha:g})"
    where = f"{int(metrics['eval/problems'])} held-out problems" if cfg.split == "heldout" else \
        f"{cfg.split} split, <= {cfg.eval.n} per level"
    table = Table(title=f"{cfg.checkpoint}{rast} on {args.task} ({where})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in metrics.items():
        table.add_row(k, f"{v:.4f}" if k.startswith("eval/") and not k.endswith("problems") else f"{v:.4g}")
    Console().print(table)
    print(json.dumps(metrics), file=sys.stdout)
    return 0


def _evaluate_split(engine, task, task_cfg, cfg: EvalRunConfig, tokenizer, levels: bool):
    """Greedy accuracy (and pass@k) on each named level of `rlx.tasks.splits.evaluation_sets`, as
    `eval/<level>/<metric>` plus `eval/<level>/problems` (a level may hold fewer than n)."""
    from rlx.evaluation.evaluate import evaluate
    from rlx.tasks.splits import evaluation_sets

    metrics: dict[str, float] = {}
    for name, problems in evaluation_sets(task_cfg, cfg.eval.n, levels=levels).items():
        result = evaluate(engine, task, problems, cfg.eval, tokenizer, seed=cfg.seed)
        metrics.update({k.replace("eval/", f"eval/{name}/", 1): v for k, v in result.metrics.items()})
        metrics[f"eval/{name}/problems"] = float(len(problems))
    return None, metrics
