"""SRL actor worker: steps environments in its own process; never runs the network.  Paper: srl

An actor owns a ring of `ring` env groups (each a vectorised env of `n` copies). It sends group g's
observations to the policy worker, and while that request is in flight it steps the other groups
with the actions it already got back: with ring >= 2, env stepping and inference overlap (SRL's
"environment ring"). Every `num_steps` steps of a group it puts one `Segment` on the sample stream.

    for g in ring: send(obs_g)
    loop: for g in ring: actions = recv(); obs_g = step(g, actions); send(obs_g); record; maybe emit

The loop checks the stop event (and whether its parent died) while it waits, so it never outlives
the trainer.
"""

from __future__ import annotations

import os
import queue
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np
import torch

from rlx.control.envs import Backend, VecEnv, make_vec_env
from rlx.distributed.srl.streams import InferenceReply, InferenceRequest, Segment

__all__ = ["EnvFactory", "SegmentBuilder", "actor_loop", "should_stop"]

POLL_S = 0.1  # how often a blocked worker looks at the stop event


@dataclass(frozen=True)
class EnvFactory:
    """Picklable `make(seed) -> VecEnv` for one env group."""

    env_id: str
    num_envs: int
    backend: Backend

    def __call__(self, seed: int) -> VecEnv:
        return make_vec_env(self.env_id, self.num_envs, seed, self.backend)


def should_stop(stop: Any, parent: int) -> bool:
    """The trainer asked us to stop, or died (we were re-parented): stop either way."""
    return stop.is_set() or os.getppid() != parent


class SegmentBuilder:
    """Accumulates the steps of one env group; `add` returns a finished Segment every `num_steps` steps."""

    def __init__(self, actor: int, group: int, num_steps: int, num_envs: int):
        self.actor, self.group, self.num_steps = actor, group, num_steps
        self.running = np.zeros(num_envs, dtype=np.float32)  # returns of the unfinished episodes
        self._rows: list[tuple] = []
        self._returns: list[np.ndarray] = []

    def add(self, obs: np.ndarray, reply: InferenceReply, reward: np.ndarray, terminated: np.ndarray,
            truncated: np.ndarray, final_obs: np.ndarray) -> Segment | None:
        done = terminated | truncated
        self.running += reward
        self._returns.append(self.running[done].copy())
        self.running[done] = 0.0
        self._rows.append((obs, reply.actions, reward, terminated, done, final_obs, reply.version, reply.batch_rows))
        if len(self._rows) < self.num_steps:
            return None
        cols = list(zip(*self._rows))
        seg = Segment(self.actor, self.group, np.stack(cols[0]), np.stack(cols[1]).astype(np.int64),
                      np.stack(cols[2]).astype(np.float32), np.stack(cols[3]).astype(np.float32),
                      np.stack(cols[4]).astype(np.float32), np.stack(cols[5]),
                      np.array(cols[6], dtype=np.int64), np.array(cols[7], dtype=np.int64),
                      np.concatenate(self._returns).astype(np.float32))
        self._rows, self._returns = [], []
        return seg


def _recv(conn: Connection, stop: Any, parent: int) -> Any | None:
    while not conn.poll(POLL_S):
        if should_stop(stop, parent):
            return None
    return conn.recv()


def _put(samples: Any, seg: Segment, stop: Any, parent: int) -> bool:
    while True:  # bounded sample stream: block (back-pressure) but keep watching the stop event
        try:
            samples.put(seg, timeout=POLL_S)
            return True
        except queue.Full:
            if should_stop(stop, parent):
                return False


def actor_loop(actor: int, conn: Connection, samples: Any, stop: Any, make_env: Callable[[int], VecEnv],
               ring: int, num_steps: int, seed: int, parent: int) -> None:
    """Run actor `actor` until `stop` is set. Group g of the ring is seeded `seed + g`."""
    torch.set_num_threads(1)
    samples.cancel_join_thread()  # exit promptly at shutdown even if the trainer stopped reading
    envs = [make_env(seed + g) for g in range(ring)]
    obs = [e.reset(seed + g).numpy() for g, e in enumerate(envs)]
    builders = [SegmentBuilder(actor, g, num_steps, e.num_envs) for g, e in enumerate(envs)]
    for g in range(ring):
        conn.send(InferenceRequest(actor, g, obs[g]))
    try:
        while True:
            for g in range(ring):
                reply = _recv(conn, stop, parent)
                if reply is None:
                    return
                if reply.group != g:
                    raise RuntimeError(f"actor {actor}: reply for group {reply.group}, expected {g}")
                out = envs[g].step(torch.from_numpy(reply.actions))
                acted_on, obs[g] = obs[g], out.obs.numpy()
                conn.send(InferenceRequest(actor, g, obs[g]))  # ask for the next actions before bookkeeping
                seg = builders[g].add(acted_on, reply, out.reward.numpy(), out.terminated.numpy(),
                                      out.truncated.numpy(), out.final_obs.numpy())
                if seg is not None and not _put(samples, seg, stop, parent):
                    return
    finally:
        for e in envs:
            e.close()
