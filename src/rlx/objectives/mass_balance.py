"""Correct-mass balance of one policy-gradient step on a softmax policy (paper brorl).

One position, V candidate tokens, logits z, pi = softmax(z), a correct set C (c_i = 1 for i in C)
and correct mass Q = sum_i pi_i c_i. N rollouts y_1..y_N ~ pi with advantages A_s. One REINFORCE /
GRPO step with ratio 1 moves the logits by

    dz_i = eta * sum_s A_s (1[i = y_s] - pi_i)          (the gradient of sum_s A_s log pi(y_s))

and, to first order, the correct mass by dQ = sum_i (dQ/dz_i) dz_i with dQ/dz_i = pi_i (c_i - Q):

    dQ = eta * [ sum_{i sampled}   pi_i (c_i - Q) (R_i - pi_i S)        (sampled tokens)
               - S * sum_{i unsampled} pi_i^2 (c_i - Q) ]                (unsampled tokens)

with R_i = sum_{s: y_s = i} A_s and S = sum_s A_s, the net reward balance. Splitting dz_i into
the direct push R_i and the normalisation shift -pi_i S:

  - direct = sum_i pi_i (c_i - Q) R_i is never negative when correct rollouts have A > 0 and wrong
    ones A < 0 (each correct token sampled is pushed up, each wrong one down): sampled rollouts always
    expand the correct mass;
  - the shift of the unsampled tokens, -S sum_{i unsampled} pi_i^2 (c_i - Q), has the sign of -S times
    their correct-minus-Q excess: it can go either way, set by their distribution and the net reward
    balance, and it is bounded by their squared mass, which vanishes as N grows.

This is BroRL's argument that enough rollouts per prompt always expand the correct mass. With
group-mean-centred advantages S = 0 and both shifts are exactly zero.

    terms = mass_balance_terms(logits, correct, samples, advantages)   # first-order split
    after = softmax_step(logits, samples, advantages, lr)              # the exact step, for checks
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["MassBalance", "mass_balance_terms", "softmax_step", "token_mass_change"]


@dataclass(frozen=True)
class MassBalance:
    direct: float  # sum_i pi_i (c_i - Q) R_i: the sampled tokens' own push (per unit lr)
    sampled: float  # first-order change of Q from the tokens that appear among the rollouts (direct + their shift)
    unsampled: float  # ... from the tokens that do not appear (their shift only)
    net_reward: float  # S = sum of the advantages

    @property
    def total(self) -> float:
        return self.sampled + self.unsampled


def mass_balance_terms(logits: torch.Tensor, correct: torch.Tensor, samples: torch.Tensor,
                       advantages: torch.Tensor) -> MassBalance:
    """The sampled / unsampled split of dQ per unit learning rate (equation in the module docstring).

    logits [V], correct [V] bool, samples [N] token ids, advantages [N]. Paper: brorl.
    """
    pi = torch.softmax(logits.double(), -1)
    c = correct.double()
    q = (pi * c).sum()
    adv = advantages.double()
    r = torch.zeros_like(pi).index_add_(0, samples, adv)  # R_i
    s = adv.sum()
    seen = torch.zeros_like(c, dtype=torch.bool)
    seen[samples] = True
    grad_q = pi * (c - q)  # dQ/dz_i
    dz = r - pi * s  # dz_i / eta
    return MassBalance(direct=float((grad_q * r).sum()), sampled=float((grad_q * dz)[seen].sum()), unsampled=float((grad_q * dz)[~seen].sum()),
                       net_reward=float(s))


def softmax_step(logits: torch.Tensor, samples: torch.Tensor, advantages: torch.Tensor, lr: float) -> torch.Tensor:
    """The logits after one exact gradient-ascent step on sum_s A_s log pi(y_s) (the exact update whose
    first-order effect `mass_balance_terms` splits)."""
    z = logits.detach().double().clone().requires_grad_(True)
    objective = (advantages.double() * torch.log_softmax(z, -1)[samples]).sum()
    (grad,) = torch.autograd.grad(objective, z)
    return (z + lr * grad).detach()


def token_mass_change(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    """pi_after - pi_before per token [V] (e.g. to count the correct tokens whose probability grew)."""
    return torch.softmax(after.double(), -1) - torch.softmax(before.double(), -1)
