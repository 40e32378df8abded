"""Tabular toy for paper guig1: which grounding reward makes a policy exploit box size?

A 1-D screen of width W = 16; each of P = 64 prompts has a target span [g1, g2] of width 1-6 at a
random place. The policy is a table of logits per prompt over all 136 spans [x1, x2] (0 <= x1 < x2
<= 16), initialised with a random prior (std 1.5). G = 8 samples per prompt, GRPO through
`rlx.objectives.build_objective` (Dr.GRPO advantages, seq-mean-token-sum-norm, as GUI-G1's code),
plain SGD, 300 steps, 5 seeds. Rewards (`rlx.rewards.grounding`):

    hit        1 if the predicted span's centre is inside the target
    iou        IoU
    hit+iou    R_hit + R_IoU (the GUI-R1-style sum GUI-G1 starts from)
    gui_g1     R_hit + 0.25 R_IoU + 0.125 R_box (box-size constraint)

Reported under the final policy (expectations over its distribution): hit rate, IoU, and the size
ratio E[predicted width] / target width (1 = right size; > 1 the boxes grew, < 1 they shrank).
GUI-G1's claim: hit-style rewards shrink boxes, IoU-style rewards grow them, the box term keeps the
size right. Run: python experiments/objectives_toy/guig1_boxes.py   (about a minute)
"""

from __future__ import annotations

import statistics

import torch

from rlx.objectives import LossInputs, ObjectiveConfig, build_objective, normalizer_for
from rlx.rewards.grounding import gui_g1_reward, hit, iou

W, P, G, STEPS, LR = 16, 64, 8, 300, 64.0
SPANS = torch.tensor([[a, 0, b, 0] for a in range(W) for b in range(a + 1, W + 1)], dtype=torch.float32)  # [136, 4]
REWARDS = {
    "hit": lambda p, g: hit(p, g),
    "iou": lambda p, g: iou(p, g),
    "hit+iou": lambda p, g: hit(p, g) + iou(p, g),
    "gui_g1": lambda p, g: gui_g1_reward(p, g, W, 1),
}


def targets(gen: torch.Generator) -> torch.Tensor:
    width = torch.randint(1, 7, (P,), generator=gen)
    start = (torch.rand(P, generator=gen) * (W - width + 1)).floor()
    return torch.stack([start, torch.zeros(P), start + width, torch.zeros(P)], 1)


def measure(logits: torch.Tensor, tgt: torch.Tensor) -> tuple[float, float, float]:
    p = torch.softmax(logits.detach(), -1)  # [P, 136]
    g = tgt[:, None, :].expand(P, SPANS.shape[0], 4)
    s = SPANS[None].expand(P, -1, -1)
    width = (p * (SPANS[:, 2] - SPANS[:, 0])).sum(1)
    return ((p * hit(s, g)).sum(1).mean().item(), (p * iou(s, g)).sum(1).mean().item(),
            (width / (tgt[:, 2] - tgt[:, 0])).mean().item())


def run(reward: str, seed: int, steps: int = STEPS) -> tuple[float, float, float]:
    gen = torch.Generator().manual_seed(seed)
    tgt = targets(gen)
    logits = (torch.randn(P, SPANS.shape[0], generator=gen) * 1.5).requires_grad_(True)
    obj = build_objective(ObjectiveConfig(preset="dr_grpo", aggregation_max_len=1), max_new_tokens=1)
    opt = torch.optim.SGD([logits], lr=LR)
    mask = torch.ones(P * G, 1, dtype=torch.bool)
    rows = torch.arange(P).repeat_interleave(G)
    for _ in range(steps):
        with torch.no_grad():
            ans = torch.multinomial(torch.softmax(logits, -1), G, replacement=True, generator=gen).reshape(-1)
            r = REWARDS[reward](SPANS[ans], tgt[rows])
            old = torch.log_softmax(logits, -1)[rows, ans][:, None]
            adv, _ = obj.advantages(r, mask, G)
        lp = torch.log_softmax(logits, -1)[rows, ans][:, None]
        loss, _ = obj.loss(LossInputs(lp, old, adv.advantages, mask), normalizer_for(mask))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return measure(logits, tgt)


def fmt(xs) -> str:
    return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs):.3f}"


def main() -> None:
    torch.set_num_threads(1)
    seeds = range(5)
    init = [run("hit", s, 0) for s in seeds]
    print("| reward | hit rate | IoU | size ratio (pred / target width) |\n|---|---|---|---|")
    print(f"| initial policy | {fmt([r[0] for r in init])} | {fmt([r[1] for r in init])} | {fmt([r[2] for r in init])} |")
    for name in REWARDS:
        res = [run(name, s) for s in seeds]
        print(f"| {name} | {fmt([r[0] for r in res])} | {fmt([r[1] for r in res])} | {fmt([r[2] for r in res])} |")
    print(f"\nmean ± std over {len(seeds)} seeds, {STEPS} GRPO steps")


if __name__ == "__main__":
    main()
