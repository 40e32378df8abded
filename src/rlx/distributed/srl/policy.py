"""SRL policy worker: batched inference for all actors, decoupled from env stepping.  Paper: srl

It sleeps until at least one actor's request is waiting, takes every request that is waiting on
any pipe, pulls the newest weights from the parameter service if there are any, answers all of
them with one forward pass (epsilon-greedy over Q-values), and sends each actor its rows back with
the version that produced them. Epsilon follows the same linear schedule as PQN, driven by the
number of frames this worker has served (the env steps of the whole system).

    loop: ready = wait(pipes); reqs = all waiting; pull(); obs, bounds = batch_requests(reqs)
          actions = epsilon_greedy(q(obs)); send route_replies(reqs, bounds, actions, version)
"""

from __future__ import annotations

from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np
import torch

from rlx.control.common import QNetConfig
from rlx.control.online import linear_epsilon
from rlx.control.pqn import build_q_network
from rlx.distributed.srl.actor import POLL_S, should_stop
from rlx.distributed.srl.params import ParameterService
from rlx.distributed.srl.streams import InferenceRequest, batch_requests, route_replies

__all__ = ["EpsilonSchedule", "NetSpec", "epsilon_greedy", "take_waiting", "policy_loop"]


@dataclass(frozen=True)
class EpsilonSchedule:
    total_steps: int
    start: float
    end: float
    fraction: float

    def __call__(self, frames: int) -> float:
        return linear_epsilon(frames, self.total_steps, self.start, self.end, self.fraction)


@dataclass(frozen=True)
class NetSpec:
    """Enough to build the Q-network in another process (the weights come from the service)."""

    obs_dim: int
    num_actions: int
    net: QNetConfig

    def build(self) -> torch.nn.Module:
        return build_q_network(self.obs_dim, self.num_actions, self.net)


def epsilon_greedy(q: torch.Tensor, eps: float, uniform: torch.Tensor, random_actions: torch.Tensor) -> torch.Tensor:
    """a_i = random_actions_i if uniform_i < eps else argmax_a q[i, a].  Shapes: q [B, A]; the rest [B]."""
    return torch.where(uniform < eps, random_actions, q.argmax(1))


def take_waiting(conns: list[Connection], timeout: float) -> list[InferenceRequest]:
    """Every request waiting on any pipe (an actor with a ring may have several queued), ordered by
    actor and, within an actor, first-in first-out (replies must go back in the order asked);
    [] if none arrived within `timeout` seconds."""
    out = []
    for conn in wait(conns, timeout):
        while conn.poll():
            out.append(conn.recv())
    return sorted(out, key=lambda r: r.actor)  # stable: keeps each pipe's FIFO order


def policy_loop(conns: list[Connection], params: ParameterService, stop: Any, spec: NetSpec,
                epsilon: EpsilonSchedule, seed: int, start_frames: int, parent: int) -> None:
    torch.set_num_threads(1)
    net = spec.build().requires_grad_(False)
    gen = torch.Generator().manual_seed(seed)
    version = params.pull(net, -1)
    frames = start_frames
    outbox = _Outbox(conns)  # replies go out on their own thread: reading requests never waits on a full pipe
    try:
        while not should_stop(stop, parent) and outbox.error is None:
            requests = take_waiting(conns, POLL_S)
            if not requests:
                continue
            version = params.pull(net, version)
            obs, bounds = batch_requests(requests)
            b = obs.shape[0]
            with torch.no_grad():
                q = net.q(torch.from_numpy(obs))
            actions = epsilon_greedy(q, epsilon(frames), torch.rand(b, generator=gen),
                                     torch.randint(0, spec.num_actions, (b,), generator=gen))
            frames += b
            for actor, reply in route_replies(requests, bounds, actions.numpy().astype(np.int64), version):
                outbox.put(actor, reply)
    finally:
        outbox.close()
    if outbox.error is not None and not should_stop(stop, parent):
        raise outbox.error


class _Outbox:
    """Sends replies from a background thread, in order per actor.

    The policy worker used to send each reply with a blocking `send` and read nothing meanwhile. An
    actor with a ring sends its next request before reading its other replies. With a large ring of
    large env groups, both pipes' buffers filled and both processes blocked in `send` forever. Queued
    replies are bounded: each actor has at most `ring` requests outstanding."""

    def __init__(self, conns: list[Connection]):
        import queue
        import threading

        self.conns, self.error = conns, None
        self._q: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="srl-policy-outbox", daemon=True)
        self._thread.start()

    def put(self, actor: int, reply: Any) -> None:
        self._q.put((actor, reply))

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is None:
                return
            try:
                self.conns[item[0]].send(item[1])
            except (BrokenPipeError, EOFError, OSError) as e:  # an actor went away: the trainer sees it exit
                self.error = e
                return

    def close(self) -> None:
        self._q.put(None)
        self._thread.join(timeout=1.0)
