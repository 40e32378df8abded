"""What flows between SRL's workers, and the pure bookkeeping on it.  Paper: srl

Three streams connect the workers (SRL section 3, "dataflow abstraction"):

    actor --InferenceRequest--> policy worker      (one pipe per actor, FIFO)
    actor <--InferenceReply---- policy worker      (same pipe, same order)
    actor --Segment-----------> trainer            (one bounded queue shared by all actors)

The policy worker answers every request that is waiting when it wakes up with ONE forward pass:
`batch_requests` stacks the observations of k requests and remembers which rows belong to whom,
`route_replies` cuts the batched actions back into one reply per request. Each reply carries the
policy version that produced it; the actor copies it into the segment, so the trainer can measure
how stale its data is (`segment_staleness`) and drop what is older than `max_staleness` versions.

All arrays are numpy (they are pickled through pipes; numpy pickles faster than torch tensors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["InferenceRequest", "InferenceReply", "Segment", "batch_requests", "route_replies",
           "segment_staleness", "accept_segment"]


@dataclass(frozen=True)
class InferenceRequest:
    actor: int  # which actor sent it (index of its pipe)
    group: int  # which env group of that actor's ring
    obs: np.ndarray  # [n, D] float32, one row per env of the group


@dataclass(frozen=True)
class InferenceReply:
    group: int  # echo of the request's group (the actor checks it)
    actions: np.ndarray  # [n] int64
    version: int  # parameter version the policy worker acted with
    batch_rows: int  # rows in the forward pass that answered this request (>= n)


@dataclass(frozen=True)
class Segment:
    """`num_steps` consecutive steps of one env group, produced by one actor."""

    actor: int
    group: int
    obs: np.ndarray  # [T, n, D] float32, observation acted on
    actions: np.ndarray  # [T, n] int64
    rewards: np.ndarray  # [T, n] float32
    terminated: np.ndarray  # [T, n] float32 0/1
    done: np.ndarray  # [T, n] float32 0/1, terminated or truncated
    final_obs: np.ndarray  # [T, n, D] float32, true successor state
    versions: np.ndarray  # [T] int64, policy version that chose each step's actions
    batch_rows: np.ndarray  # [T] int64, rows of the policy worker's batch that answered each step
    episode_returns: np.ndarray  # [E] float32, returns of the episodes that ended inside the segment

    @property
    def frames(self) -> int:
        return int(self.actions.size)


def batch_requests(requests: list[InferenceRequest]) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Stack the observations of k requests into one batch.

    Returns obs [sum_i n_i, D] and, per request, the half-open row range (start, stop) it occupies,
    in request order: requests with 2, 3 and 1 rows get (0, 2), (2, 5), (5, 6)."""
    if not requests:
        raise ValueError("batch_requests needs at least one request")
    bounds, start = [], 0
    for r in requests:
        bounds.append((start, start + r.obs.shape[0]))
        start += r.obs.shape[0]
    return np.concatenate([r.obs for r in requests], axis=0), bounds


def route_replies(requests: list[InferenceRequest], bounds: list[tuple[int, int]], actions: np.ndarray,
                  version: int) -> list[tuple[int, InferenceReply]]:
    """Cut batched `actions` [B] back into (actor, reply) pairs, one per request, in request order."""
    rows = int(actions.shape[0])
    return [(r.actor, InferenceReply(r.group, actions[a:b], version, rows)) for r, (a, b) in zip(requests, bounds)]


def segment_staleness(versions: np.ndarray, trainer_version: int) -> tuple[int, float]:
    """Staleness of a segment w.r.t. the trainer's current parameter version.  Paper: srl

        staleness_t = v_trainer - v_t   for each step t (v_t: version that chose step t's actions)
        returns (max_t staleness_t, mean_t staleness_t)

    The max (= v_trainer - min_t v_t, the oldest policy that contributed) is what `max_staleness`
    bounds; the mean is what gets logged."""
    lag = trainer_version - versions.astype(np.int64)
    return int(lag.max()), float(lag.mean())


def accept_segment(versions: np.ndarray, trainer_version: int, max_staleness: int) -> bool:
    """Keep a segment iff no step in it was acted by a policy more than `max_staleness` versions old."""
    return segment_staleness(versions, trainer_version)[0] <= max_staleness
