"""Tabular toy for papers nsr and ace, trained through `rlx.objectives.build_objective`.

64 prompts, 20 one-token answers each, 4 of them correct; the policy is a table of logits
initialised from a random prior (the reference). G = 8 samples per prompt, plain SGD (lr 16 on the
token-mean loss over P*G = 512 samples), pass@1 and diversity every 10 steps, 5 seeds.

NSR claim: training only on negatives improves accuracy while redistributing mass to the other
candidates by the prior, so the spread over correct answers survives; positive reinforcement
collapses onto one answer. We report pass@1 (= mean correct mass) and the effective number of
correct answers exp(H(p | correct)) (4 = uniform over the correct set, 1 = collapsed).

ACE claim: errors the policy became overconfident in (log pi/pi_ref > 0) get a stronger push down.
Setup: the policy starts at the reference plus +3 on one wrong answer per prompt; we report the mass
left on that answer after 20 steps for GRPO and GRPO + ACE (alpha = 1).

Run: python experiments/objectives_toy/nsr_ace_bandit.py   (about 20 s)
"""

from __future__ import annotations

import statistics

import torch

from rlx.objectives import LossInputs, ObjectiveConfig, build_objective, normalizer_for

P, K, C, G = 64, 20, 4, 8
LR = 16.0  # the loss averages over P*G = 512 tokens


def _measure(logits: torch.Tensor, correct: torch.Tensor) -> tuple[float, float, float]:
    p = torch.softmax(logits.detach(), -1)
    pass1 = p[correct].view(P, C).sum(1)
    pc = p[:, :C] / pass1[:, None]
    eff = torch.exp(-(pc * pc.clamp_min(1e-30).log()).sum(1))
    return pass1.mean().item(), eff.mean().item(), p[:, C].mean().item()


def run(cfg: ObjectiveConfig, seed: int, steps: int, boost: float = 0.0, every: int = 0):
    gen = torch.Generator().manual_seed(seed)
    prior = torch.randn(P, K, generator=gen) * 1.5
    correct = torch.zeros(P, K, dtype=torch.bool)
    correct[:, :C] = True
    ref = torch.log_softmax(prior, -1)
    start = prior.clone()
    start[:, C] += boost  # an overconfident error: wrong answer C boosted above the reference
    logits = start.clone().requires_grad_(True)
    obj = build_objective(cfg, max_new_tokens=1)
    opt = torch.optim.SGD([logits], lr=LR)
    mask = torch.ones(P * G, 1, dtype=torch.bool)
    rows = torch.arange(P).repeat_interleave(G)
    trace = []
    for step in range(steps):
        if every and step % every == 0:
            trace.append(_measure(logits, correct))
        with torch.no_grad():
            probs = torch.softmax(logits, -1)
            ans = torch.multinomial(probs, G, replacement=True, generator=gen).reshape(-1)  # [P*G]
            rewards = correct[rows, ans].float()
            old = torch.log_softmax(logits, -1)[rows, ans][:, None]
            adv, _ = obj.advantages(rewards, mask, G, old_logprobs=old, ref_logprobs=ref[rows, ans][:, None])
        lp = torch.log_softmax(logits, -1)[rows, ans][:, None]
        loss, _ = obj.loss(LossInputs(lp, old, adv.advantages, mask), normalizer_for(mask))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return trace if every else _measure(logits, correct)


def summary(xs):
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def main() -> None:
    torch.set_num_threads(1)
    seeds = range(5)
    print(f"initial (reference) pass@1 / effective #correct: "
          f"{summary([run(ObjectiveConfig(), s, 0)[0] for s in seeds])} / {summary([run(ObjectiveConfig(), s, 0)[1] for s in seeds])}")
    print("\n| objective | step | pass@1 | effective # correct answers (of 4) |")
    print("|---|---|---|---|")
    variants = {
        "grpo": ObjectiveConfig(preset="grpo"),
        "nsr (positive_weight 0)": ObjectiveConfig(preset="nsr"),
        "w_reinforce (lambda 0.1)": ObjectiveConfig(preset="w_reinforce"),
    }
    for name, cfg in variants.items():
        traces = [run(cfg, s, 41, every=10) for s in seeds]
        for i, step in enumerate(range(0, 41, 10)):
            if step == 0:
                continue
            res = [t[i] for t in traces]
            print(f"| {name} | {step} | {summary([r[0] for r in res])} | {summary([r[1] for r in res])} |")
    print("\n| objective (20 steps from a boosted error, +3 logits) | mass on the overconfident error | pass@1 |")
    print("|---|---|---|")
    start = [run(ObjectiveConfig(), s, 0, boost=3.0) for s in seeds]
    print(f"| start | {summary([r[2] for r in start])} | {summary([r[0] for r in start])} |")
    for name, cfg in {"grpo": ObjectiveConfig(preset="grpo"),
                      "grpo + ace (alpha 1)": ObjectiveConfig(preset="grpo", ace_alpha=1.0)}.items():
        res = [run(cfg, s, 20, boost=3.0) for s in seeds]
        print(f"| {name} | {summary([r[2] for r in res])} | {summary([r[0] for r in res])} |")


if __name__ == "__main__":
    main()
