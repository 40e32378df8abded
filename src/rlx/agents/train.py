"""Long-horizon search agent trained with multi-turn GRPO (`kind: search_agent`, paper asearcher).

    warm start  SFT on synthetic search traces (tool outputs in context, masked from the loss);
                a share of them stop searching too early, so RL has a strategy to fix
    rollout     B questions x G episodes: policy turns (search calls or an answer) interleaved with
                the search tool's outputs, up to `rollout.turns.max_turns` turns (the turn limit)
    advantages  GRPO (or any outcome estimator of `rlx.objectives`) on the 0/1 answer reward
    update      the RLVR update (`rlx.train.update`): clipped policy loss + aggregation over policy
                tokens only; the forward pass attends to every token, tool outputs included
    eval        greedy held-out accuracy per hop count at `eval.max_turns`, before and after

Synchronous mode generates each batch with the current weights (exactly on-policy; checkpoints resume
bitwise). With `async_rl.enabled` a producer thread (`rlx.agents.producer`) generates batch u with
weights at most `max_staleness` updates old while the trainer updates; the PPO ratio is taken
against the behaviour log-probs (or AReaL's decoupled form) and `async/staleness` is logged.
Departures from the paper: a synthetic per-question KB instead of web search, a 1M-parameter model,
one producer thread instead of an inference fleet, turn-synchronous episodes within a batch.
"""

from __future__ import annotations

import random
import time

import torch

from rlx.agents.config import Config, WarmStartConfig
from rlx.agents.producer import AsyncProducer
from rlx.agents.rollout import Trajectories, TurnConfig, layout, rollout, trace_segments
from rlx.agents.search_env import SearchEnv
from rlx.config import ConfigError
from rlx.models.tokenizer import encode_prompt
from rlx.models import load_policy, save_model
from rlx.objectives.aggregate import aggregate
from rlx.objectives.build import build_objective
from rlx.rollout.base import step_seed
from rlx.rollout.hf import HFEngine
from rlx.runtime import pick_device, seed_everything, set_threads
from rlx.rundir import RunDir
from rlx.train.checkpoint import RunClock, read_training_state, write_training_state
from rlx.train.logprobs import sequence_logprobs
from rlx.train.optim import make_optimizer
from rlx.train.progress import fmt_metrics, progress_bar
from rlx.train.update import Prepared, update

__all__ = ["Config", "run", "warm_start", "evaluate_agent", "sft_batch"]

_WARM_STREAM = 10_000_000  # warm-start questions use steps past this offset of the seed stream


def sft_batch(tokenizer, env: SearchEnv, questions, stop_after: list[int | None]):
    """Demonstrations in the rollout layout (response_mask = policy tokens) for the SFT loss."""
    segs = [trace_segments(tokenizer, env, q, j) for q, j in zip(questions, stop_after)]
    prompts = [encode_prompt(tokenizer, q.text) for q in questions]  # as the rollouts encode them (BOS included)
    n = len(questions)
    return layout(prompts, segs, tokenizer.pad_token_id, [0.0] * n, [False] * n, 1)


def warm_start(model, tokenizer, env: SearchEnv, cfg: WarmStartConfig, seed: int, device) -> dict[str, float]:
    """SFT on search traces: mean NLL of policy tokens (token-mean), tool tokens only as context."""
    opt, sched = make_optimizer(model.parameters(), cfg.optim, cfg.steps)
    rng = random.Random(seed * 7919 + 17)
    t0, loss = time.perf_counter(), torch.zeros(())
    model.train()
    with progress_bar("warm start") as bar:
        job = bar.add_task("warm start", total=cfg.steps, info="")
        for s in range(1, cfg.steps + 1):
            qs = env.questions(cfg.batch_size, seed=step_seed(seed, _WARM_STREAM + s))
            stops = [rng.randrange(q.hops) if rng.random() < cfg.early_stop_prob else None for q in qs]
            b = sft_batch(tokenizer, env, qs, stops)
            logprobs, _, _ = sequence_logprobs(model, b.prompt_ids.to(device), b.prompt_mask.to(device),
                                               b.completion_ids.to(device), b.attention_mask.to(device))
            loss = aggregate(-logprobs, b.response_mask.to(device), "token-mean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip or float("inf"))
            opt.step()
            sched.step()
            bar.update(job, advance=1, info=f"loss {loss.item():.3g}")
    return {"warm/loss": loss.item(), "warm/seconds": time.perf_counter() - t0, "warm/steps": float(cfg.steps)}


def evaluate_agent(model, tokenizer, env: SearchEnv, questions, max_turns: int, turn_tokens: int) -> dict[str, float]:
    """Greedy episodes on held-out questions: eval/accuracy, eval/accuracy_hop{k}, eval/turns_mean, ..."""
    was_training = model.training
    model.eval()
    traj = rollout(HFEngine(model, tokenizer), tokenizer, env, questions, 1,
                   TurnConfig(max_turns=max_turns, turn_tokens=turn_tokens, temperature=0.0), seed=0,
                   max_len=model.config.max_position_embeddings)
    model.train(was_training)
    return traj.metrics("eval")


def check_context(cfg: Config, env: SearchEnv, tokenizer, max_len: int) -> None:
    """Refuse a budget the model's context cannot hold. Every row used to end `context_limit` before its first
    turn (or the warm start trained on traces longer than the context): the run exited 0 with every loss 0."""
    qs = env.questions(16, seed=0, hops=cfg.env.max_hops) + env.heldout(1)
    prompt = max(len(encode_prompt(tokenizer, q.text)) for q in qs)
    if prompt + cfg.rollout.turns.turn_tokens > max_len:
        raise ConfigError(f"config error: rollout.turns.turn_tokens = {cfg.rollout.turns.turn_tokens}: a "
                          f"{cfg.env.max_hops}-hop prompt ({prompt} tokens) plus one turn exceeds the model's context "
                          f"of {max_len} tokens (raise model.tiny.max_position or lower turn_tokens / env.max_hops)")
    if cfg.warm_start.steps:
        trace = max(len(encode_prompt(tokenizer, q.text)) + sum(len(s.ids) for s in trace_segments(tokenizer, env, q))
                    for q in qs)
        if trace > max_len:
            raise ConfigError(f"config error: env.max_hops = {cfg.env.max_hops}: a full search trace takes {trace} "
                              f"tokens, more than the model's context of {max_len} (raise model.tiny.max_position "
                              "or lower env.max_hops)")


def run(cfg: Config, run: RunDir) -> dict:
    set_threads(cfg.model.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.model.device)
    env = SearchEnv(cfg.env)
    model, tokenizer = load_policy(cfg.model, seed=cfg.seed)
    model.to(device)
    max_len = model.config.max_position_embeddings
    check_context(cfg, env, tokenizer, max_len)
    # seq-mean-token-sum-norm divides by the most policy tokens an episode can hold: every turn, not one
    objective = build_objective(cfg.objective, max_new_tokens=cfg.rollout.turns.max_turns * cfg.rollout.turns.turn_tokens)
    tau = cfg.rollout.turns.temperature or 1.0  # the loss scores softmax(logits / tau); greedy turns: tau 1
    t, r, a = cfg.train, cfg.rollout, cfg.async_rl
    opt, sched = make_optimizer(model.parameters(), t.optim, max(1, t.steps))
    heldout = env.heldout(cfg.eval.per_hop)
    gen = torch.Generator().manual_seed(cfg.seed)

    def held_out_eval() -> dict[str, float]:
        return evaluate_agent(model, tokenizer, env, heldout, cfg.eval.max_turns, r.turns.turn_tokens)

    def save(step: int, seconds: float | None = None) -> None:
        if seconds is None:  # step 0: after the warm start, before RL's clock starts
            seconds = clock.seconds() if step > 0 else 0.0
        extra = {"summary": summary, "generator": gen.get_state(), "train_seconds": seconds}
        run.save_checkpoint(step, lambda d: write_training_state(d, model, tokenizer, opt, sched, step, extra))

    start, summary, seconds_before = 0, {}, 0.0
    ckpt = run.latest_checkpoint() if run.resume else None
    if ckpt is not None:
        start, extra = read_training_state(ckpt, model, opt, sched)
        summary, seconds_before = extra["summary"], extra.get("train_seconds", 0.0)
        gen.set_state(extra["generator"])
        run.truncate_metrics(start)
    elif run.resume:
        run.start_over()
    if ckpt is None:
        if cfg.warm_start.steps:
            summary.update(warm_start(model, tokenizer, env, cfg.warm_start, cfg.seed, device))
        before = held_out_eval()
        summary.update({k.replace("eval/", "eval/before/"): v for k, v in before.items()})
        summary["eval/accuracy_before"] = before["eval/accuracy"]
        run.log(0, {**before, **{k: v for k, v in summary.items() if k.startswith("warm/")}})
        save(0)  # the warm-started policy and the fresh RL optimizer: a resume never repeats the warm start

    engines: dict[int, HFEngine] = {}

    def make(step: int, policy, version: int, stop=None) -> Trajectories:
        engine = engines.setdefault(id(policy), HFEngine(policy, tokenizer))
        qs = env.questions(r.questions_per_step, seed=step_seed(cfg.seed, step))
        return rollout(engine, tokenizer, env, qs, r.group_size, r.turns, seed=step_seed(cfg.seed, step) * 64,
                       max_len=max_len, policy_version=version, stop=stop)

    producer = AsyncProducer(make, model, max_staleness=a.max_staleness, start=start, steps=t.steps) \
        if a.enabled and start < t.steps else None
    clock = RunClock(seconds_before)
    metrics: dict[str, float] = {}
    try:
        with progress_bar("search agent") as bar:
            job = bar.add_task("search agent", total=t.steps, completed=start, info="")
            for step in range(start + 1, t.steps + 1):
                t0 = time.perf_counter()
                model.eval()
                traj = producer.get() if producer is not None else make(step, model, step - 1)
                t_roll = time.perf_counter() - t0
                metrics = traj.metrics()
                metrics["async/staleness"] = float(step - 1 - traj.policy_version)
                batch = traj.batch.to(device)
                adv, am = objective.advantages(batch.rewards, batch.response_mask, batch.group_size)
                old = None  # synchronous: exactly on-policy, ratio 1 at the first (only) gradient step
                if producer is not None and a.correction == "behaviour":
                    old = batch.rollout_logprobs  # PPO ratio against the (stale) behaviour policy
                elif producer is not None:  # decoupled (AReaL): clip against pi_prox, weight pi_prox / pi_behaviour
                    with torch.no_grad():
                        old = sequence_logprobs(model, batch.prompt_ids, batch.prompt_mask, batch.completion_ids,
                                                batch.attention_mask, group_size=batch.group_size, temperature=tau)[0]
                model.train()
                um = update(model, objective, Prepared(batch, adv.advantages, old, None), opt, sched, epochs=1,
                            minibatches=1, micro_batch_size=t.micro_batch_size, grad_clip=t.optim.grad_clip,
                            generator=gen, temperature=tau)
                if producer is not None:
                    producer.publish(step, model)
                metrics.update({f"train/{k}": float(v) for k, v in am.items()})
                metrics.update(um)
                metrics.update({"train/lr": sched.get_last_lr()[0], "time/rollout": t_roll,
                                "time/step": time.perf_counter() - t0})
                if cfg.eval.every and step % cfg.eval.every == 0 and step < t.steps:
                    metrics.update(held_out_eval())
                if step % t.log_every == 0 or "eval/accuracy" in metrics:
                    run.log(step, metrics)
                if t.checkpoint_every and step % t.checkpoint_every == 0 and step < t.steps:
                    save(step)
                bar.update(job, advance=1, info=fmt_metrics(metrics, {"rollout/accuracy": "acc",
                                                                      "rollout/turns_mean": "turns",
                                                                      "async/staleness": "stale",
                                                                      "eval/accuracy": "heldout"}))
    finally:
        if producer is not None:
            producer.close()
    total = clock.seconds()
    seconds = total - clock.before  # this invocation's, for its steps per second
    if start < t.steps:
        save(t.steps, total)  # before the final evaluation's row, so a resume after a kill below logs that row once
    final = held_out_eval()
    run.log(t.steps, final)
    save_model(model, tokenizer, run.path / "model")
    summary.update(final)
    rows = [row for row in run.metrics() if "async/staleness" in row]
    summary.update({"time/train_seconds": total, "train/steps": t.steps,
                    "train/steps_per_second": (t.steps - start) / seconds if t.steps > start and seconds > 0 else 0.0,
                    "async/staleness_mean": sum(x["async/staleness"] for x in rows) / len(rows) if rows else 0.0,
                    "async/staleness_max": max((x["async/staleness"] for x in rows), default=0.0),
                    # seconds per step the trainer spent getting its batch (sync: generating it; async: waiting)
                    "time/rollout_mean": sum(x.get("time/rollout", 0.0) for x in rows) / len(rows) if rows else 0.0})
    return summary
