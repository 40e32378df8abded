"""Supervised fine-tuning on task generators or datasets (`rlx sft RECIPE`).

Each step draws `batch_size` training problems from the task with a seed derived from
(run seed, step), so the data stream is a pure function of the step and resume is exact.
Loss is next-token cross-entropy on the completion (reference answer + EOS) only; the prompt is
context. `train.pear` reweights it toward the policy's own distribution (paper pear,
`rlx.objectives.pear`). Held-out greedy accuracy is measured before training, every `eval.every` steps, and at
the end; the final model is written to OUT/model in Hugging Face format.
"""

from __future__ import annotations

import time
from typing import Literal

import torch
from pydantic import Field, model_validator

from rlx.config import ConfigError, Section
from rlx.evaluation.config import EvalConfig
from rlx.evaluation.evaluate import evaluate
from rlx.models import ModelConfig, load_policy, save_model
from rlx.models.lora import wrap_lora
from rlx.models.tokenizer import prompt_completion_rows
from rlx.objectives.pear import pear_loss
from rlx.robust.cadv import CAdvConfig, adversarial_loss, embedding_scale, off_by_one_behaviours, pair_batch, robust_eval
from rlx.rollout import make_engine
from rlx.runtime import pick_device, seed_everything, set_threads
from rlx.rundir import RunDir
from rlx.tasks import TaskConfig, make_task
from rlx.train.cft import CFTConfig, build_critiques
from rlx.train.checkpoint import RunClock, read_training_state, write_training_state
from rlx.train.optim import OptimConfig, make_optimizer
from rlx.train.progress import fmt_metrics, progress_bar

__all__ = ["Config", "SFTTrainConfig", "run", "sft_batch"]


class PearConfig(Section):
    """Paper pear: importance-reweighted SFT loss (off unless `level` is set)."""

    level: Literal["off", "sequence", "token", "block"] = Field("off", description="weight level; off = plain SFT")
    gamma: float = Field(1.0, ge=0, le=1, description="discount of the suffix log-ratios (token and block levels)")
    block: int = Field(4, ge=1, description="completion tokens per block (block level)")
    clip: float = Field(2.0, gt=0, description="clip log-weights to [-clip, clip] before normalising")
    behavior: str | None = Field(None, description="model dir of the policy that generated the SFT data; None: the "
                                 "task's reference completions, a deterministic generator (log pi_beta = 0)")

    @model_validator(mode="after")
    def _behavior_needs_a_level(self) -> "PearConfig":
        if self.behavior is not None and self.level == "off":
            raise ValueError("behavior is set but level is off: set level (sequence, token or block) or drop behavior")
        return self

    @property
    def enabled(self) -> bool:
        return self.level != "off"


class SFTTrainConfig(Section):
    steps: int = Field(1000, ge=1, description="optimizer steps")
    batch_size: int = Field(64, ge=1, description="problems per step")
    optim: OptimConfig = Field(default_factory=OptimConfig, description="optimizer and schedule")
    log_every: int = Field(10, ge=1, description="write metrics every this many steps")
    checkpoint_every: int = Field(200, ge=0, description="checkpoint every this many steps (0: only at the end)")
    pear: PearConfig = Field(default_factory=PearConfig, description="paper pear: reweight the SFT loss (off)")
    cft: CFTConfig = Field(default_factory=CFTConfig, description="paper cft: train on critiques of sampled "
                           "solutions of a few problems instead of on reference solutions (off)")
    cadv: CAdvConfig = Field(default_factory=CAdvConfig, description="paper cadv: adversarial training in embedding "
                             "space against off-by-one answers (off)")


class Config(Section):
    kind: Literal["sft"] = Field("sft", description="trainer")
    seed: int = Field(0, ge=0, description="seed for init, data and sampling")
    model: ModelConfig = Field(description="policy to train")
    task: TaskConfig = Field(description="where problems come from")
    train: SFTTrainConfig = Field(default_factory=SFTTrainConfig, description="training loop")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="held-out evaluation")


def sft_batch(tokenizer, prompts: list[str], completions: list[str], device) -> dict[str, torch.Tensor]:
    """Right-padded input_ids/attention_mask/labels; labels are -100 except on completion + EOS."""
    rows, label_rows = prompt_completion_rows(tokenizer, prompts, completions)
    width = max(len(r) for r in rows)
    pad = tokenizer.pad_token_id
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, lab) in enumerate(zip(rows, label_rows)):
        ids[i, : len(r)] = torch.tensor(r)
        labels[i, : len(lab)] = torch.tensor(lab)
        mask[i, : len(r)] = 1
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "labels": labels.to(device)}


def _token_loss(model, batch, pear: PearConfig | None = None, behavior=None) -> tuple[torch.Tensor, dict]:
    """Mean next-token NLL over completion tokens, or its PEAR-weighted form; returns (loss, metrics)."""
    logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
    targets = batch["labels"][:, 1:]
    if pear is None or not pear.enabled:
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1),
                                                 ignore_index=-100), {}
    mask = targets != -100  # [N, T-1]
    safe = targets.clamp(min=0)
    nll = torch.nn.functional.cross_entropy(logits.float().transpose(1, 2), safe, reduction="none")  # [N, T-1]
    beh = torch.zeros_like(nll)
    if behavior is not None:
        with torch.no_grad():
            b_logits = behavior(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
            beh = b_logits.float().log_softmax(-1).gather(2, safe.unsqueeze(2)).squeeze(2)
    loss, g = pear_loss(nll, beh, mask, pear.level, pear.gamma, pear.block, pear.clip)
    w = g[mask]
    return loss, {"pear/weight_max": w.max().item(), "pear/weight_min": w.min().item(),
                  "pear/ess_frac": (w.sum() ** 2 / (w.pow(2).sum() * w.numel())).item()}


def run(cfg: Config, run: RunDir) -> dict:
    set_threads(cfg.model.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.model.device)
    task = make_task(cfg.task)
    model, tokenizer = load_policy(cfg.model, seed=cfg.seed)
    if cfg.model.lora is not None:  # adapters only (it used to be ignored: every weight trained, silently)
        model = wrap_lora(model, cfg.model.lora)
    model.to(device)
    opt, sched = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg.train.optim, cfg.train.steps)
    engine = make_engine("hf", model, tokenizer)
    heldout = task.heldout(cfg.eval.n)
    behavior = None
    if cfg.train.pear.enabled and cfg.train.pear.behavior is not None:  # paper pear: the data's generator
        behavior, _ = load_policy(ModelConfig(path=cfg.train.pear.behavior, threads=cfg.model.threads))
        behavior.to(device).eval().requires_grad_(False)
        if behavior.config.vocab_size != model.config.vocab_size:
            raise ConfigError(f"config error: train.pear.behavior: vocabulary {behavior.config.vocab_size} differs from "
                              f"the policy's {model.config.vocab_size} (the two must share a tokenizer)")

    adv = cfg.train.cadv
    if adv.enabled and adv.mode == "ul" and cfg.train.pear.enabled:
        raise ConfigError("config error: train.cadv.mode = 'ul' with train.pear: pick one reweighting of the SFT loss")
    if adv.enabled and adv.utility == 0 and cfg.train.pear.enabled:
        raise ConfigError("config error: train.pear reweights the clean SFT loss, which train.cadv.utility: 0 drops "
                          "(it would be ignored)")
    if (adv.enabled or adv.reports) and (cfg.task.name != "arithmetic" or cfg.task.answer_format != "plain"):
        raise ConfigError(f"config error: train.cadv: its behaviours are plain-arithmetic off-by-one answers (a bare "
                          f"number vs the reference); task.name = {cfg.task.name!r} with answer_format = "
                          f"{getattr(cfg.task, 'answer_format', None)!r} needs task.name: arithmetic, answer_format: plain")
    if cfg.train.cft.enabled and (adv.enabled or cfg.train.pear.enabled):
        raise ConfigError("config error: train.cft with train.cadv or train.pear: critique data replaces the task's "
                          "reference completions; combine it with neither")
    scale = embedding_scale(model) if (adv.enabled or adv.reports) else 0.0  # of the initial model, also on resume
    ref = None
    if adv.mode == "ipo":  # C-AdvIPO's reference: the initial policy, frozen
        ref, _ = load_policy(cfg.model, seed=cfg.seed)
        ref.to(device).eval().requires_grad_(False)

    start, summary, critiques, last, seconds_before = 0, {}, [], {}, 0.0
    ckpt = run.latest_checkpoint() if run.resume else None
    if ckpt is not None:
        start, extra = read_training_state(ckpt, model, opt, sched)
        summary, critiques = extra.get("summary", {}), [tuple(r) for r in extra.get("cft", [])]
        last = extra.get("last", {})  # the last step's metrics (the summary's train/loss after a late kill)
        seconds_before = extra.get("train_seconds", 0.0)
        run.truncate_metrics(start)
    elif run.resume:
        run.start_over()
    if not summary:
        model.eval()
        before = evaluate(engine, task, heldout, cfg.eval, tokenizer, seed=cfg.seed).metrics
        summary = {"eval/accuracy_before": before["eval/accuracy"]}
        run.log(0, before)
    if cfg.train.cft.enabled and not critiques:  # paper cft: critiques of the starting model's own solutions
        model.eval()
        critiques, stats = build_critiques(engine, task, tokenizer, cfg.train.cft, seed=cfg.seed)
        summary.update(stats)
        run.log(0, stats)

    def save(step: int) -> None:
        run.save_checkpoint(step, lambda d: write_training_state(d, model, tokenizer, opt, sched, step,
                                                                 {"summary": summary, "cft": critiques,
                                                                  "last": metrics,
                                                                  "train_seconds": clock.seconds()}))

    clock = RunClock(seconds_before)
    metrics: dict[str, float] = dict(last)
    with progress_bar("sft") as bar:
        job = bar.add_task("sft", total=cfg.train.steps, completed=start, info="")
        for step in range(start + 1, cfg.train.steps + 1):
            t0 = time.perf_counter()
            model.train()
            if critiques:  # paper cft: a seeded draw of critique rows
                g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
                rows = [critiques[i] for i in torch.randint(len(critiques), (cfg.train.batch_size,), generator=g)]
                batch = sft_batch(tokenizer, [r[0] for r in rows], [r[1] for r in rows], device)
            else:
                problems = task.train_problems(cfg.train.batch_size, seed=cfg.seed * 1_000_003 + step)
                batch = sft_batch(tokenizer, [task.prompt(p, tokenizer) for p in problems],
                                  [task.reference_completion(p) for p in problems], device)
            if adv.enabled and adv.utility == 0:  # C-AdvIPO without utility data: no clean loss to compute
                loss, extra = torch.zeros((), device=device), {}
            else:
                loss, extra = _token_loss(model, batch, cfg.train.pear, behavior)
            if adv.enabled:  # paper cadv: the attacked behaviours' term, plus the clean loss as utility
                beh = off_by_one_behaviours(task, task.train_problems(adv.behaviours, seed=cfg.seed * 1_000_003 + step
                                                                      + 500_000_009), tokenizer)
                adv_loss, adv_metrics = adversarial_loss(model, ref, pair_batch(tokenizer, beh, device), adv, scale)
                extra = {**extra, **adv_metrics, "train/utility_loss": loss.item()}
                loss = adv.utility * loss + adv_loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.optim.grad_clip or float("inf"))
            lr = opt.param_groups[0]["lr"]  # the rate this step uses (get_last_lr after sched.step is the next one)
            opt.step()
            sched.step()
            metrics = {"train/loss": loss.item(), "train/grad_norm": gnorm.item(),
                       "train/lr": lr, "time/step": time.perf_counter() - t0, **extra}
            if cfg.eval.every and step % cfg.eval.every == 0 and step < cfg.train.steps:
                model.eval()
                metrics.update(evaluate(engine, task, heldout, cfg.eval, tokenizer, seed=cfg.seed).metrics)
            if step % cfg.train.log_every == 0 or "eval/accuracy" in metrics:
                run.log(step, metrics)
            if cfg.train.checkpoint_every and step % cfg.train.checkpoint_every == 0 and step < cfg.train.steps:
                save(step)  # the last step's checkpoint is written below, before the final evaluation
            bar.update(job, advance=1, info=fmt_metrics(metrics, {"train/loss": "loss", "eval/accuracy": "acc"}))

    if start < cfg.train.steps:  # (a resume from it, after a kill in what follows, trains no further)
        save(cfg.train.steps)  # before the final evaluation's row, so a resume logs that row once
    model.eval()
    final = evaluate(engine, task, heldout, cfg.eval, tokenizer, seed=cfg.seed).metrics
    run.log(cfg.train.steps, final)
    if cfg.model.lora is not None:
        model = model.merge_and_unload()  # the trained function in plain weights: what `model/` holds
    save_model(model, tokenizer, run.path / "model")
    summary.update(final)
    if adv.reports:  # paper cadv: attack success on held-out behaviours (lower is more robust)
        beh = off_by_one_behaviours(task, task.heldout(max(cfg.eval.n, adv.eval_n))[: adv.eval_n], tokenizer)
        report = robust_eval(model, tokenizer, beh, adv, scale, seed=cfg.seed)
        run.log(cfg.train.steps, report)
        summary.update(report)
    summary.update({"train/loss": metrics.get("train/loss", float("nan")), "time/train_seconds":
                    clock.seconds(), "train/steps": cfg.train.steps})
    return summary
