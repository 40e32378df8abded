"""Multi-turn agent rollouts: policy turns interleaved with tool outputs, one token layout (paper asearcher).

A trajectory is the question (the prompt) followed by a completion made of segments:

    completion   [kab.A]  =mot\\n  [mot.B]  =zed\\n  {zed}
    policy?       1111111  00000   1111111  00000   11111      <- response_mask: the loss sees only these
    attended      1111111  11111   1111111  11111   11111      <- completion_mask: the forward sees all

Each turn the policy samples from the whole context so far until it closes a search call ("]") or an
answer ("}"), emits EOS, or runs out of `turn_tokens`; a search call's tool output is appended as
context tokens that are masked out of the loss (their "logprobs" are 0); an answer, a malformed turn
or the `max_turns`-th turn without an answer ends the episode. Rows of one question are contiguous
(G per question), so the result is an ordinary `RolloutBatch` whose `completion_mask` (all tokens)
differs from its `response_mask` (policy tokens), and the RLVR update, objectives and
`sequence_logprobs` apply unchanged. Finished rows leave the active set, so a turn costs only the
trajectories still running. `tool_latency_s` makes each turn's (parallel) search calls take that
long in wall time without using the CPU, as web search does: the regime asynchronous RL is for.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import torch
from pydantic import Field

from rlx.agents.search_env import ANSWER_CLOSE, CALL_CLOSE, Question, SearchEnv, parse_action
from rlx.config import Section
from rlx.models.tokenizer import encode_prompt
from rlx.rollout.base import SamplingParams, step_seed
from rlx.types import RolloutBatch

log = logging.getLogger(__name__)

__all__ = ["TurnConfig", "Segment", "Trajectories", "RolloutStopped", "layout", "rollout", "trace_segments"]


class RolloutStopped(Exception):
    """`rollout` was asked to stop (its `stop` event was set) between turns; the batch is abandoned."""


class TurnConfig(Section):
    """How one multi-turn episode is sampled."""

    max_turns: int = Field(8, ge=1, le=256, description="turn limit: policy turns per episode (searches + answer)")
    turn_tokens: int = Field(10, ge=2, le=4096, description="most tokens the policy may write in one turn")
    temperature: float = Field(1.0, ge=0, le=10, description="sampling temperature (0: greedy)")
    tool_latency_s: float = Field(0.0, ge=0, le=60, description="simulated wall-clock latency of one turn's "
                                  "search calls (served in parallel; web search takes seconds); 0: instant")


@dataclass(frozen=True)
class Segment:
    """A run of tokens written either by the policy (with its behaviour log-probs) or by the tool."""

    ids: tuple[int, ...]
    policy: bool
    logprobs: tuple[float, ...] = ()  # policy segments: one per id; tool segments: empty


@dataclass(frozen=True)
class Trajectories:
    """A batch of scored multi-turn episodes."""

    batch: RolloutBatch  # completion_mask [N, T] all tokens; response_mask [N, T] policy tokens only
    hops: torch.Tensor  # [N] long, lookups the question needs
    turns: torch.Tensor  # [N] long, policy turns taken
    searches: torch.Tensor  # [N] long, search calls made
    answered: torch.Tensor  # [N] bool, the episode ended with an answer
    truncated: torch.Tensor  # [N] bool, the turn limit (or the context length) ended it without an answer
    policy_version: int = 0  # updates the behaviour policy had seen (async: may lag the trainer)

    def __post_init__(self) -> None:
        n = self.batch.num_sequences
        for name in ("hops", "turns", "searches", "answered", "truncated"):
            assert getattr(self, name).shape == (n,), f"Trajectories.{name} must be [N]"

    def metrics(self, prefix: str = "rollout") -> dict[str, float]:
        b = self.batch
        out = {f"{prefix}/reward_mean": float(b.rewards.mean()), f"{prefix}/accuracy": float(b.correct.float().mean()),
               f"{prefix}/turns_mean": float(self.turns.float().mean()),
               f"{prefix}/searches_mean": float(self.searches.float().mean()),
               f"{prefix}/truncated_frac": float(self.truncated.float().mean()),
               f"{prefix}/policy_tokens_mean": float(b.response_mask.sum(1).float().mean()),
               f"{prefix}/context_tokens_mean": float(b.attention_mask.sum(1).float().mean())}
        for k in sorted(set(self.hops.tolist())):
            at = self.hops == k
            out[f"{prefix}/accuracy_hop{k}"] = float(b.correct[at].float().mean())
        return out


def layout(prompt_ids: list[list[int]], segments: list[list[Segment]], pad_id: int, rewards: list[float],
           correct: list[bool], group_size: int, texts: tuple[str, ...] = (),
           finish_reasons: tuple[str, ...] = ()) -> RolloutBatch:
    """Pack N episodes into a `RolloutBatch`: prompts left-padded, segments concatenated and right-padded.

    response_mask is True on policy tokens only, completion_mask on every token (policy and tool),
    rollout_logprobs holds each policy token's behaviour log-prob (0 on tool tokens and padding).
    """
    n = len(prompt_ids)
    p = max(len(x) for x in prompt_ids)
    t = max(1, max(sum(len(s.ids) for s in segs) for segs in segments))
    out_prompt = torch.full((n, p), pad_id, dtype=torch.long)  # [N, P]
    out_pmask = torch.zeros(n, p, dtype=torch.bool)  # [N, P]
    ids = torch.full((n, t), pad_id, dtype=torch.long)  # [N, T]
    policy = torch.zeros(n, t, dtype=torch.bool)  # [N, T]
    seen = torch.zeros(n, t, dtype=torch.bool)  # [N, T]
    logprobs = torch.zeros(n, t, dtype=torch.float32)  # [N, T]
    for i, (pr, segs) in enumerate(zip(prompt_ids, segments)):
        out_prompt[i, p - len(pr):] = torch.tensor(pr, dtype=torch.long)
        out_pmask[i, p - len(pr):] = True
        j = 0
        for s in segs:
            k = len(s.ids)
            if k == 0:
                continue
            ids[i, j:j + k] = torch.tensor(s.ids, dtype=torch.long)
            seen[i, j:j + k] = True
            if s.policy:
                if len(s.logprobs) not in (0, k):
                    raise ValueError(f"layout: a policy segment of {k} tokens has {len(s.logprobs)} logprobs")
                policy[i, j:j + k] = True
                if s.logprobs:
                    logprobs[i, j:j + k] = torch.tensor(s.logprobs, dtype=torch.float32)
            j += k
    return RolloutBatch(prompt_ids=out_prompt, prompt_mask=out_pmask, completion_ids=ids, response_mask=policy,
                        rollout_logprobs=logprobs, rewards=torch.tensor(rewards, dtype=torch.float32),
                        correct=torch.tensor(correct, dtype=torch.bool),
                        group_index=torch.arange(n) // group_size, group_size=group_size, texts=texts,
                        finish_reasons=finish_reasons, completion_mask=seen)


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


_WARNED = {"round_trip": False}


def _check_round_trip(tokenizer, context: str, prompt: list[int], segments: list[Segment]) -> None:
    """An engine without `generate_ids` re-encodes each turn's context text, the trainer reads the concatenated
    ids; they must be the same tokens, or the behaviour log-probs belong to another sequence. Character-level
    tokenizers always agree; a BPE tokenizer whose merges cross a segment boundary may not: warn once."""
    if _WARNED["round_trip"]:
        return
    ids = list(prompt) + [t for s in segments for t in s.ids]
    if encode_prompt(tokenizer, context) != ids:
        _WARNED["round_trip"] = True
        log.warning("agent rollout: re-encoding a context gives other tokens than its segments (the tokenizer "
                    "merges across a turn boundary); generation and training see different sequences, so the "
                    "behaviour log-probs are off-policy for those rows")


def trace_segments(tokenizer, env: SearchEnv, q: Question, stop_after: int | None = None) -> list[Segment]:
    """A demonstration (see `SearchEnv.trace`) as segments; policy segments end with nothing else (no EOS)."""
    return [Segment(tuple(_ids(tokenizer, text)), policy) for text, policy in env.trace(q, stop_after)]


def rollout(engine, tokenizer, env: SearchEnv, questions: list[Question], group_size: int, cfg: TurnConfig,
            seed: int, max_len: int, policy_version: int = 0, stop: threading.Event | None = None) -> Trajectories:
    """Run G episodes per question to the end (answer, malformed turn, turn limit or context limit).

    `engine` is any `RolloutEngine` (each turn is one `generate` call over the still-active rows, one
    sample per row, seeded with `step_seed(seed, turn)`); `max_len` is the model's context length.
    `stop` (the async producer's): once set, the next turn (or the tool latency wait) raises `RolloutStopped`,
    so Ctrl-C does not wait for up to max_turns x tool_latency_s.
    """
    rows = [q for q in questions for _ in range(group_size)]
    n = len(rows)
    prompts = [encode_prompt(tokenizer, q.text) for q in rows]  # as the engine encodes it (BOS included)
    context = [q.text for q in rows]
    length = [len(x) for x in prompts]
    segments: list[list[Segment]] = [[] for _ in range(n)]
    answer: list[str | None] = [None] * n
    reason = ["turn_limit"] * n
    turns, searches = [0] * n, [0] * n
    done = [False] * n
    special = set(tokenizer.all_special_ids)
    params = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.turn_tokens,
                            stop=[CALL_CLOSE, ANSWER_CLOSE], n=1)
    for turn in range(cfg.max_turns):
        if stop is not None and stop.is_set():
            raise RolloutStopped
        active = [i for i in range(n) if not done[i]]
        for i in list(active):
            if length[i] + cfg.turn_tokens > max_len:  # no room for another turn
                done[i], reason[i] = True, "context_limit"
                active.remove(i)
        if not active:
            break
        if hasattr(engine, "generate_ids"):  # the hf engine samples from exactly the ids the trainer reads
            ids_in = [list(prompts[i]) + [t for seg in segments[i] for t in seg.ids] for i in active]
            gen = engine.generate_ids(ids_in, params, seed=step_seed(seed, turn))
        else:  # any RolloutEngine: it re-encodes the context text (checked below for tool turns)
            gen = engine.generate([context[i] for i in active], params, seed=step_seed(seed, turn))
        lengths = gen.completion_mask.sum(1).tolist()
        called = False
        for r, i in enumerate(active):
            k = lengths[r]
            toks = gen.completion_ids[r, :k].tolist()
            lps = gen.logprobs[r, :k].tolist()
            segments[i].append(Segment(tuple(toks), True, tuple(lps)))
            turns[i] += 1
            length[i] += k
            text = tokenizer.decode(toks)
            context[i] += text
            action = parse_action(text) if not special.intersection(toks) else None
            if action is None or action.kind == "invalid":
                done[i], reason[i] = True, "invalid"
            elif action.kind == "answer":
                done[i], reason[i], answer[i] = True, "answer", action.content
            else:
                searches[i] += 1
                tool = env.search(rows[i], action.content)
                tool_ids = _ids(tokenizer, tool)
                if length[i] + len(tool_ids) > max_len:  # the answer would not fit in the model's context
                    done[i], reason[i] = True, "context_limit"
                    continue
                called = True
                segments[i].append(Segment(tuple(tool_ids), False))
                length[i] += len(tool_ids)
                context[i] += tool
                if not hasattr(engine, "generate_ids"):
                    _check_round_trip(tokenizer, context[i], prompts[i], segments[i])
        if called and cfg.tool_latency_s > 0:  # the tool's answers arrive after its latency (no CPU used)
            if stop is None:
                time.sleep(cfg.tool_latency_s)
            elif stop.wait(cfg.tool_latency_s):
                raise RolloutStopped
    rewards = [env.reward(q, a) for q, a in zip(rows, answer)]
    texts = tuple(context)
    batch = layout(prompts, segments, tokenizer.pad_token_id, rewards, [r > 0 for r in rewards], group_size,
                   texts=texts, finish_reasons=tuple(reason))
    return Trajectories(batch=batch, hops=torch.tensor([q.hops for q in rows]), turns=torch.tensor(turns),
                        searches=torch.tensor(searches), answered=torch.tensor([r == "answer" for r in reason]),
                        truncated=torch.tensor([r in ("turn_limit", "context_limit") for r in reason]),
                        policy_version=policy_version)
