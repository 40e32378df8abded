"""RL with verifiable rewards (`rlx train RECIPE` with `kind: rlvr`): GRPO and its family.

One step, top to bottom, each stage timed into `time/<stage>`:

    rollout     sample B prompts, G completions each, verify (never raising), select groups
    logprobs    old log-probs (skipped when exactly on-policy), reference log-probs (KL / ACE)
    advantages  reward shaping, then the configured estimator (GRPO, Dr.GRPO, RLOO, REINFORCE++, GAE)
    update      mu epochs x minibatches x micro-batches of the configured loss + aggregation
    sync        push weights to the rollout engine (a no-op for the in-process hf engine)
                With `rollout.staleness: 1` the next step's rollouts are sampled on a background thread
                during this step's update (rlx.train.ahead); `time/rollout` is then only the wait for them.
    eval        held-out greedy accuracy every `eval.every` steps, and before/after the run

Departures from the papers: the default tiny recipe trains without a KL term and without a
reference model (as DAPO and Dr.GRPO argue); rollouts and training share one process on CPU.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager, nullcontext
from dataclasses import replace

import torch

from rlx.evaluation.evaluate import evaluate, write_passk_counts
from rlx.models import load_policy, save_model
from rlx.models.lora import wrap_lora
from rlx.objectives.build import build_objective
from rlx.objectives.perception import degrade_ids, digit_mask_table, perception_coef
from rlx.rewards.safe import RewardErrors
from rlx.rollout import make_engine
from rlx.runtime import pick_device, seed_everything, set_threads
from rlx.rundir import RunDir
from rlx.sampling.difficulty import DifficultyPool, curate
from rlx.sampling.prune import Pruner
from rlx.tasks import make_task
from rlx.tasks.mixture import MixtureTask
from rlx.train.ahead import RolloutAhead, engine_logprobs_exact
from rlx.train.checkpoint import RunClock, read_training_state, write_training_state
from rlx.train.collect import collect, sampling_params
from rlx.train.logprobs import score_batch
from rlx.train.optim import make_optimizer
from rlx.train.progress import fmt_metrics, progress_bar
from rlx.train.rlvr_config import Config
from rlx.train.select import d3s_select
from rlx.train.update import Prepared, update

__all__ = ["Config", "run", "eval_settings"]

_RENAME = {"train/mismatch/kl_k3": "rollout/mismatch_kl", "train/mismatch/ratio_max": "rollout/max_importance_ratio"}


class StageTimer:
    def __init__(self) -> None:
        self.times: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str):
        t0 = time.perf_counter()
        yield
        self.times[f"time/{stage}"] = self.times.get(f"time/{stage}", 0.0) + time.perf_counter() - t0


def run(cfg: Config, run: RunDir) -> dict:
    set_threads(cfg.model.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.model.device)
    task = make_task(cfg.task)
    model, tokenizer = load_policy(cfg.model, seed=cfg.seed)
    objective = build_objective(cfg.objective, max_new_tokens=cfg.rollout.max_new_tokens)
    mask_table = digit_mask_table(tokenizer) if cfg.objective.perception_coef > 0 else None
    ref_model = None
    if objective.needs_ref and cfg.model.lora is None:
        ref_model = copy.deepcopy(model).to(device).eval().requires_grad_(False)
    if cfg.model.lora is not None:
        model = wrap_lora(model, cfg.model.lora)
    model.to(device)
    value_head = None
    if objective.needs_values:
        torch.manual_seed(cfg.seed)
        value_head = torch.nn.Linear(model.config.hidden_size, 1).to(device)
    params = [p for p in model.parameters() if p.requires_grad] + (list(value_head.parameters()) if value_head else [])
    t = cfg.train
    tau = cfg.rollout.temperature  # the trainer scores softmax(logits / tau), the policy the rollouts sample
    opt, sched = make_optimizer(params, t.optim, t.steps * t.epochs * t.minibatches)
    engine_kwargs = {"gpu_memory_utilization": cfg.rollout.gpu_memory_utilization} if cfg.rollout.engine == "vllm" else {}
    ahead = None
    if cfg.rollout.staleness:  # samples from its own copy; π_old from the engine unless TIS needs the trainer's
        exact = engine_logprobs_exact(cfg.rollout, next(model.parameters()).dtype)
        ahead = RolloutAhead(model, forward=not exact or cfg.objective.tis_cap is not None, temperature=tau)
    engine = make_engine(cfg.rollout.engine, ahead.behaviour if ahead else model, tokenizer, **engine_kwargs)

    def sync() -> None:
        if ahead is not None:
            ahead.sync(model)  # into the sampler's copy, between batches
        else:
            engine.sync_weights(model)

    heldout = task.heldout(cfg.eval.n)
    errors = RewardErrors()
    rollout_precision, train_precision, ref_precision = nullcontext, nullcontext, nullcontext
    if t.precision_flow != "none":  # paper jetrl: FP8 in rollouts only, or in rollouts and training
        from rlx.quant.fp8_flow import fp8_precision

        flow = fp8_precision(model, mode="rollout_only" if t.precision_flow == "fp8_rollout" else "unified")
        rollout_precision, train_precision = flow.rollout, flow.train
        if ref_model is not None and t.precision_flow == "fp8_unified":  # the reference in the policy's numerics:
            ref_precision = fp8_precision(ref_model, mode="unified").train  # KL 0 before the first update
    if cfg.difficulty.enabled:  # papers simplerl/drive: before any checkpoint is restored, so a resume rebuilds it
        with rollout_precision():  # pass rates under the same precision as training rollouts
            task = curate(task, engine, tokenizer, cfg.difficulty, sampling_params(cfg.rollout), seed=cfg.seed,
                          errors=errors)
    # a task that observes each step's outcomes: the curated pool (papers simplerl, drive) or a mixture (paper recap)
    pool = task if isinstance(task, DifficultyPool | MixtureTask) else None
    pruner = Pruner(cfg.prune, model.config.hidden_size, cfg.rollout.group_size) if cfg.prune.enabled else None

    eval_cfg = eval_settings(cfg)

    def held_out_eval(final: bool = False) -> dict[str, float]:
        model.eval()
        with rollout_precision():
            result = evaluate(engine, task, heldout, eval_cfg, tokenizer, seed=cfg.seed)
        if final:
            write_passk_counts(result, cfg.eval.samples, run.path / "passk_counts.json")
        return result.metrics

    gen = torch.Generator().manual_seed(cfg.seed)

    start, summary, pending = 0, {}, None  # pending: the next step's batch, sampled ahead (staleness 1)
    seconds_before = 0.0
    ckpt = run.latest_checkpoint() if run.resume else None
    if ckpt is not None:
        start, extra = read_training_state(ckpt, model, opt, sched)
        summary, seconds_before = extra["summary"], extra.get("train_seconds", 0.0)
        errors.load_state_dict(extra["reward_errors"])
        gen.set_state(extra["generator"])
        if ref_model is not None and extra.get("ref_model") is not None:  # paper prorl: the last reset's policy
            ref_model.load_state_dict(extra["ref_model"])
        if pool is not None and extra.get("difficulty") is not None:
            pool.load_state_dict(extra["difficulty"])
        if pruner is not None and extra.get("prune") is not None:
            pruner.load_state_dict(extra["prune"])
        if value_head is not None:
            value_head.load_state_dict(extra["value_head"])
        pending = extra.get("pending") if ahead else None
        sync()
        run.truncate_metrics(start)
    elif run.resume:
        run.start_over()
    if not summary:
        before = held_out_eval()
        summary = {"eval/accuracy_before": before["eval/accuracy"]}
        if cfg.difficulty.enabled:
            summary.update(task.metrics())
        summary.update({k.replace("eval/", "eval/before/"): v for k, v in before.items() if "pass@" in k})
        run.log(0, before)

    def save(step: int) -> None:
        extra = {"summary": summary, "reward_errors": errors.state_dict(), "generator": gen.get_state(),
                 "value_head": value_head.state_dict() if value_head is not None else None,
                 "difficulty": pool.state_dict() if pool is not None else None,
                 "prune": pruner.state_dict() if pruner is not None else None,
                 "ref_model": ref_model.state_dict() if ref_model is not None and t.ref_reset_every else None,
                 "pending": pending, "train_seconds": clock.seconds()}
        run.save_checkpoint(step, lambda d: write_training_state(d, model, tokenizer, opt, sched, step, extra))

    def produce(step: int):
        return collect(engine, task, tokenizer, cfg.rollout, cfg.objective, seed=cfg.seed * 1_000_003 + step,
                       errors=errors, pruner=pruner, step=step)

    clock = RunClock(seconds_before)
    metrics: dict[str, float] = {}

    with progress_bar("rlvr") as bar, _closing(ahead):
        job = bar.add_task("rlvr", total=t.steps, completed=start, info="")
        for step in range(start + 1, t.steps + 1):
            timer = StageTimer()
            model.eval()
            with timer("rollout"), rollout_precision():
                collected = pending if pending is not None else produce(step)  # the first step: on-policy
                pending = None
                if ahead is not None and step < t.steps:
                    ahead.submit(produce, step + 1)  # with the weights before this step's update
            metrics = dict(collected.metrics)
            if pool is not None:  # papers simplerl/drive/recap: the pool or mixture sees every group's outcome
                pool.observe(collected.attempts)
                metrics.update(pool.end_step(step))
            batch = collected.batch
            if batch is not None:
                batch = batch.to(device)
                on_policy = t.epochs == 1 and t.minibatches == 1 and value_head is None
                with timer("logprobs"), train_precision():
                    old = ref = old_values = None
                    behaviour = collected.behaviour_logprobs  # set when sampled one update ago (staleness 1)
                    kl_in_reward = objective.cfg.kl_placement == "reward" and objective.cfg.kl_coef > 0
                    if not on_policy or kl_in_reward or objective.cfg.ace_alpha > 0:
                        if behaviour is None or value_head is not None:
                            old, _, old_values = score_batch(model, batch, tau, value_head, rows=t.micro_batch_size)
                    if behaviour is not None:  # π_old in the ratio is the policy that sampled the batch
                        old = behaviour.to(device)
                    if objective.needs_ref:
                        if ref_model is not None:
                            with ref_precision():
                                ref = score_batch(ref_model, batch, tau, rows=t.micro_batch_size)[0]
                        else:
                            with model.disable_adapter():
                                ref = score_batch(model, batch, tau, rows=t.micro_batch_size)[0]
                with timer("advantages"):
                    rewards, m = objective.shape_rewards(batch.rewards.to(device), batch.response_mask)
                    adv, am = objective.advantages(rewards, batch.response_mask, batch.group_size,
                                                   old_logprobs=old, ref_logprobs=ref, values=old_values)
                    if objective.needs_answers:  # papers qhawkeye, puzzlecraft: per-group scales
                        scale, gm = objective.group_scale([task.extract_answer(x) for x in batch.texts],
                                                          batch.group_size)
                        adv = replace(adv, advantages=adv.advantages * scale.to(device)[batch.group_index, None])
                        am = {**am, **gm}
                    metrics.update({f"train/{k}": float(v) for k, v in {**m, **am}.items()})
                with timer("update"), train_precision():
                    prepared = Prepared(batch, adv.advantages, old, ref, old_values, adv.returns)
                    if objective.cfg.perception_coef > 0:  # paper qhawkeye: the same tokens, digits masked
                        coef = perception_coef(step - 1, objective.cfg.perception_coef, objective.cfg.perception_zero_step)
                        degraded = None
                        if coef > 0:  # annealed to 0: no extra forward pass
                            masked = replace(batch, prompt_ids=degrade_ids(batch.prompt_ids, batch.prompt_mask, mask_table))
                            degraded = score_batch(model, masked, tau, rows=t.micro_batch_size)[0]
                        prepared = replace(prepared, degraded_logprobs=degraded, perception_coef=coef)
                        metrics["train/perception_coef"] = coef
                    if cfg.d3s.sample_keep_start is not None or cfg.d3s.token_keep_start is not None:
                        # the schedule is 0-based ("start at step 0"), as perception_coef's: step 1 keeps the start share
                        prepared, dm = d3s_select(prepared, cfg.d3s, step - 1, model, tau, chunk=t.micro_batch_size)
                        metrics.update(dm)
                    model.train()  # only now: the no-grad scoring passes above (perception, D3S) run without dropout
                    um = update(model, objective, prepared, opt, sched, epochs=t.epochs, minibatches=t.minibatches,
                                micro_batch_size=t.micro_batch_size, grad_clip=t.optim.grad_clip, generator=gen,
                                value_head=value_head, temperature=tau)
                    if behaviour is not None and not ahead.forward:  # π_old is the engine's own: nothing measured
                        um = {k: v for k, v in um.items() if not k.startswith("train/mismatch/")}
                    metrics.update({_RENAME.get(k, k): v for k, v in um.items()})
            else:
                metrics["train/skipped_step"] = 1.0
                for _ in range(t.epochs * t.minibatches):  # the schedule counts RL steps, skipped ones too
                    sched.step()
            if ahead is not None and step < t.steps:
                with timer("rollout"):  # the part of the next step's sampling the update did not hide
                    pending = ahead.result()
            if batch is not None:
                with timer("sync"):
                    sync()
            if cfg.eval.every and step % cfg.eval.every == 0 and step < t.steps:
                with timer("eval"):
                    metrics.update(held_out_eval())
            if t.ref_reset_every and step % t.ref_reset_every == 0 and ref_model is not None:
                reset_reference(ref_model, model, opt)  # paper prorl
                metrics["train/ref_reset"] = 1.0
            metrics.update(timer.times)
            metrics["time/step"] = sum(timer.times.values())
            if step % t.log_every == 0 or "eval/accuracy" in metrics:
                run.log(step, metrics)
            if t.checkpoint_every and step % t.checkpoint_every == 0 and step < t.steps:
                save(step)
            bar.update(job, advance=1, info=fmt_metrics(metrics, {"rollout/reward_mean": "reward",
                                                                  "rollout/accuracy": "acc",
                                                                  "eval/accuracy": "heldout"}))

    if start < t.steps:
        save(t.steps)  # before the final evaluation's row, so a resume after a kill below logs that row once
    final = held_out_eval(final=True)
    run.log(t.steps, final)
    export = model.merge_and_unload() if cfg.model.lora is not None else model
    save_model(export, tokenizer, run.path / "model")
    summary.update(final)
    summary.update({"time/train_seconds": clock.seconds(), "train/steps": t.steps,
                    "rollout/reward_errors": float(errors.count)})
    rows = [r for r in run.metrics() if r.get("rollout/mismatch_kl") is not None]
    if rows:  # paper jetrl: rollout/trainer mismatch over the whole run (metrics.jsonl survives resumes)
        summary.update({"rollout/mismatch_kl_mean": sum(r["rollout/mismatch_kl"] for r in rows) / len(rows),
                        "rollout/max_importance_ratio": max(r["rollout/max_importance_ratio"] for r in rows)})
    return summary


def eval_settings(cfg: Config):
    """The held-out evaluation's settings: `eval.stop` unset means the rollouts' stop strings, so greedy
    evaluation ends where training's samples end."""
    if cfg.eval.stop is not None:
        return cfg.eval
    return cfg.eval.model_copy(update={"stop": list(cfg.rollout.stop)})


@contextmanager
def _closing(ahead: RolloutAhead | None):
    """Stop the rollout thread however the loop ends (a kill waits for the batch in flight)."""
    try:
        yield
    finally:
        if ahead is not None:
            ahead.close()


@torch.no_grad()
def reset_reference(ref_model, model, optimizer) -> None:
    """Paper prorl: the KL reference becomes a copy of the current policy; Adam's moments start over."""
    ref_model.load_state_dict(model.state_dict())
    optimizer.state.clear()
