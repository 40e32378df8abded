"""RLVR steps per second: rlx's GRPO loop beside TRL's GRPOTrainer, same model, batch, loss, optimizer (CPU; or --device cuda).

    python bench/rlvr_vs_trl.py                        # settings a and b, 1 thread; last line `ratio: N`
    python bench/rlvr_vs_trl.py --threads 2 --repeats 3
    python bench/rlvr_vs_trl.py --settings a --profile # also cProfile rlx's loop (printed, not timed)
    python bench/rlvr_vs_trl.py --pieces               # only CPU time of each piece of rlx's step
    python bench/rlvr_vs_trl.py --overlap              # also both sides on 2 cores: rlx with rollout.staleness 1
                                                       # (rollouts on a second thread) vs TRL with 2 torch threads
    python bench/rlvr_vs_trl.py --device cuda --settings a,b,c   # the same comparison on a GPU (c: GPU only)

Needs the `bench` extra (trl, accelerate); installs nothing. Settings (arithmetic task, 2 operands, 2 digits, +-*):

  a  the default tiny recipe: assets/arith-base (else --model-a DIR, a 1M-param 4x128 Llama with the char
     tokenizer), 4 prompts x 8 samples = 32 completions per step, at most 8 new tokens, EOS allowed
     (per-step overhead dominates)
  b  compute-bound: a randomly initialised 4-layer, 256-wide Llama (MLP 1024), 4 prompts x 8 samples,
     exactly 64 new tokens (EOS logit pushed to -1e4 by a forward hook on lm_head, on both sides)
  c  (--device cuda only) a randomly initialised Qwen2 with Qwen2.5-0.5B's body (24 layers, 896 wide, 14 heads,
     2 KV heads, MLP 4864; 358M non-embedding parameters) and the char tokenizer, 8 prompts x 8 samples,
     exactly 128 new tokens, float32 on both sides

--device cuda runs both sides on the GPU (TRL use_cpu=False; both in float32 with torch's default fp32 matmul
precision, i.e. no TF32 on either side); the peak is then the best fp32 8192^3 matmul on that GPU, and
both clocks synchronise the device before they stamp. The CPU-seconds columns then mean host CPU time.

Same on both sides: weights (one saved HF directory, loaded twice), tokenizer, prompts distribution,
reward (rlx's arithmetic scorer), temperature 1 / top-p 1 / top-k 0, loss (TRL loss_type="grpo" with
scale_rewards="group" == rlx preset grpo: seq-mean-token-mean, group advantages divided by std + 1e-4,
ratio clip 0.2), beta = 0 (no reference model on either side), one optimizer step per generation
(TRL num_iterations=1; rlx epochs=1, minibatches=1), AdamW (lr 1e-5, betas (0.9, 0.95), eps 1e-8, wd 0),
grad clip 1.0, constant LR, torch threads = --threads.

Timing. TRL: a TrainerCallback stamps on_step_begin / on_step_end; `TRL step` is begin -> end (generation,
reward, loss, backward, optimizer; the dataloader fetch and Trainer logging fall outside it, in TRL's
favour); `TRL e2e` is end -> next end. rlx: the bench drives `rlx.train.rlvr.run` unchanged with a RunDir
whose `log` stamps the clock; one loop iteration (rollout, verify, advantages, update, metrics row,
progress bar) is the time between consecutive metrics rows. Periodic eval is off (eval.every=0,
eval.n=4, before/after eval fall outside the timed rows), checkpoints only at the end. The first
--warmup steps of each run are dropped; the median is over the rest, pooled over --repeats runs
per side, run in the order rlx, TRL, TRL, rlx, ... in one process (the machine is shared).

MFU = useful FLOPs per step / median step seconds / measured matmul peak, with P = non-embedding
parameters, useful FLOPs = 2 P x generated tokens (sampling) + 6 P x (prompt + generated) tokens
(forward + backward of the update). Prompt prefill, attention and the lm_head are not counted.
The peak is the best of several timed fp32 [1024 x 1024] @ [1024 x 1024] matmuls at --threads threads.
On a shared machine wall time includes time the process waited for a core; the CPU-seconds columns
(time.process_time over the same windows) and MFU(CPU) (against the matmul peak per CPU second) show
the work each side did with the CPU it actually got.

--overlap adds two sides that each use 2 cores: rlx with rollout.staleness 1 (next step's rollouts sampled
on a background thread during the update, 1 torch thread per Python thread; one-step off-policy, so a
different algorithm from TRL's on-policy step) and TRL with 2 torch threads; their MFU is against the
2-thread matmul peak. The headline `ratio:` line stays the same-thread-count, on-policy comparison.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
LR, BETAS, EPS, WD, CLIP, ADV_EPS = 1e-5, (0.9, 0.95), 1e-8, 0.0, 1.0, 1e-4


@dataclass(frozen=True)
class Side:
    """One way to run a step: which library, how many torch threads, rlx's rollout.staleness."""

    key: str
    label: str
    lib: str  # "rlx" | "trl"
    threads: int
    staleness: int = 0

    @property
    def cores(self) -> int:
        return self.threads + self.staleness  # staleness 1: a second Python thread samples


@dataclass
class Setting:
    name: str
    model_dir: str
    prompts: int
    group: int
    max_new: int
    no_eos: bool
    steps: int

    @property
    def rows(self) -> int:
        return self.prompts * self.group


# -- shared pieces -------------------------------------------------------------------------------

def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def matmul_peak(threads: int, n: int = 1024, reps: int = 5, trials: int = 7, device: str = "cpu") -> tuple[float, float]:
    """Best GFLOP/s of fp32 n x n matmuls at `threads` threads: per wall second, per CPU second."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    out = torch.empty(n, n, device=device)
    torch.mm(a, b, out=out)
    sync(device)
    best, best_cpu = float("inf"), float("inf")
    for _ in range(trials):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(reps):
            torch.mm(a, b, out=out)
        sync(device)
        best = min(best, (time.perf_counter() - t0) / reps)
        best_cpu = min(best_cpu, (time.process_time() - c0) / reps)
    return 2 * n ** 3 / best / 1e9, 2 * n ** 3 / best_cpu / 1e9


def non_embedding_params(model) -> int:
    emb = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding) for p in m.parameters()}
    head = model.get_output_embeddings()
    if head is not None:
        emb |= {id(p) for p in head.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in emb)


def suppress_eos(model, eos_id: int) -> None:
    """Push the EOS logit to -1e4 (finite: entropies stay finite) so every completion has max_new tokens."""
    bias = torch.zeros(model.config.vocab_size)
    bias[eos_id] = -1e4
    model.lm_head.register_forward_hook(lambda mod, inp, out: out + bias.to(out.device, out.dtype))


def make_b_model(out: Path, width: int = 256, **shape) -> str:
    """A random-init decoder with the char tokenizer (default: setting b's 4 x 256 Llama); `shape` overrides
    TinyModelConfig fields (setting c passes Qwen2.5-0.5B's body)."""
    from rlx.models import TinyModelConfig, build_tiny_model, char_tokenizer, save_model

    tok = char_tokenizer()
    cfg = TinyModelConfig(**{"hidden_size": width, "num_layers": 4, "num_heads": 4, "num_kv_heads": 4,
                             "intermediate_size": 4 * width, "max_position": 256, **shape})
    save_model(build_tiny_model(cfg, tok, seed=0), tok, out)
    return str(out)


def task_and_tokens(model_dir: str):
    from transformers import AutoTokenizer

    from rlx.tasks import make_task
    from rlx.tasks.config import ArithmeticConfig

    task = make_task(ArithmeticConfig())
    tok = AutoTokenizer.from_pretrained(model_dir)
    probe = task.train_problems(256, seed=999)
    prompt_len = statistics.fmean(len(tok(task.prompt(p))["input_ids"]) for p in probe)
    return task, prompt_len


# -- rlx -----------------------------------------------------------------------------------------

def run_rlx(s: Setting, threads: int, seed: int, profile: bool = False, staleness: int = 0,
            device: str = "cpu") -> dict:
    from rlx.rundir import RunDir
    from rlx.train import rlvr

    class TimedRunDir(RunDir):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            self.stamps: list[tuple[int, float]] = []
            self.cpu: list[tuple[int, float]] = []
            self.rows: list[dict] = []

        def log(self, step, metrics):
            sync(device)
            self.stamps.append((int(step), time.perf_counter()))
            self.cpu.append((int(step), time.process_time()))
            self.rows.append({"step": int(step), **metrics})
            super().log(step, metrics)

    cfg = rlvr.Config.model_validate({
        "kind": "rlvr", "seed": seed,
        "model": {"path": s.model_dir, "threads": threads, "device": device},
        "task": {"name": "arithmetic"},
        "rollout": {"prompts_per_step": s.prompts, "group_size": s.group, "temperature": 1.0, "top_p": 1.0,
                    "top_k": 0, "max_new_tokens": s.max_new, "staleness": staleness},
        "objective": {"preset": "grpo", "adv_eps": ADV_EPS},
        "train": {"steps": s.steps, "micro_batch_size": s.rows, "checkpoint_every": 0,
                  "optim": {"lr": LR, "betas": list(BETAS), "eps": EPS, "weight_decay": WD, "grad_clip": CLIP}},
        "eval": {"n": 4, "every": 0, "max_new_tokens": 4},
    })
    orig = rlvr.load_policy
    if s.no_eos:
        def load_no_eos(mcfg, seed=0):
            model, tok = orig(mcfg, seed=seed)
            suppress_eos(model, tok.eos_token_id)
            return model, tok
        rlvr.load_policy = load_no_eos
    prof = cProfile.Profile() if profile else None
    try:
        with tempfile.TemporaryDirectory() as d:
            rd = TimedRunDir(Path(d) / "run", config_yaml="bench\n")
            if prof:
                prof.enable()
            rlvr.run(cfg, rd)
            if prof:
                prof.disable()
    finally:
        rlvr.load_policy = orig
    firsts: dict[int, float] = {}  # first row per step (the final eval re-logs the last step after the loop)
    for st, t in rd.stamps:
        firsts.setdefault(st, t)
    times = [firsts[k] - firsts[k - 1] for k in range(1, s.steps + 1)]
    cfirst: dict[int, float] = {}
    for st, t in rd.cpu:
        cfirst.setdefault(st, t)
    cpu = [cfirst[k] - cfirst[k - 1] for k in range(1, s.steps + 1)]
    rows = {r["step"]: r for r in rd.rows if "time/step" in r}
    gen = [rows[k]["rollout/response_len"] * s.rows for k in range(1, s.steps + 1)]
    keys = ("time/rollout", "time/advantages", "time/update", "time/logprobs", "time/sync")
    stages = {key: [rows[k].get(key, 0.0) for k in range(1, s.steps + 1)]
              for key in keys + (("time/rollout_background",) if staleness else ())}
    return {"times": times, "cpu": cpu, "gen_tokens": gen, "stages": stages, "profile": prof}


# -- TRL -----------------------------------------------------------------------------------------

def trl_args(s: Setting, threads: int, seed: int, out: str, device: str = "cpu"):
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=out, use_cpu=device == "cpu", bf16=False, fp16=False, gradient_checkpointing=False, seed=seed,
        per_device_train_batch_size=s.rows, gradient_accumulation_steps=1, num_generations=s.group,
        max_completion_length=s.max_new, temperature=1.0, top_p=1.0, top_k=0,
        learning_rate=LR, adam_beta1=BETAS[0], adam_beta2=BETAS[1], adam_epsilon=EPS, weight_decay=WD,
        max_grad_norm=CLIP, lr_scheduler_type="constant", warmup_steps=0,
        beta=0.0, num_iterations=1, loss_type="grpo", scale_rewards="group", epsilon=0.2,
        max_steps=s.steps, logging_steps=10 ** 6, report_to="none", save_strategy="no", disable_tqdm=True,
        log_completions=False, dataloader_num_workers=0, remove_unused_columns=False,
    )


def run_trl(s: Setting, threads: int, seed: int, device: str = "cpu") -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOTrainer

    from rlx.tasks import make_task
    from rlx.tasks.config import ArithmeticConfig

    torch.set_num_threads(threads)
    task = make_task(ArithmeticConfig())
    problems = task.train_problems(s.steps * s.prompts + 64, seed=seed + 7)
    by_prompt = {task.prompt(p): p for p in problems}
    data = Dataset.from_dict({"prompt": list(by_prompt)})
    gen_tokens: list[int] = []

    def reward(prompts, completions, completion_ids=None, **_):
        gen_tokens.append(sum(len(c) for c in completion_ids))
        return [task.score(c, by_prompt[p]).reward for p, c in zip(prompts, completions)]

    class Clock(TrainerCallback):
        def __init__(self):
            self.begin, self.cbegin, self.step, self.cpu, self.ends = 0.0, 0.0, [], [], []

        def on_step_begin(self, args, state, control, **kw):
            sync(device)
            self.begin, self.cbegin = time.perf_counter(), time.process_time()

        def on_step_end(self, args, state, control, **kw):
            sync(device)
            now = time.perf_counter()
            self.cpu.append(time.process_time() - self.cbegin)
            self.step.append(now - self.begin)
            self.ends.append(now)
            assert torch.get_num_threads() == threads, torch.get_num_threads()

    model = AutoModelForCausalLM.from_pretrained(s.model_dir, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(s.model_dir, padding_side="left")
    if s.no_eos:
        suppress_eos(model, tok.eos_token_id)
    clock = Clock()
    with tempfile.TemporaryDirectory() as d:
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=trl_args(s, threads, seed, d, device),
                              train_dataset=data, processing_class=tok, callbacks=[clock])
        from transformers import PrinterCallback

        trainer.remove_callback(PrinterCallback)  # no per-run metrics dict on stdout
        trainer.train()
    e2e = [b - a for a, b in zip(clock.ends, clock.ends[1:])]
    return {"times": clock.step, "cpu": clock.cpu, "e2e": e2e, "gen_tokens": gen_tokens, "optim": str(trainer.args.optim)}


# -- report --------------------------------------------------------------------------------------

def med(xs, skip):
    xs = xs[skip:]
    return statistics.median(xs) if xs else float("nan")


def run_side(side: Side, s: Setting, seed: int, device: str = "cpu") -> dict:
    if side.lib == "rlx":
        return run_rlx(s, side.threads, seed, staleness=side.staleness, device=device)
    return run_trl(s, side.threads, seed, device)


def bench_setting(s: Setting, args, peaks: dict[int, tuple[float, float]], log) -> dict[str, float]:
    """Run every side of setting `s`; returns {"ratio": same-thread rlx/TRL, "overlap": 2-core ratio (or absent)}."""
    from transformers import AutoModelForCausalLM

    task, prompt_len = task_and_tokens(s.model_dir)
    P = non_embedding_params(AutoModelForCausalLM.from_pretrained(s.model_dir))
    log(f"\n== setting {s.name}: {s.model_dir}  P(non-embedding) = {P:,}  batch {s.prompts} prompts x {s.group} "
        f"= {s.rows} completions  max_new_tokens {s.max_new}  EOS {'suppressed' if s.no_eos else 'allowed'}  "
        f"prompt {prompt_len:.2f} tokens  {s.steps} steps per run, {args.warmup} warm-up dropped")
    sides = [Side("rlx", "rlx", "rlx", args.threads), Side("trl", "TRL", "trl", args.threads)]
    if args.overlap:
        sides += [Side("rlx_ahead", "rlx st1", "rlx", 1, staleness=1), Side("trl_2t", "TRL 2t", "trl", 2)]
    res = {side.key: [] for side in sides}
    order = []
    for r in range(args.repeats):
        order += sides if r % 2 == 0 else sides[::-1]
    for i, side in enumerate(order):
        seed = i
        t0 = time.perf_counter()
        out = run_side(side, s, seed, args.device)
        res[side.key].append(out)
        log(f"  run {i + 1}/{len(order)} {side.label:7s}: {time.perf_counter() - t0:5.1f} s total, median step "
            f"{med(out['times'], args.warmup):.4f} s, load {os.getloadavg()[0]:.2f}")
    k = args.warmup
    rows = {}
    for side in sides:
        wall_peak, cpu_peak = peaks[side.cores]
        times = [t for o in res[side.key] for t in o["times"][k:]]
        cpus = [t for o in res[side.key] for t in o["cpu"][k:]]
        toks = [g for o in res[side.key] for g in o["gen_tokens"][k:]]
        step, cpu = statistics.median(times), statistics.median(cpus)
        gen = statistics.fmean(toks)
        flops = 2 * P * gen + 6 * P * (s.rows * prompt_len + gen)
        rows[side.key] = dict(step=step, cpu=cpu, gen=gen, tps=gen / step, mfu=flops / step / (wall_peak * 1e9),
                              mfu_cpu=flops / cpu / (cpu_peak * 1e9), gflop=flops / 1e9,
                              spread=(min(statistics.median(o["times"][k:]) for o in res[side.key]),
                                      max(statistics.median(o["times"][k:]) for o in res[side.key])))
    trl_e2e = statistics.median([t for o in res["trl"] for t in o["e2e"][max(k - 1, 0):]])
    rlx_stages = {key: statistics.median([v for o in res["rlx"] for v in o["stages"][key][k:]])
                  for key in res["rlx"][0]["stages"]}
    log(f"  useful GFLOP per step: 2P x gen + 6P x (prompt + gen) = {rows['rlx']['gflop']:.2f} (rlx), "
        f"{rows['trl']['gflop']:.2f} (TRL)")
    log(f"  {'side':7s} {'s/step':>8s} {'runs min..max':>17s} {'steps/s':>8s} {'gen tok/step':>12s} "
        f"{'gen tok/s':>10s} {'MFU':>7s} | {'CPU s/step':>10s} {'MFU(CPU)':>8s}")
    for side in sorted(sides, key=lambda x: (x.cores, x.lib != "trl")):
        r = rows[side.key]
        log(f"  {side.label:7s} {r['step']:8.4f} {r['spread'][0]:8.4f}..{r['spread'][1]:<8.4f} {1 / r['step']:8.2f} "
            f"{r['gen']:12.1f} {r['tps']:10.0f} {100 * r['mfu']:6.1f}% | {r['cpu']:10.4f} {100 * r['mfu_cpu']:7.1f}%")
    log(f"  TRL end-to-end (on_step_end -> next on_step_end, includes dataloader + logging): {trl_e2e:.4f} s")
    log("  rlx stage medians (wall): " + "  ".join(f"{k.split('/')[1]} {v:.4f}" for k, v in rlx_stages.items())
        + " s")
    ratio = rows["trl"]["step"] / rows["rlx"]["step"]
    log(f"  setting {s.name}: rlx / TRL steps per second = {ratio:.2f} (wall), "
        f"{rows['trl']['cpu'] / rows['rlx']['cpu']:.2f} (CPU seconds per step)")
    out = {"ratio": ratio}
    if args.overlap:
        ahead = {key: statistics.median([v for o in res["rlx_ahead"] for v in o["stages"][key][k:]])
                 for key in ("time/rollout", "time/update", "time/rollout_background")}
        log(f"  rlx st1 stage medians (wall): rollout wait {ahead['time/rollout']:.4f}  update "
            f"{ahead['time/update']:.4f}  rollout on the second thread {ahead['time/rollout_background']:.4f} s")
        out["overlap"] = rows["trl_2t"]["step"] / rows["rlx_ahead"]["step"]
        log(f"  setting {s.name}, 2 cores each: rlx (staleness 1) / TRL (2 threads) steps per second = "
            f"{out['overlap']:.2f}; rlx (staleness 1) / TRL ({args.threads} thread(s)) = "
            f"{rows['trl']['step'] / rows['rlx_ahead']['step']:.2f}")
    if args.profile:
        profiled = run_rlx(Setting(**{**s.__dict__, "steps": max(6, s.steps // 2)}), args.threads, 0, profile=True,
                           device=args.device)
        buf = io.StringIO()
        st = pstats.Stats(profiled["profile"], stream=buf).strip_dirs().sort_stats("tottime")
        st.print_stats(25)
        st.sort_stats("cumulative").print_stats(45)
        log(f"  -- cProfile of rlx.train.rlvr.run, setting {s.name} (includes model load, before/after eval) --")
        log(buf.getvalue())
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch threads on both sides (default 1)")
    ap.add_argument("--settings", default="a,b", help="comma list of a, b (and c with --device cuda)")
    ap.add_argument("--steps-a", type=int, default=24, help="optimizer steps per run, setting a")
    ap.add_argument("--steps-b", type=int, default=7, help="optimizer steps per run, setting b")
    ap.add_argument("--steps-c", type=int, default=6, help="optimizer steps per run, setting c (cuda only)")
    ap.add_argument("--device", default="cpu", help="cpu (default) or cuda: where both sides run")
    ap.add_argument("--warmup", type=int, default=2, help="steps dropped at the start of every run")
    ap.add_argument("--repeats", type=int, default=2, help="runs per side per setting (alternating order)")
    ap.add_argument("--model-a", default=None, help="HF dir for setting a (default assets/arith-base)")
    ap.add_argument("--profile", action="store_true", help="also print a cProfile of rlx's loop per setting")
    ap.add_argument("--overlap", action="store_true",
                    help="also run rlx with rollout.staleness 1 and TRL with 2 threads (2 cores each side)")
    ap.add_argument("--pieces", action="store_true",
                    help="only time the pieces of one rlx step per setting (no TRL, no ratio line)")
    args = ap.parse_args(argv)
    if args.threads < 1:
        raise SystemExit("--threads must be >= 1")
    names = args.settings.split(",")
    if unknown := [n for n in names if n not in ("a", "b", "c")]:
        raise SystemExit(f"--settings: unknown {unknown}; choose from a, b, c")
    if not args.device.startswith(("cpu", "cuda")):
        raise SystemExit(f"--device {args.device!r}: use cpu or cuda")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available here")
    if "c" in names and not args.device.startswith("cuda"):
        raise SystemExit("--settings c is a GPU setting: add --device cuda")
    if args.pieces and args.device != "cpu":
        raise SystemExit("--pieces times CPU pieces only: leave --device at cpu")
    warnings.filterwarnings("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    def log(msg: str) -> None:
        print(msg, flush=True)

    import transformers
    import trl

    transformers.utils.logging.disable_progress_bar()

    model_a = args.model_a or str(ROOT / "assets" / "arith-base")
    if args.model_a and not (Path(model_a) / "config.json").is_file():
        raise SystemExit(f"--model-a: no HF checkpoint (config.json) at {model_a}")
    log(f"rlvr_vs_trl  {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}  load average "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}  cores {os.cpu_count()}  threads {args.threads}")
    log(f"torch {torch.__version__}  transformers {transformers.__version__}  trl {trl.__version__}  "
        f"python {sys.version.split()[0]}")
    peaks = {}
    for n in sorted({args.threads} | ({1, 2} if args.overlap else set())):
        size = 8192 if args.device != "cpu" else 1024
        peaks[n] = matmul_peak(n, n=size, device=args.device)
        log(f"measured matmul peak: {peaks[n][0]:.1f} GFLOP/s per wall second, {peaks[n][1]:.1f} GFLOP/s per CPU "
            f"second (fp32 {size}^3 on {args.device}, {n} thread(s), best of 7)")
    if args.device != "cpu":
        log(f"device {args.device}: {torch.cuda.get_device_name()}  fp32 matmul precision "
            f"{torch.get_float32_matmul_precision()} (TF32 off on both sides)")
    with tempfile.TemporaryDirectory() as d:
        b_dir = make_b_model(Path(d) / "b_model") if "b" in names else ""
        c_dir = make_b_model(Path(d) / "c_model", width=896, arch="qwen2", num_layers=24, num_heads=14,
                             num_kv_heads=2, intermediate_size=4864) if "c" in names else ""
        if not (Path(model_a) / "config.json").is_file():
            log(f"note: {model_a} is missing; setting a uses a random-init 4x128 Llama (MLP 512) instead")
            model_a = make_b_model(Path(d) / "a_model", width=128)
        probe = Setting("a", model_a, 4, 8, 8, False, 4)
        ta = trl_args(probe, args.threads, 0, d, args.device)
        keys = ("use_cpu", "bf16", "fp16", "gradient_checkpointing", "per_device_train_batch_size",
                "gradient_accumulation_steps", "num_generations", "generation_batch_size", "steps_per_generation",
                "max_completion_length", "temperature", "top_p", "top_k", "learning_rate", "adam_beta1",
                "adam_beta2", "adam_epsilon", "weight_decay", "max_grad_norm", "lr_scheduler_type", "optim",
                "beta", "num_iterations", "loss_type", "scale_rewards", "epsilon", "logging_steps",
                "report_to", "save_strategy", "use_vllm", "torch_compile", "disable_dropout")
        log("TRL GRPOConfig (setting a; b differs only in max_completion_length=64, c in the batch and length):")
        log("  " + json.dumps({k: (str(getattr(ta, k)) if not isinstance(getattr(ta, k), (int, float, bool, list))
                                    else getattr(ta, k)) for k in keys}))
        log(f"rlx: preset grpo, adv_eps {ADV_EPS}, AdamW lr {LR} betas {BETAS} eps {EPS} wd {WD}, grad clip "
            f"{CLIP}, epochs 1, minibatches 1, micro_batch = batch, rollout engine hf, eval.every 0")
        ratios = {}
        settings = {"a": Setting("a", model_a, 4, 8, 8, False, args.steps_a),
                    "b": Setting("b", b_dir, 4, 8, 64, True, args.steps_b),
                    "c": Setting("c", c_dir, 8, 8, 128, True, args.steps_c)}
        for name in names:
            if args.pieces:
                from rlvr_pieces import pieces

                pieces(settings[name], args.threads, log)
            else:
                ratios[name] = bench_setting(settings[name], args, peaks, log)
    if args.pieces:
        return
    log("\nsummary: rlx / TRL steps per second: " + ", ".join(f"{k} {v['ratio']:.2f}" for k, v in ratios.items()))
    if args.overlap:
        log("2 cores each side, rlx rollout.staleness 1 / TRL 2 threads: "
            + ", ".join(f"{k} {v['overlap']:.2f}" for k, v in ratios.items()))
    log(f"ratio: {ratios['a']['ratio'] if 'a' in ratios else float('nan'):.2f}")


if __name__ == "__main__":
    main()
