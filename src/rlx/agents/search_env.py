"""A local search environment for multi-hop question answering (paper asearcher, at toy scale).

Each question lives in its own seeded world: a knowledge base (KB) of facts `entity.RELATION -> entity`
over `num_entities` three-letter names and `num_relations` one-letter relations, drawn afresh per
question, so the only way to answer is to search (nothing can be memorised across questions).
A k-hop question names a start entity and k relations; its answer is the entity reached by
following them:

    question   "kab.A.B?"             (k = 2)
    policy     "[kab.A]"              a search call (closes with "]")
    tool       "=mot\\n"               the tool's output, appended to the context (masked from the loss)
    policy     "[mot.B]"
    tool       "=zed\\n"
    policy     "{zed}"                the answer (closes with "}"); reward 1 iff it is the reference

The search tool is an exact lookup of "entity.RELATION" in the question's KB, or (`fuzzy`) the fact
whose key is nearest in edit distance (<= 1 edit, ties broken by key order), shown as "key=value";
misses return "=?". Everything here is pure and deterministic; the checker never raises.
Departure from the paper: a synthetic KB instead of web search, and no LLM-synthesised QA data.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from pydantic import Field, model_validator

from rlx.config import Section

__all__ = ["SearchEnvConfig", "Question", "SearchEnv", "CALL_OPEN", "CALL_CLOSE", "ANSWER_OPEN", "ANSWER_CLOSE",
           "edit_distance", "parse_action", "Action"]

CALL_OPEN, CALL_CLOSE, ANSWER_OPEN, ANSWER_CLOSE = "[", "]", "{", "}"
_HELDOUT_SEED = 1_000_000_007  # held-out questions come from a seed stream training never uses


class SearchEnvConfig(Section):
    """The synthetic KB and the question distribution."""

    num_entities: int = Field(12, ge=2, le=2000, description="entities in each question's KB")
    num_relations: int = Field(3, ge=1, le=26, description="relations (one upper-case letter each)")
    min_hops: int = Field(1, ge=1, le=16, description="fewest lookups a question needs")
    max_hops: int = Field(6, ge=1, le=16, description="most lookups a question needs (hops drawn uniformly)")
    fuzzy: bool = Field(False, description="search returns the nearest key (<= 1 edit) instead of exact matches only")

    @model_validator(mode="after")
    def _hops_ordered(self) -> "SearchEnvConfig":
        if self.min_hops > self.max_hops:
            raise ValueError(f"min_hops ({self.min_hops}) must be <= max_hops ({self.max_hops})")
        if self.num_entities > 26**3:
            raise ValueError("num_entities must be <= 26**3 (three-letter names)")
        return self


@dataclass(frozen=True)
class Question:
    """One multi-hop question with its own KB."""

    start: str  # e.g. "kab"
    relations: tuple[str, ...]  # e.g. ("A", "B"); hops = len(relations)
    kb: tuple[tuple[str, str], ...]  # sorted (key "ent.R", value "ent") facts
    answer: str  # the entity reached from `start` by following `relations`

    @property
    def hops(self) -> int:
        return len(self.relations)

    @property
    def text(self) -> str:
        """The prompt: "kab.A.B?\\n"."""
        return ".".join((self.start, *self.relations)) + "?\n"

    def chain(self) -> list[str]:
        """Entities visited: [start, e_1, ..., e_k = answer]."""
        kb, out = dict(self.kb), [self.start]
        for r in self.relations:
            out.append(kb[f"{out[-1]}.{r}"])
        return out


@dataclass(frozen=True)
class Action:
    """A parsed policy turn: a search query, an answer, or neither (malformed)."""

    kind: str  # "search" | "answer" | "invalid"
    content: str  # the query or the answer ("" when invalid)


def parse_action(turn: str) -> Action:
    """Read one policy turn. "[q]" -> search q; "{a}" -> answer a; anything else -> invalid.

    The turn must start with the opening bracket and end at its closing bracket (generation stops there).
    """
    if len(turn) >= 2 and turn[0] == CALL_OPEN and turn[-1] == CALL_CLOSE and CALL_CLOSE not in turn[1:-1]:
        return Action("search", turn[1:-1])
    if len(turn) >= 2 and turn[0] == ANSWER_OPEN and turn[-1] == ANSWER_CLOSE and ANSWER_CLOSE not in turn[1:-1]:
        return Action("answer", turn[1:-1])
    return Action("invalid", "")


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insertions, deletions, substitutions cost 1): d("kab", "kob") = 1."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


class SearchEnv:
    """Seeded question source, search tool and answer check.

        env = SearchEnv(cfg)
        qs = env.questions(8, seed=step)          # disjoint seed stream from env.heldout(n)
        out = env.search(q, "kab.A")              # "=mot\\n": appended to the context, masked from the loss
        env.reward(q, "mot")                      # 1.0 iff the answer is q.answer
    """

    def __init__(self, cfg: SearchEnvConfig):
        self.cfg = cfg
        self.relation_names = string.ascii_uppercase[: cfg.num_relations]

    def make_question(self, rng: random.Random, hops: int) -> Question:
        c = self.cfg
        names: list[str] = []
        seen: set[str] = set()
        while len(names) < c.num_entities:
            name = "".join(rng.choice(string.ascii_lowercase) for _ in range(3))
            if name not in seen:
                seen.add(name)
                names.append(name)
        facts = {f"{e}.{r}": rng.choice(names) for e in names for r in self.relation_names}
        start = rng.choice(names)
        relations = tuple(rng.choice(self.relation_names) for _ in range(hops))
        e = start
        for r in relations:
            e = facts[f"{e}.{r}"]
        return Question(start=start, relations=relations, kb=tuple(sorted(facts.items())), answer=e)

    def questions(self, n: int, seed: int, hops: int | None = None) -> list[Question]:
        """`n` training questions drawn with `seed` (hops uniform in [min_hops, max_hops] unless given)."""
        rng = random.Random(seed)
        return [self.make_question(rng, hops or rng.randint(self.cfg.min_hops, self.cfg.max_hops)) for _ in range(n)]

    def heldout(self, per_hop: int) -> list[Question]:
        """A fixed held-out set: `per_hop` questions for each hop count, from a seed stream of its own."""
        rng = random.Random(_HELDOUT_SEED)
        return [self.make_question(rng, k) for k in range(self.cfg.min_hops, self.cfg.max_hops + 1)
                for _ in range(per_hop)]

    def search(self, q: Question, query: str) -> str:
        """The tool: "=value\\n" for a known key, "key=value\\n" for a fuzzy hit, "=?\\n" for a miss."""
        kb = dict(q.kb)
        if query in kb:
            return f"={kb[query]}\n"
        if self.cfg.fuzzy:
            best = min(q.kb, key=lambda kv: (edit_distance(query, kv[0]), kv[0]))
            if edit_distance(query, best[0]) <= 1:
                return f"{best[0]}={best[1]}\n"
        return "=?\n"

    @staticmethod
    def reward(q: Question, answer: str | None) -> float:
        """1.0 iff `answer` is exactly the reference entity (None: no answer given)."""
        return 1.0 if answer is not None and answer == q.answer else 0.0

    def trace(self, q: Question, stop_after: int | None = None) -> list[tuple[str, bool]]:
        """A demonstration as (text, is_policy) segments: k searches then the answer.

        `stop_after = j < k` gives an early-stopping trace (j searches, then answer the last entity
        found): the SFT mix uses it so the warm-started policy sometimes stops too soon, as a prompted
        LLM that answers from its own knowledge does.
        """
        chain = q.chain()
        j = q.hops if stop_after is None else stop_after
        segs: list[tuple[str, bool]] = []
        for i in range(j):
            query = f"{chain[i]}.{q.relations[i]}"
            segs.append((f"{CALL_OPEN}{query}{CALL_CLOSE}", True))
            segs.append((self.search(q, query), False))
        segs.append((f"{ANSWER_OPEN}{chain[j]}{ANSWER_CLOSE}", True))
        return segs
