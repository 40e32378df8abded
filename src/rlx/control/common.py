"""Pieces every control trainer shares: config sections, greedy evaluation, progress bar, checkpoints."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import torch
from pydantic import Field, model_validator

from rlx.config import Section
from rlx.control.envs import Backend, make_vec_env
from rlx.control.networks import ValueLoss

__all__ = ["EnvConfig", "QNetConfig", "EvalConfig", "Widths", "check_eval_backend", "evaluate", "episode_returns",
           "progress", "save_torch_state", "load_torch_state", "env_checkpoint", "restore_env"]

Widths = list[Annotated[int, Field(ge=1, le=65536)]]  # hidden layer widths of an MLP (0 would make a constant net)


class EnvConfig(Section):
    id: str = Field("CartPole-v1", description="gymnasium environment id")
    num_envs: int = Field(32, ge=1, le=4096, description="parallel environment copies")
    backend: Backend = Field("gymnasium", description="'torch' (batched CartPole-v1 in torch) or 'gymnasium' (sync vector env)")


class QNetConfig(Section):
    hidden: Widths = Field([64, 64], min_length=1, description="hidden layer widths of the Q-network MLP")
    layer_norm: bool = Field(True, description="LayerNorm after every hidden linear layer (PQN's stabiliser)")
    value_loss: ValueLoss = Field("mse", description="mse | huber | hl_gauss (histogram, Gaussian smoothing) | two_hot")
    v_min: float = Field(0.0, description="lowest histogram bin edge (hl_gauss / two_hot only)")
    v_max: float = Field(100.0, description="highest histogram bin edge (hl_gauss / two_hot only)")
    num_bins: int = Field(51, ge=2, le=1001, description="histogram bins (hl_gauss / two_hot only)")
    sigma_ratio: float = Field(0.75, gt=0, le=10, description="HL-Gauss sigma as a multiple of the bin width")

    @model_validator(mode="after")
    def _support(self):
        if self.value_loss in ("hl_gauss", "two_hot") and not self.v_max > self.v_min:
            raise ValueError(f"net.v_max = {self.v_max} must be greater than net.v_min = {self.v_min}: they bound "
                             f"the {self.value_loss} histogram (an empty or inverted support gives NaN or wrong targets)")
        return self


class EvalConfig(Section):
    every_steps: int = Field(5000, ge=1, description="greedy evaluation every this many env steps")
    episodes: int = Field(10, ge=1, le=1000, description="greedy evaluation episodes (run in parallel)")
    stop_at_return: float | None = Field(None, description="stop training once a greedy evaluation reaches this mean return (None: never)")
    backend: Backend = Field("gymnasium", description="environment back-end used for evaluation (default: the real gymnasium env)")


def check_eval_backend(env_id: str, ev: EvalConfig) -> None:
    """At config load, not at the first evaluation: the torch back-end exists for CartPole-v1 only."""
    if ev.backend == "torch" and env_id != "CartPole-v1":
        raise ValueError(f"eval.backend = 'torch': only CartPole-v1 has a torch back-end, and the env is {env_id!r} "
                         "(use eval.backend: gymnasium)")


def evaluate(act: Callable[[torch.Tensor], torch.Tensor], env_id: str, episodes: int, seed: int,
             backend: Backend = "gymnasium") -> np.ndarray:
    """Run `episodes` episodes in parallel (one per env copy) with `act(obs [N, D]) -> actions`;
    return their undiscounted returns [episodes]. Evaluation seeds are offset from training's."""
    env = make_vec_env(env_id, episodes, seed + 10_000, backend)
    returns = episode_returns(env, act)
    env.close()
    return returns


def episode_returns(env, act: Callable[[torch.Tensor], torch.Tensor],
                    push: Callable[[torch.Tensor], torch.Tensor] | None = None) -> np.ndarray:
    """Reset `env` and run the first episode of every copy with `act(obs) -> actions` (and, for envs whose
    `step` takes one, `push(obs)` as a second argument); returns the undiscounted returns [num_envs]."""
    obs = env.reset()
    returns = np.zeros(env.num_envs)
    alive = np.ones(env.num_envs, dtype=bool)
    with torch.no_grad():
        while alive.any():
            out = env.step(act(obs)) if push is None else env.step(act(obs), push(obs))
            returns += out.reward.numpy() * alive
            alive &= ~(out.terminated | out.truncated).numpy()
            obs = out.obs
    return returns


@contextlib.contextmanager
def progress(total: int, description: str) -> Iterator[Callable[[int, str], None]]:
    """A rich progress bar over env (or gradient) steps; yields `update(completed, info_text)`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[info]}"), transient=False) as bar:
        task = bar.add_task(description, total=total, info="")

        def update(completed: int, info: str = "") -> None:
            bar.update(task, completed=completed, info=info)

        yield update


def save_torch_state(path: Path, state: dict[str, Any]) -> None:
    torch.save(state, path / "state.pt")


def load_torch_state(path: Path) -> dict[str, Any]:
    return torch.load(path / "state.pt", weights_only=False)


def env_checkpoint(env, obs: torch.Tensor) -> dict[str, Any]:
    """What a checkpoint needs to continue `env`'s episodes: the observation to act on next and the
    env's own state (None where the back-end cannot capture it)."""
    get = getattr(env, "state_dict", None)
    return {"obs": obs.clone(), "state": get() if get is not None else None}


def restore_env(env, saved: dict[str, Any] | None, fresh_obs: torch.Tensor) -> torch.Tensor:
    """Put `env` back where the checkpoint left it and return the observation to act on next. Where the
    checkpoint could not capture the env (None), episodes restart from `fresh_obs` and a warning says so:
    the resumed run is then not step-for-step the uninterrupted one."""
    if saved is None or saved.get("state") is None:
        import warnings

        warnings.warn("resume: this environment's state was not in the checkpoint; episodes restart, so the resumed "
                      "run differs from an uninterrupted one", stacklevel=2)
        return fresh_obs
    env.load_state_dict(saved["state"])
    return saved["obs"].clone()

