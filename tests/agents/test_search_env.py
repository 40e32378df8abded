"""The synthetic search environment: seeded worlds, the search tool, traces and the answer check."""

import pytest

from rlx.agents.search_env import Question, SearchEnv, SearchEnvConfig, edit_distance, parse_action
from rlx.config import ConfigError, build_config

# a hand-made world: kab -A-> mot -B-> zed
Q = Question(start="kab", relations=("A", "B"),
             kb=(("kab.A", "mot"), ("kab.B", "kab"), ("mot.A", "kab"), ("mot.B", "zed"), ("zed.A", "zed"),
                 ("zed.B", "mot")), answer="zed")


def test_chain_prompt_and_trace_by_hand():
    assert Q.text == "kab.A.B?\n" and Q.hops == 2
    assert Q.chain() == ["kab", "mot", "zed"]  # kab.A = mot, mot.B = zed
    env = SearchEnv(SearchEnvConfig(num_relations=2))
    assert env.trace(Q) == [("[kab.A]", True), ("=mot\n", False), ("[mot.B]", True), ("=zed\n", False),
                            ("{zed}", True)]
    # stopping after one search answers the entity found so far (wrong here)
    assert env.trace(Q, stop_after=1) == [("[kab.A]", True), ("=mot\n", False), ("{mot}", True)]
    assert env.trace(Q, stop_after=0) == [("{kab}", True)]


def test_search_exact_and_fuzzy():
    exact = SearchEnv(SearchEnvConfig(num_relations=2))
    fuzzy = SearchEnv(SearchEnvConfig(num_relations=2, fuzzy=True))
    assert exact.search(Q, "mot.B") == "=zed\n"
    assert exact.search(Q, "mox.B") == "=?\n"
    # "mox.B" is one substitution from "mot.B" (and 2+ from every other key)
    assert fuzzy.search(Q, "mox.B") == "mot.B=zed\n"
    # "qqq.B" is 3 edits from every key: a miss even for fuzzy search
    assert fuzzy.search(Q, "qqq.B") == "=?\n"


def test_edit_distance_by_hand():
    assert edit_distance("kab", "kob") == 1  # one substitution
    assert edit_distance("kab", "ka") == 1  # one deletion
    assert edit_distance("kab.A", "bak.A") == 2  # k->b, b->k
    assert edit_distance("", "abc") == 3


def test_parse_action():
    assert parse_action("[kab.A]").kind == "search" and parse_action("[kab.A]").content == "kab.A"
    assert parse_action("{zed}").kind == "answer" and parse_action("{zed}").content == "zed"
    for bad in ("kab.A]", "[kab.A", "{zed", "[a]b]", "", "]", "{}x"):
        assert parse_action(bad).kind == "invalid", bad


def test_reward_exact_match_only():
    assert SearchEnv.reward(Q, "zed") == 1.0
    assert SearchEnv.reward(Q, "zed ") == 0.0 and SearchEnv.reward(Q, "mot") == 0.0
    assert SearchEnv.reward(Q, None) == 0.0


def test_questions_are_seeded_and_consistent():
    env = SearchEnv(SearchEnvConfig(num_entities=12, num_relations=3, min_hops=2, max_hops=4))
    a, b = env.questions(20, seed=3), env.questions(20, seed=3)
    assert a == b and a != env.questions(20, seed=4)
    for q in a:
        assert 2 <= q.hops <= 4
        assert len(q.kb) == 12 * 3 and len({k.split(".")[0] for k, _ in q.kb}) == 12
        assert set(q.relations) <= {"A", "B", "C"}
        assert q.chain()[-1] == q.answer
        # following the trace's searches through the tool reaches the answer
        assert env.trace(q)[-1] == ("{" + q.answer + "}", True)
    held = env.heldout(5)
    assert [q.hops for q in held] == [2] * 5 + [3] * 5 + [4] * 5
    assert held == env.heldout(5)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="min_hops"):
        build_config(SearchEnvConfig, {"min_hops": 5, "max_hops": 2})
    with pytest.raises(ConfigError, match="num_entities"):
        build_config(SearchEnvConfig, {"num_entities": 1})
