"""SRL (paper srl): the policy worker as a real process answering k actors in one batch, and clean
shutdown of the whole system (no process outlives it, also when a worker or the trainer raises)."""

import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from rlx.control.common import QNetConfig
from rlx.control.envs import TorchCartPole
from rlx.distributed.srl.actor import EnvFactory
from rlx.distributed.srl.params import ParameterService, num_params
from rlx.distributed.srl.policy import EpsilonSchedule, NetSpec, policy_loop
from rlx.distributed.srl.streams import InferenceRequest
from rlx.distributed.srl.system import DataflowConfig, SRLSystem, WorkerError

GREEDY = EpsilonSchedule(total_steps=100, start=0.0, end=0.0, fraction=1.0)
# Q(s) = [s_0, s_1] for s >= 0: hidden layer [2] without LayerNorm copies s_0, s_1 through the ReLU
PICK = NetSpec(obs_dim=4, num_actions=2, net=QNetConfig(hidden=[2], layer_norm=False, value_loss="mse"))


def _picking_net():
    net = PICK.build()
    with torch.no_grad():
        first, last = net.body[0], net.body[-1]
        first.weight.copy_(torch.tensor([[1.0, 0, 0, 0], [0, 1.0, 0, 0]]))
        last.weight.copy_(torch.eye(2))
        first.bias.zero_()
        last.bias.zero_()
    return net


def _gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_policy_worker_answers_k_actors_in_one_batch_and_routes_replies():
    ctx = mp.get_context("fork")
    net = _picking_net()
    svc = ParameterService(num_params(net), ctx)
    svc.push(net, version=7)
    pipes = [ctx.Pipe() for _ in range(3)]
    obs = [np.array([[1, 0, 0, 0], [0, 1, 0, 0]], np.float32), np.array([[0, 2, 0, 0]], np.float32),
           np.array([[3, 1, 0, 0], [0, 5, 0, 0], [2, 0, 0, 0]], np.float32)]
    for i, (_, actor_end) in enumerate(pipes):  # all three requests wait before the worker starts
        actor_end.send(InferenceRequest(i, 0, obs[i]))
    stop = ctx.Event()
    worker = ctx.Process(target=policy_loop, args=([p for p, _ in pipes], svc, stop, PICK, GREEDY, 0, 0, os.getpid()))
    worker.start()
    try:
        replies = [actor_end.recv() for _, actor_end in pipes]
        # argmax(s_0, s_1) per row; 2 + 1 + 3 = 6 rows answered by one forward pass at version 7
        assert [r.actions.tolist() for r in replies] == [[0, 1], [1], [0, 1, 0]]
        assert [r.batch_rows for r in replies] == [6, 6, 6] and {r.version for r in replies} == {7}
        with torch.no_grad():
            net.body[-1].weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))  # now Q = [s_1, s_0]
        assert svc.push(net) == 8
        pipes[1][1].send(InferenceRequest(1, 0, obs[1]))
        r = pipes[1][1].recv()
        assert (r.actions.tolist(), r.version, r.batch_rows) == ([0], 8, 1)  # pulled the new weights
    finally:
        stop.set()
        worker.join(5)
    assert worker.exitcode == 0


def _system(df: DataflowConfig, make_env=None) -> tuple[SRLSystem, ParameterService]:
    spec = NetSpec(4, 2, QNetConfig(hidden=[8]))
    net = spec.build()
    svc = ParameterService(num_params(net), mp.get_context(df.start_method))
    svc.push(net)
    make_env = make_env or EnvFactory("CartPole-v1", df.envs_per_group, "torch")
    return SRLSystem(df, make_env, spec, svc, GREEDY, seed=0), svc


def test_segments_carry_versions_and_shutdown_leaves_no_process():
    df = DataflowConfig(env_backend="torch", actors=2, ring=2, envs_per_group=3, num_steps=4)
    system, svc = _system(df)
    with system:
        pids = system.pids
        assert len(pids) == 3  # policy worker + 2 actors
        segs = [system.next_segment() for _ in range(6)]
        net = NetSpec(4, 2, QNetConfig(hidden=[8])).build()
        svc.push(net)  # version 1
        later = [system.next_segment() for _ in range(12)]
    assert all(_gone(p) for p in pids) and mp.active_children() == []
    assert {(s.actor, s.group) for s in segs + later} <= {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert all(s.obs.shape == (4, 3, 4) and s.versions.shape == (4,) for s in segs)
    assert set(np.concatenate([s.versions for s in segs]).tolist()) <= {0, 1}
    assert later[-1].versions[-1] == 1  # the queue holds at most 8 segments: the last ones were acted at v1
    # a 3-env group is answered alone (3 rows) or with the other requests waiting (up to 2 * 2 * 3 = 12)
    rows = np.concatenate([s.batch_rows for s in segs + later])
    assert rows.min() >= 3 and rows.max() <= 12 and rows.max() > 3


class ExplodingEnv(TorchCartPole):
    """CartPole whose 5th step raises (a bug in an environment)."""

    def step(self, actions, push=None):
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 5:
            raise RuntimeError("boom in env step")
        return super().step(actions, push)


def explode_in_actor_1(seed: int):
    # actor i's groups are seeded 100 * (i + 1) + g (seed 0, 0 frames): actor 1 -> 200, 201
    return ExplodingEnv(2, seed) if seed // 100 == 2 else TorchCartPole(2, seed)


def test_exception_in_an_actor_is_raised_in_the_trainer_and_every_worker_stops():
    df = DataflowConfig(env_backend="torch", actors=2, ring=1, envs_per_group=2, num_steps=2, sample_timeout_s=20)
    system, _ = _system(df, explode_in_actor_1)
    with pytest.raises(WorkerError, match="actor 1 failed: RuntimeError: boom in env step"):
        with system:
            pids = system.pids
            for _ in range(1000):
                system.next_segment()
    assert all(_gone(p) for p in pids) and mp.active_children() == []


def test_exception_in_the_trainer_stops_every_worker():
    df = DataflowConfig(env_backend="torch", actors=2, ring=2, envs_per_group=2, num_steps=2, queue_size=1)
    system, _ = _system(df)
    t0 = time.monotonic()
    with pytest.raises(KeyError):
        with system:
            pids = system.pids
            system.next_segment()
            raise KeyError("trainer bug")  # actors are blocked on the full sample stream right now
    assert all(_gone(p) for p in pids) and mp.active_children() == []
    assert time.monotonic() - t0 < df.join_timeout_s  # they stopped when asked, no terminate needed


PARENT_DIES = """
import os, multiprocessing as mp
from rlx.control.common import QNetConfig
from rlx.distributed.srl.actor import EnvFactory
from rlx.distributed.srl.params import ParameterService, num_params
from rlx.distributed.srl.policy import EpsilonSchedule, NetSpec
from rlx.distributed.srl.system import DataflowConfig, SRLSystem
spec = NetSpec(4, 2, QNetConfig(hidden=[8]))
svc = ParameterService(num_params(spec.build()))
svc.push(spec.build())
df = DataflowConfig(env_backend="torch", actors=2, ring=1, envs_per_group=2, num_steps=2)
s = SRLSystem(df, EnvFactory("CartPole-v1", 2, "torch"), spec, svc, EpsilonSchedule(10, 0, 0, 1), 0).start()
s.next_segment()
print(*s.pids, flush=True)
os._exit(0)  # die without stopping the workers (as a SIGKILL would)
"""


def test_workers_exit_by_themselves_when_the_trainer_process_dies():
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", PARENT_DIES], capture_output=True, text=True, timeout=120)
    pids = [int(p) for p in out.stdout.split()]
    assert len(pids) == 3, out.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not all(_gone(p) for p in pids):
        time.sleep(0.1)
    assert all(_gone(p) for p in pids)  # each worker noticed it was re-parented within its 0.1 s poll


def test_a_full_ring_of_large_env_groups_does_not_deadlock_the_pipes():
    """ring 16 x 4096 envs: the replies fill the actor's pipe while its next requests fill the policy
    worker's. The policy worker used to block in `send` without reading, the actor likewise, and the
    trainer got no segment until sample_timeout_s. Replies now leave on their own thread."""
    df = DataflowConfig(env_backend="torch", actors=1, ring=16, envs_per_group=4096, num_steps=2,
                        sample_timeout_s=30, queue_size=64)
    system, _ = _system(df)
    with system:
        segs = [system.next_segment() for _ in range(40)]
    assert {s.group for s in segs} == set(range(16)) and all(s.obs.shape[:2] == (2, 4096) for s in segs)
