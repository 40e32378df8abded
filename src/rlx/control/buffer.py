"""A fixed-size replay buffer of transitions, stored as preallocated torch tensors (ring buffer).

Each row keeps the true successor state (`next_obs`, the env's `final_obs`) and `terminated`, so a
DQN target r + gamma * (1 - terminated) * max_a Q(next_obs, a) bootstraps through time-limit
truncations and stops at real terminal states.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Transitions", "ReplayBuffer"]


@dataclass(frozen=True)
class Transitions:
    obs: torch.Tensor  # [B, D]
    actions: torch.Tensor  # [B] long (discrete) or [B, A] float (continuous)
    rewards: torch.Tensor  # [B]
    next_obs: torch.Tensor  # [B, D] true successor state
    terminated: torch.Tensor  # [B] float 0/1


class ReplayBuffer:
    def __init__(self, capacity: int, obs_dim: int, action_shape: tuple[int, ...] = (), discrete: bool = True):
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, *action_shape, dtype=torch.long if discrete else torch.float32)
        self.rewards = torch.zeros(capacity)
        self.terminated = torch.zeros(capacity)
        self.pos = 0
        self.size = 0

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Add a batch of n transitions (n = number of parallel envs)."""
        n = obs.shape[0]
        idx = (torch.arange(n) + self.pos) % self.capacity
        self.obs[idx], self.actions[idx], self.rewards[idx] = obs, actions, rewards
        self.next_obs[idx], self.terminated[idx] = next_obs, terminated.float()
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Transitions:
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        return Transitions(self.obs[idx], self.actions[idx], self.rewards[idx], self.next_obs[idx], self.terminated[idx])

    def state_dict(self) -> dict:
        return {k: getattr(self, k) for k in ("obs", "next_obs", "actions", "rewards", "terminated", "pos", "size")}

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)
