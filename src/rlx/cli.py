"""`rlx` command line: train | sft | eval | sweep | compare | quantize | make-dataset.

Trainers are modules that expose a config class `Config` (a `Section` whose `kind` field is a
Literal) and `run(cfg, run: RunDir) -> dict` returning the final summary. A recipe's top-level
`kind` picks the module once, here; nothing downstream dispatches on strings.

Other subcommands are modules that expose `add_arguments(parser)` and `main(args) -> int`.
Exit codes: 0 ok, 1 runtime failure, 2 bad input (config, paths, arguments), 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rlx.config import ConfigError, apply_overrides, build_config, dump_yaml, flatten, read_yaml, recipe_kind

# recipe kind -> trainer module (imported lazily: control RL never imports transformers)
TRAINERS: dict[str, str] = {
    "sft": "rlx.train.sft",
    "rlvr": "rlx.train.rlvr",
    "pqn": "rlx.control.pqn",
    "dqn": "rlx.control.dqn",
    "iql": "rlx.control.iql",
    "riql": "rlx.control.riql",
    "bc": "rlx.control.bc",
    "sqirl": "rlx.control.sqirl",
    "qarl": "rlx.robust.qarl",
    "act": "rlx.robust.act",
    "parl": "rlx.control.parl",
    "grrl": "rlx.control.grrl",
    "qweb": "rlx.control.qweb",
    "search_agent": "rlx.agents.train",
    "srl": "rlx.distributed.srl.trainer",
}

# subcommand -> (module, one-line help); each module has add_arguments(parser) and main(args)
COMMANDS: dict[str, tuple[str, str]] = {
    "eval": ("rlx.evaluation.cli", "greedy accuracy and pass@k of a checkpoint on a task"),
    "sweep": ("rlx.evaluation.sweep", "run a recipe over several seeds (DIR/seed_K/)"),
    "compare": ("rlx.evaluation.compare", "compare sweeps: interval estimates, P(A>B), report"),
    "quantize": ("rlx.quant.cli", "quantize a checkpoint (rtn, gptq, rsq, quest, ...)"),
    "make-dataset": ("rlx.control.datasets", "build an offline control dataset (D4RL keys)"),
}


class UsageError(Exception):
    pass


def _resolve_trainer(kind: str, path: str):
    if kind not in TRAINERS:
        raise ConfigError(f"config error: kind = {kind!r}: expected one of {sorted(TRAINERS)} ({path})")
    return importlib.import_module(TRAINERS[kind])


def load_recipe(path: str, overrides: list[str], expect_kind: str | None = None):
    """Read, override and validate a recipe. Returns (trainer module, config)."""
    data = apply_overrides(read_yaml(path), overrides)
    kind = recipe_kind(data, path)
    if expect_kind is not None and kind != expect_kind:
        raise ConfigError(f"config error: kind = {kind!r}: `rlx {expect_kind}` needs kind: {expect_kind}")
    module = _resolve_trainer(kind, path)
    return module, build_config(module.Config, data)


def default_out(recipe: str) -> Path:
    return Path("runs") / f"{Path(recipe).stem}-{time.strftime('%Y%m%d-%H%M%S')}"


def run_recipe(recipe: str, overrides: list[str], out: str | Path | None, resume: bool,
               expect_kind: str | None = None) -> dict:
    """Validate, create the run directory, train, write summary.json and plots."""
    from rlx.rundir import RunDir

    module, cfg = load_recipe(recipe, overrides, expect_kind)
    out_path = Path(out) if out else default_out(recipe)
    fresh = not out_path.exists()
    if resume:
        _same_config_or_error(out_path, dump_yaml(cfg), cfg)
    run = RunDir(out_path, dump_yaml(cfg), resume=resume)
    try:
        summary = module.run(cfg, run)
        run.write_summary(summary)
        print(f"run directory: {out_path}", file=sys.stderr)  # where the model, metrics and checkpoints are
        try:
            run.plot_curves()
        except Exception as e:  # plots are a convenience; never lose a finished run over them
            print(f"warning: could not draw plots: {e}", file=sys.stderr)
    except ConfigError:
        # bad input found while setting up (unreadable checkpoint, missing data): leave nothing behind
        if fresh and run.latest_checkpoint() is None:
            run.close()
            shutil.rmtree(out_path, ignore_errors=True)
        raise
    finally:
        run.close()
    return summary


def _field_default(cfg: Any, dotted: str) -> Any:
    """The default of config field `a.b.c` of `cfg` (a sentinel when the path is not a plain field)."""
    obj, parts = cfg, dotted.split(".")
    for p in parts[:-1]:
        if isinstance(obj, (list, tuple)):  # a list of sections: `task.tasks.0.pool_seed`
            obj = obj[int(p)] if p.isdigit() and int(p) < len(obj) else None
        else:
            obj = getattr(obj, p, None)
    fields = getattr(type(obj), "model_fields", {})
    if parts[-1] not in fields:
        return _NO_DEFAULT
    f = fields[parts[-1]]
    value = f.default_factory() if f.default_factory is not None else f.default
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value


_NO_DEFAULT = object()
_RUN_LENGTH = frozenset(("steps", "total_steps"))  # may change under --resume: train a finished run for longer


def config_differences(saved_yaml: str, config_yaml: str, cfg: Any = None, ignore_steps: bool = False) -> list[str]:
    """The fields where a run's saved config.yaml and `config_yaml` differ, as 'a.b (old -> new)'. A field added
    to rlx after the run started is absent from its config.yaml and counts as equal at its default (`cfg`,
    the validated config, gives the defaults); `ignore_steps` also lets a run's length differ: fields named
    `steps` or `total_steps` (not warmup_steps, num_steps, ...: those change what the steps do)."""
    import yaml

    if saved_yaml == config_yaml:
        return []
    old, new = flatten(yaml.safe_load(saved_yaml) or {}), flatten(yaml.safe_load(config_yaml) or {})
    new_at_default = {k for k in new.keys() - old.keys() if cfg is not None and _field_default(cfg, k) == new[k]}
    return [f"{k} ({old.get(k, '-')!r} -> {new.get(k, '-')!r})" for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k) and k not in new_at_default
            and not (ignore_steps and k.split(".")[-1] in _RUN_LENGTH)]


def _same_config_or_error(out_path: Path, config_yaml: str, cfg: Any = None) -> None:
    """--resume continues exactly only with the config that started the run: refuse a different one
    (before config.yaml is rewritten), naming the fields that differ. The run's length (`steps`,
    `total_steps`, e.g. `total_steps=2048` to train a finished run for longer) may change."""
    saved = out_path / "config.yaml"
    if not saved.is_file() or not saved.read_text().strip():
        return
    import yaml

    try:
        diff = config_differences(saved.read_text(), config_yaml, cfg, ignore_steps=True)
    except yaml.YAMLError as e:  # edited by hand
        raise ConfigError(f"config error: --resume: {saved} is not valid YAML ({str(e).splitlines()[0]}); restore "
                          "it to the config that started the run") from None
    old, new = flatten(yaml.safe_load(saved.read_text()) or {}), flatten(yaml.safe_load(config_yaml) or {})
    shorter = [f"{k} ({old[k]!r} -> {new[k]!r})" for k in sorted(old.keys() & new.keys())
               if k.split(".")[-1] in _RUN_LENGTH and isinstance(old[k], int) and isinstance(new[k], int)
               and new[k] < old[k]]
    if shorter:  # a run already past the new length cannot be trained back; its summary would claim the new one
        raise ConfigError(f"config error: --resume may lengthen a run, not shorten it: {'; '.join(shorter)}")
    if not diff:
        return
    raise ConfigError(f"config error: --resume: the config differs from {saved} at {'; '.join(diff[:5])}"
                      f"{' ...' if len(diff) > 5 else ''}. Resume with the recipe and overrides that started the "
                      f"run, e.g. `rlx train {saved} --out {out_path} --resume`")


def _add_train(sub, name: str, help_: str) -> None:
    p = sub.add_parser(name, help=help_, description=help_)
    p.add_argument("recipe", help="YAML recipe, e.g. recipes/arith_sft.yaml" if name == "sft"
                   else "YAML recipe, e.g. recipes/arith_grpo.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. train.optim.lr=3e-5 seed=1")
    p.add_argument("--out", default=None, help="run directory (default runs/RECIPE-TIMESTAMP)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in `argv` gets its arguments (importing every subcommand's
    module, torch and transformers included, made `rlx --help` take ~4.5 s)."""
    chosen = next((a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="rlx", description="rlx: RL methods of 51 papers in one toolkit.")
    parser.add_argument("--version", action="version", version="rlx " + __import__("rlx").__version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train(sub, "train", "train from a recipe (any kind: rlvr, sft, pqn, iql, ...)")
    _add_train(sub, "sft", "supervised fine-tuning from a recipe with kind: sft")
    for name, (module_name, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(_module=module_name)
        if name != chosen:
            continue
        try:
            importlib.import_module(module_name).add_arguments(p)
        except ModuleNotFoundError as e:
            if e.name and e.name.startswith("rlx"):
                p.description = f"{help_} (not available in this build: {e.name} missing)"
            else:
                raise
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        parser = build_parser(argv)
    except KeyboardInterrupt:  # Ctrl-C while the subcommand's modules load
        print("interrupted", file=sys.stderr)
        return 130
    args, extra = parser.parse_known_args(argv)
    if extra:  # dotted overrides may come after options: `rlx train R --out D seed=1`
        if not hasattr(args, "overrides") or not all("=" in e and not e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides) + extra
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command in ("train", "sft"):
            expect = "sft" if args.command == "sft" else None
            summary = run_recipe(args.recipe, args.overrides, args.out, args.resume, expect)
            _print_summary(summary)
            return 0
        module = importlib.import_module(args._module)
        return int(module.main(args) or 0)
    except ConfigError as e:
        print(str(e), file=sys.stderr)
        return 2
    except (FileNotFoundError, FileExistsError, NotADirectoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # only training commands have --resume (eval, sweep, ... start over)
        resumable = getattr(args, "command", None) in ("train", "sft")
        print("interrupted; resume with --resume" if resumable else "interrupted", file=sys.stderr)
        return 130


def _print_summary(summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="summary")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        table.add_row(k, f"{v:.4g}" if isinstance(v, float) else str(v))
    console = Console()
    console.print(table)
    if "eval/accuracy_before" in summary and "eval/accuracy" in summary:
        console.print(f"[bold]held-out accuracy: {summary['eval/accuracy_before']:.3f} -> "
                      f"{summary['eval/accuracy']:.3f}[/bold]")


if __name__ == "__main__":
    sys.exit(main())
