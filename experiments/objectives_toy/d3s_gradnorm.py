"""Paper d3s: does selecting rollouts by max Var(A), and tokens by |A| x H, give larger policy gradients?

Toy policy with shared parameters: logits_t = x_prompt @ W + P[t] over a 16-token vocabulary,
8-token completions, reward = fraction of tokens in a prompt-specific "good" half of the vocabulary
(non-binary). B = 16 prompts x G = 16 rollouts, GRPO advantages on the full group. We compare the
norm of the policy gradient (seq-mean-token-mean of -A log pi over the kept rollouts / tokens) for
  - sample level: keep 8 of 16 rollouts per group by `d3s_sample_select` vs 8 at random;
  - token level: keep 25% of tokens by `d3s_token_select` vs 25% at random,
averaged over 200 independent batches (paired: same batch for both).

Run: python experiments/objectives_toy/d3s_gradnorm.py   (about 15 s)
"""

from __future__ import annotations

import statistics

import torch

from rlx.objectives import aggregate, grpo_advantages
from rlx.sampling import d3s_sample_select, d3s_token_select

B, G, T, V, D = 16, 16, 8, 16, 12


def main() -> None:
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    W = (torch.randn(D, V, generator=gen) * 0.5).requires_grad_(True)
    pos = (torch.randn(T, V, generator=gen) * 0.5).requires_grad_(True)
    params = [W, pos]

    def grad_norm(x, tokens, adv, mask):
        logits = (x @ W)[:, None, :] + pos[None]
        lp = torch.log_softmax(logits, -1).gather(-1, tokens[..., None]).squeeze(-1)
        loss = aggregate(-adv * lp, mask, "seq-mean-token-mean")
        grads = torch.autograd.grad(loss, params)
        return torch.sqrt(sum((g**2).sum() for g in grads)).item()

    sample_ratios, token_ratios, var_gain = [], [], []
    for _ in range(200):
        xp = torch.randn(B, D, generator=gen)
        good = torch.rand(B, V, generator=gen) < 0.5
        x = xp.repeat_interleave(G, 0)  # [N, D]
        with torch.no_grad():
            logits = (x @ W)[:, None, :] + pos[None]
            probs = torch.softmax(logits, -1)
            tokens = torch.multinomial(probs.reshape(-1, V), 1, generator=gen).view(-1, T)
            ent = -(probs * probs.log()).sum(-1)
        rewards = good.repeat_interleave(G, 0).gather(1, tokens).float().mean(1)
        mask = torch.ones(B * G, T, dtype=torch.bool)
        adv, _ = grpo_advantages(rewards, mask, G)
        rows, m = d3s_sample_select(adv[:, 0], G, 0.5)
        rand_rows = (torch.stack([torch.randperm(G, generator=gen)[: G // 2] for _ in range(B)])
                     + torch.arange(B)[:, None] * G).reshape(-1)
        g_d3s = grad_norm(x[rows], tokens[rows], adv[rows], mask[rows])
        g_rand = grad_norm(x[rand_rows], tokens[rand_rows], adv[rand_rows], mask[rand_rows])
        sample_ratios.append(g_d3s / g_rand)
        var_gain.append((m["d3s/adv_var_after"] / m["d3s/adv_var_before"]).item())
        tmask, _ = d3s_token_select(adv, ent, mask, 0.25)
        rmask = torch.zeros(B * G * T, dtype=torch.bool)
        rmask[torch.randperm(B * G * T, generator=gen)[: int(tmask.sum())]] = True
        rmask = rmask.view(B * G, T)
        token_ratios.append(grad_norm(x, tokens, adv, tmask) / grad_norm(x, tokens, adv, rmask))

    def s(xs):
        return f"{statistics.mean(xs):.3f} (median {statistics.median(xs):.3f}, {sum(r > 1 for r in xs)}/{len(xs)} > 1)"

    print("| selection (keep) | Var(A) kept / Var(A) all | grad-norm ratio d3s / random |")
    print("|---|---|---|")
    print(f"| sample level, 8 of 16 per group | {statistics.mean(var_gain):.3f} | {s(sample_ratios)} |")
    print(f"| token level, 25% of tokens by abs(A) x H | - | {s(token_ratios)} |")


if __name__ == "__main__":
    main()
