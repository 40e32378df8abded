"""Wiring SRL's workers together on one machine, and taking them down cleanly.  Paper: srl

`SRLSystem` starts one policy worker and `actors` actor workers as processes, connects them with
pipes (inference streams) and one bounded queue (the sample stream), and hands the trainer the
segments one at a time. The trainer owns the parameter service and pushes to it after updates.

    with SRLSystem(dataflow, make_env, spec, service, epsilon, seed=0) as system:
        seg = system.next_segment()         # raises WorkerError if any worker failed or died
        ...; service.push(q_net)

Failure and shutdown: a worker that raises sends its traceback on an error queue and exits; the
trainer sees it at its next `next_segment` and raises `WorkerError` naming the worker. Leaving the
`with` block (normally or by an exception) sets the stop event, joins every worker, terminates
the ones that do not stop within `join_timeout_s` and kills the ones that ignore that, so no
process outlives the run. Workers also stop by themselves if their parent dies.

Why multiprocessing and not Ray: on one machine the streams are a pipe per actor and one queue;
Ray would add a GCS and a raylet process per node (CPU the 2-core budget cannot spare), seconds
of start-up, and ~0.1-1 ms per remote call, against ~20-50 us for a pipe round trip here.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import time
import traceback
from collections.abc import Callable
from typing import Any, Literal

from pydantic import Field

from rlx.config import Section
from rlx.control.envs import Backend, VecEnv
from rlx.distributed.srl.actor import POLL_S, actor_loop
from rlx.distributed.srl.params import ParameterService
from rlx.distributed.srl.policy import EpsilonSchedule, NetSpec, policy_loop
from rlx.distributed.srl.streams import Segment

__all__ = ["DataflowConfig", "SRLSystem", "WorkerError"]


class DataflowConfig(Section):
    env_id: str = Field("CartPole-v1", description="gymnasium environment id stepped by the actors")
    env_backend: Backend = Field("gymnasium", description="'gymnasium' (sync vector env) or 'torch' (batched CartPole)")
    actors: int = Field(2, ge=1, le=256, description="actor worker processes")
    ring: int = Field(2, ge=1, le=16, description="env groups per actor; >= 2 overlaps env stepping with inference")
    envs_per_group: int = Field(8, ge=1, le=4096, description="environment copies in each env group")
    num_steps: int = Field(16, ge=1, le=4096, description="steps per segment on the sample stream")
    queue_size: int = Field(8, ge=1, le=4096, description="capacity of the sample stream in segments (back-pressure)")
    max_staleness: int = Field(4, ge=0, le=1_000_000, description="drop segments acted by a policy more than this many versions old")
    start_method: Literal["fork", "spawn"] = Field("fork", description="multiprocessing start method (not "
                                                  "forkserver: its workers' parent is the fork server, and they "
                                                  "stop as soon as they see a parent other than the trainer)")
    join_timeout_s: float = Field(5.0, gt=0, le=600, description="seconds a worker gets to stop before it is terminated")
    sample_timeout_s: float = Field(120.0, gt=0, le=86_400, description="fail if no segment arrives for this long")

    @property
    def num_envs(self) -> int:
        return self.actors * self.ring * self.envs_per_group


class WorkerError(RuntimeError):
    """A worker process failed (its traceback's last line is in the message) or died."""


def _guard(name: str, errors: Any, fn: Callable, *args: Any) -> None:
    """Run a worker's loop; on failure report the traceback to the trainer and exit non-zero."""
    try:
        fn(*args)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group; the trainer handles it
        pass
    except BaseException:
        errors.put((name, traceback.format_exc()))
        errors.close()
        errors.join_thread()
        os._exit(1)


class SRLSystem:
    def __init__(self, cfg: DataflowConfig, make_env: Callable[[int], VecEnv], spec: NetSpec,
                 service: ParameterService, epsilon: EpsilonSchedule, seed: int, start_frames: int = 0):
        self.cfg = cfg
        self.ctx = mp.get_context(cfg.start_method)
        self._make_env, self._spec, self._service, self._epsilon = make_env, spec, service, epsilon
        self._seed, self._start_frames = seed, start_frames
        self._procs: list[tuple[str, Any]] = []
        self._stop = self.ctx.Event()
        self.samples = self.ctx.Queue(maxsize=cfg.queue_size)
        self.errors = self.ctx.Queue()

    @property
    def pids(self) -> list[int]:
        return [p.pid for _, p in self._procs]

    def start(self) -> SRLSystem:
        if self._service.version < 0:
            raise RuntimeError("push the initial weights to the parameter service before starting the workers")
        parent = os.getpid()
        pipes = [self.ctx.Pipe(duplex=True) for _ in range(self.cfg.actors)]
        policy_ends = [a for a, _ in pipes]
        procs = [("policy", policy_loop, (policy_ends, self._service, self._stop, self._spec, self._epsilon,
                                          self._seed * 1_000_003 + 7919 * self._start_frames + 1,  # shifts on resume
                                          self._start_frames, parent))]
        for i, (_, actor_end) in enumerate(pipes):
            seed = self._seed * 1_000_003 + 7919 * self._start_frames + 100 * (i + 1)
            procs.append((f"actor {i}", actor_loop, (i, actor_end, self.samples, self._stop, self._make_env,
                                                     self.cfg.ring, self.cfg.num_steps, seed, parent)))
        for name, fn, args in procs:
            p = self.ctx.Process(target=_guard, args=(name, self.errors, fn, *args), name=f"srl {name}", daemon=True)
            p.start()
            self._procs.append((name, p))
        for a, b in pipes:  # the children hold their ends now
            a.close()
            b.close()
        return self

    def check(self) -> None:
        """Raise WorkerError if a worker reported a failure or exited."""
        try:
            name, tb = self.errors.get_nowait()
        except queue.Empty:
            pass
        else:
            last = tb.strip().splitlines()[-1]
            raise WorkerError(f"{name} failed: {last}\n{tb}")
        for name, p in self._procs:
            if p.exitcode is not None:
                raise WorkerError(f"{name} exited with code {p.exitcode}")

    def next_segment(self) -> Segment:
        """The next segment on the sample stream (blocks; checks the workers while it waits)."""
        self.check()  # a failed worker must not hide behind the others' segments
        deadline = time.monotonic() + self.cfg.sample_timeout_s
        while True:
            try:
                return self.samples.get(timeout=POLL_S)
            except queue.Empty:
                self.check()
                if time.monotonic() > deadline:
                    raise WorkerError(f"no segment on the sample stream for {self.cfg.sample_timeout_s:g} s")

    def close(self) -> None:
        """Stop every worker: ask, wait, terminate, kill. Idempotent."""
        self._stop.set()
        deadline = time.monotonic() + self.cfg.join_timeout_s
        for _, p in self._procs:
            p.join(max(0.0, deadline - time.monotonic()))
        for _, p in self._procs:
            if p.is_alive():
                p.terminate()
                p.join(1.0)
            if p.is_alive():
                p.kill()
                p.join()
        for q in (self.samples, self.errors):
            q.cancel_join_thread()
            q.close()

    def __enter__(self) -> SRLSystem:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()
