"""Small networks for control: an MLP with optional LayerNorm, and value heads (scalar or histogram).

A `ValueHead` decides how many outputs each action gets and how they turn into Q-values and a loss,
so a trainer picks MSE, Huber, HL-Gauss or two-hot once, when it is built:

    head = make_value_head("hl_gauss", v_min=0, v_max=100, num_bins=51)
    q_net = mlp(obs_dim, [64, 64], num_actions * head.outputs, layer_norm=True)
    out = q_net(obs).view(B, A, head.outputs)
    q = head.q_values(out)                                  # [B, A]
    loss, m = head.loss(out[range(B), actions], target)     # target [B]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import torch
from torch import nn

from rlx.control.losses import categorical_mean, hl_gauss_probs, huber, two_hot_probs

__all__ = ["mlp", "QNetwork", "ValueHead", "ScalarHead", "CategoricalHead", "make_value_head", "ValueLoss"]

ValueLoss = Literal["mse", "huber", "hl_gauss", "two_hot"]


def mlp(in_dim: int, hidden: list[int], out_dim: int, layer_norm: bool = False) -> nn.Sequential:
    """Linear -> [LayerNorm] -> ReLU per hidden layer, then a linear output."""
    layers: list[nn.Module] = []
    d = in_dim
    for h in hidden:
        layers.append(nn.Linear(d, h))
        if layer_norm:
            layers.append(nn.LayerNorm(h))
        layers.append(nn.ReLU())
        d = h
    layers.append(nn.Linear(d, out_dim))
    return nn.Sequential(*layers)


class ValueHead(nn.Module, ABC):
    outputs: int

    @abstractmethod
    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        """[..., outputs] -> [...]"""

    @abstractmethod
    def loss(self, out: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Mean loss of predictions `out` [B, outputs] against scalar targets [B]."""


class ScalarHead(ValueHead):
    """One output per action; squared error (0.5 u^2) or Huber (delta = 1, like SB3's DQN)."""

    def __init__(self, kind: Literal["mse", "huber"]):
        super().__init__()
        self.outputs = 1
        self.kind = kind

    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        return out.squeeze(-1)

    def loss(self, out, target):
        diff = out.squeeze(-1) - target
        per = 0.5 * diff.square() if self.kind == "mse" else huber(diff, 1.0)
        return per.mean(), {"td_abs": diff.abs().mean().detach()}


class CategoricalHead(ValueHead):
    """Histogram value: K logits on evenly spaced bins over [v_min, v_max]; cross-entropy loss
    against HL-Gauss (sigma = sigma_ratio * bin width) or two-hot target distributions.
    Paper: hlgauss."""

    def __init__(self, kind: Literal["hl_gauss", "two_hot"], v_min: float, v_max: float, num_bins: int,
                 sigma_ratio: float = 0.75):
        super().__init__()
        self.outputs = num_bins
        self.kind = kind
        edges = torch.linspace(v_min, v_max, num_bins + 1)
        self.register_buffer("edges", edges)
        self.register_buffer("centers", (edges[1:] + edges[:-1]) / 2)
        self.sigma = sigma_ratio * (v_max - v_min) / num_bins

    def q_values(self, out: torch.Tensor) -> torch.Tensor:
        return categorical_mean(out, self.centers)

    def target_probs(self, target: torch.Tensor) -> torch.Tensor:
        if self.kind == "hl_gauss":
            return hl_gauss_probs(target, self.edges, self.sigma)
        return two_hot_probs(target, self.centers)

    def loss(self, out, target):
        probs = self.target_probs(target.detach())
        ce = -(probs * torch.log_softmax(out, dim=-1)).sum(-1)
        return ce.mean(), {"td_abs": (self.q_values(out) - target).abs().mean().detach()}


def make_value_head(kind: ValueLoss, v_min: float = 0.0, v_max: float = 100.0, num_bins: int = 51,
                    sigma_ratio: float = 0.75) -> ValueHead:
    if kind in ("mse", "huber"):
        return ScalarHead(kind)
    return CategoricalHead(kind, v_min, v_max, num_bins, sigma_ratio)


class QNetwork(nn.Module):
    """MLP torso with `num_actions * head.outputs` outputs; `q(obs)` gives Q-values [B, A]."""

    def __init__(self, obs_dim: int, num_actions: int, hidden: list[int], layer_norm: bool, head: ValueHead):
        super().__init__()
        self.num_actions = num_actions
        self.head = head
        self.body = mlp(obs_dim, hidden, num_actions * head.outputs, layer_norm)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """[B, D] -> [B, A, outputs]"""
        return self.body(obs).view(obs.shape[0], self.num_actions, self.head.outputs)

    def q(self, obs: torch.Tensor) -> torch.Tensor:
        """[B, D] -> [B, A]"""
        return self.head.q_values(self(obs))
