"""`rlx sweep RECIPE --seeds 5 --out DIR [overrides...]`: one recipe, several seeds.

    DIR/
      sweep.json        recipe, overrides, mode and one entry per seed: {seed, dir, status, seconds, error}
      seed_0/ ...       one run directory per seed (see rlx.rundir), trained with override seed=K
      seed_K/error.txt  the traceback, when seed K failed (the other seeds are kept)
      failed_seed_K/    a failed seed's files, moved aside when `--skip-done` runs it again
      changed_seed_K/   a finished seed trained with another config (recipe or overrides changed since),
                        moved aside when `--skip-done` runs it again

Seeds run one after another (default), in N worker processes (`--parallel N`, spawned so each run
starts from a clean interpreter), or as Ray tasks (`--ray`, needs `pip install ray`). The recipe and
overrides are validated once before anything runs, so bad input fails fast with exit code 2.
Exit code 0 when every seed succeeded, 1 when any failed.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shutil
import sys
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from rlx.config import ConfigError
from rlx.rundir import atomic_write_json, atomic_write_text

__all__ = ["add_arguments", "main", "run_sweep", "run_one_seed", "seed_dir"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="YAML recipe, e.g. recipes/arith_grpo.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides applied to every seed, e.g. train.optim.lr=3e-5")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds (default 5)")
    p.add_argument("--first-seed", type=int, default=0, help="seeds are FIRST .. FIRST+SEEDS-1 (default 0)")
    p.add_argument("--out", required=True, help="sweep directory; seed K goes to OUT/seed_K")
    p.add_argument("--parallel", type=int, default=1, help="worker processes (default 1: one after another)")
    p.add_argument("--ray", action="store_true", help="run seeds as Ray tasks (needs ray installed)")
    p.add_argument("--skip-done", action="store_true",
                   help="keep seeds that finished with the same config; rerun failed ones (moved to failed_seed_K) "
                        "and ones trained with another config (moved to changed_seed_K)")


def seed_dir(out: Path, seed: int) -> Path:
    return Path(out) / f"seed_{seed}"


def run_one_seed(recipe: str, overrides: list[str], out: str, seed: int,
                 trainers: dict[str, str] | None = None) -> dict[str, Any]:
    """Train one seed into OUT/seed_K; never raises: a failure is returned and saved to error.txt.

    trainers: a copy of rlx.cli.TRAINERS to install in a fresh worker process (so registrations made
    at run time, e.g. in tests, reach spawned workers).
    """
    import rlx.cli

    if trainers is not None:
        rlx.cli.TRAINERS.update(trainers)
    path = seed_dir(Path(out), seed)
    t0 = time.perf_counter()
    try:
        summary = rlx.cli.run_recipe(recipe, [*overrides, f"seed={seed}"], path, resume=False)
        return {"seed": seed, "dir": path.name, "status": "ok", "seconds": time.perf_counter() - t0,
                "error": None, "summary": summary}
    except BaseException as e:  # noqa: BLE001 - one seed must not take the sweep down
        if isinstance(e, KeyboardInterrupt):
            raise
        atomic_write_text(path / "error.txt", traceback.format_exc())
        return {"seed": seed, "dir": path.name, "status": "failed", "seconds": time.perf_counter() - t0,
                "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}".strip(), "summary": None}


def _validate(recipe: str, overrides: list[str], seeds: list[int]) -> None:
    from rlx.cli import load_recipe

    load_recipe(recipe, [*overrides, f"seed={seeds[0]}"])


def _changed_config(recipe: str, overrides: list[str], seed: int, d: Path) -> list[str]:
    """How seed K's finished run differs from what this sweep would train ([] = the same config)."""
    from rlx.cli import config_differences, load_recipe
    from rlx.config import dump_yaml

    _, cfg = load_recipe(recipe, [*overrides, f"seed={seed}"])
    saved = d / "config.yaml"
    if not saved.is_file():
        return ["config.yaml (missing -> present)"]
    return config_differences(saved.read_text(), dump_yaml(cfg), cfg)


def _write_state(out: Path, meta: dict[str, Any], results: dict[int, dict[str, Any]]) -> None:
    entries = [{k: v for k, v in results[s].items() if k != "summary"} for s in sorted(results)]
    atomic_write_json(out / "sweep.json", {**meta, "seeds": entries,
                                           "ok": all(e["status"] in ("ok", "skipped") for e in entries)})


def run_sweep(recipe: str, overrides: list[str], out: str | Path, seeds: list[int], parallel: int = 1,
              use_ray: bool = False, skip_done: bool = False, echo=print) -> dict[int, dict[str, Any]]:
    """Run `recipe` for each seed; returns {seed: result} and keeps OUT/sweep.json up to date."""
    if not seeds:
        raise ConfigError("config error: --seeds must be at least 1")
    if parallel < 1:
        raise ConfigError(f"config error: --parallel = {parallel}: expected at least 1")
    if use_ray:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "config error: --ray asked for but ray is not installed (pip install 'rlx[ray]')") from None
    _validate(recipe, overrides, seeds)
    out = Path(out)
    results: dict[int, dict[str, Any]] = {}
    todo = []
    for s in seeds:
        d = seed_dir(out, s)
        changed = _changed_config(recipe, overrides, s, d) if skip_done and (d / "summary.json").is_file() else None
        if changed == []:
            results[s] = {"seed": s, "dir": d.name, "status": "skipped", "seconds": 0.0, "error": None}
        elif changed:  # finished, but with another config: not this sweep's seed; keep it beside, run again
            old = out / f"changed_seed_{s}"
            shutil.rmtree(old, ignore_errors=True)
            d.rename(old)
            echo(f"seed {s}: {d} was trained with another config ({'; '.join(changed[:3])}"
                 f"{' ...' if len(changed) > 3 else ''}); moved to {old.name}, running it again")
            todo.append(s)
        elif skip_done and ((d / "error.txt").is_file() or (d / "metrics.jsonl").exists()
                            or (d / "checkpoints").exists()):
            # a seed that failed or was interrupted (Ctrl-C, a kill): keep its files beside the sweep, run it again
            old = out / f"{'failed' if (d / 'error.txt').is_file() else 'interrupted'}_seed_{s}"
            shutil.rmtree(old, ignore_errors=True)
            d.rename(old)
            todo.append(s)
        elif (d / "metrics.jsonl").exists() or (d / "checkpoints").exists():
            raise FileExistsError(f"{d} already holds a run; choose another --out or pass --skip-done")
        else:
            todo.append(s)
    mode = "ray" if use_ray else ("processes" if parallel > 1 else "sequential")
    meta = {"recipe": str(recipe), "overrides": list(overrides), "mode": mode}
    out.mkdir(parents=True, exist_ok=True)
    _write_state(out, meta, results)

    def done(res: dict[str, Any]) -> None:
        results[res["seed"]] = res
        _write_state(out, meta, results)
        tail = f"  ({res['error']}; see {res['dir']}/error.txt)" if res["status"] == "failed" else ""
        echo(f"seed {res['seed']}: {res['status']} in {res['seconds']:.1f} s{tail}")

    if use_ray:
        _run_ray(ray, recipe, overrides, out, todo, parallel, done)
    elif parallel > 1 and len(todo) > 1:
        _run_processes(recipe, overrides, out, todo, parallel, done)
    else:
        for s in todo:
            done(run_one_seed(recipe, overrides, str(out), s))
    return results


def _run_processes(recipe, overrides, out, todo, parallel, done) -> None:
    import rlx.cli

    trainers = dict(rlx.cli.TRAINERS)
    ctx = multiprocessing.get_context("spawn")  # no forked torch/thread state in the workers
    with ProcessPoolExecutor(max_workers=min(parallel, len(todo)), mp_context=ctx) as pool:
        futures = {pool.submit(run_one_seed, recipe, overrides, str(out), s, trainers): s for s in todo}
        for fut in as_completed(futures):
            s = futures[fut]
            try:
                done(fut.result())
            except Exception as e:  # the worker process itself died (killed, out of memory)
                msg = f"worker process failed: {type(e).__name__}: {e}"
                atomic_write_text(seed_dir(out, s) / "error.txt", msg + "\n")
                done({"seed": s, "dir": f"seed_{s}", "status": "failed", "seconds": 0.0, "error": msg})


def _run_ray(ray, recipe, overrides, out, todo, parallel, done) -> None:
    import rlx.cli

    trainers = dict(rlx.cli.TRAINERS)
    ray.init(ignore_reinit_error=True, num_cpus=parallel if parallel > 1 else None)
    remote = ray.remote(num_cpus=1)(run_one_seed)
    pending = {remote.remote(recipe, overrides, str(out), s, trainers): s for s in todo}
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        s = pending.pop(ready[0])
        try:
            done(ray.get(ready[0]))
        except Exception as e:
            msg = f"ray task failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            atomic_write_text(seed_dir(out, s) / "error.txt", msg + "\n")
            done({"seed": s, "dir": f"seed_{s}", "status": "failed", "seconds": 0.0, "error": msg})


def main(args: argparse.Namespace) -> int:
    if args.seeds < 1:
        raise ConfigError(f"config error: --seeds = {args.seeds}: expected at least 1")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    results = run_sweep(args.recipe, args.overrides, args.out, seeds, parallel=args.parallel,
                        use_ray=args.ray, skip_done=args.skip_done)
    failed = [s for s, r in results.items() if r["status"] == "failed"]
    ok = len(results) - len(failed)
    print(f"sweep {args.out}: {ok}/{len(results)} seeds ok" + (f"; failed: {sorted(failed)}" if failed else ""),
          file=sys.stderr if failed else sys.stdout)
    return 1 if failed else 0
