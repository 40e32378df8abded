"""SRL (paper srl): batching and routing of inference requests, staleness bookkeeping, segments,
the parameter service's versions, epsilon-greedy, config errors. All in one process, by hand."""

import numpy as np
import pytest
import torch

from rlx.config import ConfigError, build_config
from rlx.distributed.srl.actor import SegmentBuilder
from rlx.distributed.srl.params import ParameterService, num_params
from rlx.distributed.srl.policy import EpsilonSchedule, epsilon_greedy
from rlx.distributed.srl.streams import (InferenceReply, InferenceRequest, accept_segment, batch_requests,
                                         route_replies, segment_staleness)
from rlx.distributed.srl.trainer import Config, segments_to_rollout


def _req(actor, group, rows):
    return InferenceRequest(actor, group, np.array(rows, dtype=np.float32))


def test_requests_of_k_actors_become_one_batch_and_replies_go_back_to_each():
    reqs = [_req(0, 1, [[1, 1], [2, 2]]), _req(3, 0, [[3, 3], [4, 4], [5, 5]]), _req(1, 0, [[6, 6]])]
    obs, bounds = batch_requests(reqs)
    # 2 + 3 + 1 = 6 rows, in request order
    assert obs[:, 0].tolist() == [1, 2, 3, 4, 5, 6]
    assert bounds == [(0, 2), (2, 5), (5, 6)]
    actions = np.array([10, 20, 30, 40, 50, 60])
    out = route_replies(reqs, bounds, actions, version=7)
    assert [a for a, _ in out] == [0, 3, 1]
    assert [r.actions.tolist() for _, r in out] == [[10, 20], [30, 40, 50], [60]]
    assert [r.group for _, r in out] == [1, 0, 0]
    assert all(r.version == 7 and r.batch_rows == 6 for _, r in out)
    with pytest.raises(ValueError):
        batch_requests([])


def test_staleness_by_hand():
    versions = np.array([3, 3, 4, 5])
    # trainer at version 7: lags 4, 4, 3, 2 -> max 4, mean 13 / 4 = 3.25
    assert segment_staleness(versions, 7) == (4, 3.25)
    assert accept_segment(versions, 7, max_staleness=4)
    assert not accept_segment(versions, 7, max_staleness=3)
    # fresh data: trainer at 5 -> lags 2, 2, 1, 0 -> max 2, mean 5 / 4 = 1.25
    assert segment_staleness(versions, 5) == (2, 1.25)
    assert accept_segment(np.array([5, 5]), 5, max_staleness=0)


def test_segment_builder_records_versions_and_finished_episode_returns():
    b = SegmentBuilder(actor=2, group=1, num_steps=3, num_envs=2)
    ones = np.ones(2, dtype=np.float32)
    f, t = np.array([False, False]), np.array([True, False])
    obs = lambda k: np.full((2, 4), k, dtype=np.float32)  # noqa: E731
    reply = lambda v, rows: InferenceReply(1, np.array([0, 1]), v, rows)  # noqa: E731
    # steps: env 0 ends (terminated) at step 2, env 1 is cut by the time limit at step 3
    assert b.add(obs(0), reply(5, 4), ones, f, f, obs(1)) is None
    assert b.add(obs(1), reply(5, 6), ones, t, f, obs(2)) is None
    seg = b.add(obs(2), reply(6, 2), ones, f, np.array([False, True]), obs(3))
    assert seg is not None and (seg.actor, seg.group, seg.frames) == (2, 1, 6)
    assert seg.versions.tolist() == [5, 5, 6] and seg.batch_rows.tolist() == [4, 6, 2]
    assert seg.terminated[:, 0].tolist() == [0, 1, 0] and seg.done[:, 1].tolist() == [0, 0, 1]
    # env 0: 1 + 1 = 2 (ended at step 2); env 1: 1 + 1 + 1 = 3 (ended at step 3); env 0's new episode: 1, unfinished
    assert seg.episode_returns.tolist() == [2.0, 3.0]
    assert b.running.tolist() == [1.0, 0.0]
    assert seg.obs.shape == (3, 2, 4) and seg.obs[:, 0, 0].tolist() == [0, 1, 2]


def test_segments_stack_side_by_side_into_one_rollout():
    b0, b1 = SegmentBuilder(0, 0, 2, 2), SegmentBuilder(1, 0, 2, 3)
    f2, f3 = np.zeros(2, bool), np.zeros(3, bool)
    r = InferenceReply(0, np.zeros(2, np.int64), 0, 5)
    b0.add(np.zeros((2, 4), np.float32), r, np.ones(2, np.float32), f2, f2, np.zeros((2, 4), np.float32))
    s0 = b0.add(np.ones((2, 4), np.float32), r, np.ones(2, np.float32), f2, f2, np.zeros((2, 4), np.float32))
    r3 = InferenceReply(0, np.ones(3, np.int64), 0, 5)
    b1.add(np.full((3, 4), 2, np.float32), r3, np.full(3, 2, np.float32), f3, f3, np.zeros((3, 4), np.float32))
    s1 = b1.add(np.full((3, 4), 3, np.float32), r3, np.full(3, 2, np.float32), f3, f3, np.zeros((3, 4), np.float32))
    ro = segments_to_rollout([s0, s1])
    # T = 2 steps, N = 2 + 3 = 5 envs; columns 0-1 from actor 0, 2-4 from actor 1
    assert ro.obs.shape == (2, 5, 4) and ro.actions.dtype == torch.int64
    assert ro.obs[:, :, 0].tolist() == [[0, 0, 2, 2, 2], [1, 1, 3, 3, 3]]
    assert ro.actions[0].tolist() == [0, 0, 1, 1, 1] and ro.rewards[1].tolist() == [1, 1, 2, 2, 2]


def test_parameter_service_versions_and_pull_only_when_newer():
    torch.manual_seed(0)
    src, dst = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    svc = ParameterService(num_params(src))  # 3 * 2 weights + 2 biases = 8
    assert svc.size == 8 and svc.version == -1
    assert svc.pull(dst, -1) == -1  # nothing published yet
    assert svc.push(src) == 0 and svc.push(src) == 1
    assert svc.pull(dst, -1) == 1
    assert torch.equal(dst.weight, src.weight) and torch.equal(dst.bias, src.bias)
    with torch.no_grad():
        src.weight.fill_(2.0)
    assert svc.pull(dst, 1) == 1 and dst.weight.max() < 2  # nothing newer published: no copy
    assert svc.push(src, version=41) == 41  # on resume the counter continues from the checkpoint
    assert svc.pull(dst, 1) == 41 and float(dst.weight.detach().min()) == 2.0
    with pytest.raises(ValueError, match="8"):
        svc.push(torch.nn.Linear(3, 3))


def test_epsilon_greedy_and_schedule():
    q = torch.tensor([[1.0, 2.0], [5.0, 0.0], [0.0, 3.0]])
    u = torch.tensor([0.05, 0.5, 0.09])
    rand = torch.tensor([0, 1, 0])
    # eps 0.1: rows 0 and 2 explore (0.05, 0.09 < 0.1) -> random 0 and 0; row 1 greedy -> argmax 0
    assert epsilon_greedy(q, 0.1, u, rand).tolist() == [0, 0, 0]
    assert epsilon_greedy(q, 0.0, u, rand).tolist() == [1, 0, 1]
    sched = EpsilonSchedule(total_steps=1000, start=1.0, end=0.1, fraction=0.2)
    # decays over 0.2 * 1000 = 200 frames: at 50, 0.1 + 0.9 * (1 - 50 / 200) = 0.775
    assert sched(0) == 1.0 and abs(sched(50) - 0.775) < 1e-12 and sched(200) == sched(900) == 0.1


def test_bad_dataflow_field_names_it():
    with pytest.raises(ConfigError, match="dataflow.ring"):
        build_config(Config, {"kind": "srl", "dataflow": {"ring": 0}})
    with pytest.raises(ConfigError, match="dataflow.actrs"):
        build_config(Config, {"kind": "srl", "dataflow": {"actrs": 2}})
