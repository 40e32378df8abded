"""The search-agent trainer: warm start, multi-turn GRPO, exact resume (sync), bounded staleness (async)."""

import json
import time

import pytest
import torch

from rlx.agents.producer import AsyncProducer
from rlx.agents.rollout import Trajectories, layout
from rlx.agents.search_env import SearchEnv
from rlx.cli import main
from rlx.rundir import read_metrics

TINY = ["model.tiny.hidden_size=32", "model.tiny.num_layers=2", "model.tiny.intermediate_size=64",
        "model.tiny.max_position=64", "env.max_hops=2", "warm_start.steps=3", "warm_start.batch_size=4",
        "rollout.questions_per_step=2", "rollout.group_size=4", "rollout.turns.max_turns=3", "train.steps=4",
        "train.checkpoint_every=2", "eval.per_hop=2", "eval.max_turns=3"]


def _rows(path):
    return [{k: v for k, v in r.items() if not k.startswith(("time/", "warm/seconds"))}
            for r in read_metrics(path / "metrics.jsonl")]


def test_sync_crash_then_resume_matches_uninterrupted(tmp_path, kill_on_call):
    assert main(["train", "recipes/search_agent.yaml", *TINY, "--out", str(tmp_path / "a")]) == 0
    # SearchEnv.questions: 3 warm-start calls, then one per RL step: call 6 is step 3 (after step 2's checkpoint)
    restore = kill_on_call(SearchEnv, "questions", 6)
    assert main(["train", "recipes/search_agent.yaml", *TINY, "--out", str(tmp_path / "b")]) == 130
    restore()
    assert main(["train", "recipes/search_agent.yaml", *TINY, "--out", str(tmp_path / "b"), "--resume"]) == 0
    rows = _rows(tmp_path / "a")
    assert rows == _rows(tmp_path / "b")
    steps = [r for r in rows if "rollout/turns_mean" in r]
    assert [r["step"] for r in steps] == [1, 2, 3, 4]
    assert all(r["async/staleness"] == 0.0 for r in steps)
    assert all(r["rollout/turns_mean"] <= 3 for r in steps)  # the turn limit holds
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert {"eval/accuracy", "eval/accuracy_before", "eval/accuracy_hop1", "eval/accuracy_hop2",
            "train/steps_per_second", "warm/loss"} <= summary.keys()
    assert (tmp_path / "b" / "model" / "config.json").is_file()


def test_async_run_logs_bounded_staleness(tmp_path):
    out = tmp_path / "async"
    assert main(["train", "recipes/search_agent.yaml", *TINY, "async_rl.enabled=true", "async_rl.max_staleness=1",
                 "--out", str(out)]) == 0
    stale = [r["async/staleness"] for r in read_metrics(out / "metrics.jsonl") if "async/staleness" in r]
    assert len(stale) == 4 and stale[0] == 0.0 and all(0 <= s <= 1 for s in stale)
    assert json.loads((out / "summary.json").read_text())["async/staleness_max"] <= 1


def test_decoupled_correction_needs_a_cap(tmp_path, capsys):
    assert main(["train", "recipes/search_agent.yaml", *TINY, "async_rl.enabled=true",
                 "async_rl.correction=decoupled", "--out", str(tmp_path / "x")]) == 2
    assert "tis_cap" in capsys.readouterr().err
    assert main(["train", "recipes/search_agent.yaml", "rollout.turns.max_turns=0", "--out", str(tmp_path / "y")]) == 2
    assert "rollout.turns.max_turns" in capsys.readouterr().err


def _dummy(step: int, version: int) -> Trajectories:
    b = layout([[1]], [[]], 0, [0.0], [False], 1)
    one = torch.zeros(1, dtype=torch.long)
    return Trajectories(b, hops=one, turns=one, searches=one, answered=one.bool(), truncated=one.bool(),
                        policy_version=version)


@pytest.mark.parametrize("k", [0, 2])
def test_producer_staleness_is_bounded_and_reached(k):
    """A slow trainer: the producer runs ahead, so batch u is made with version max(0, u - 1 - k) at the
    earliest; staleness (u - 1) - v_u never exceeds k, and with k = 2 the first batches reach it
    (batches 1..3 are all made from version 0 before the first update ends: staleness 0, 1, 2)."""
    made = []

    def make(step, model, version, stop):
        made.append((step, version))
        return _dummy(step, version)

    model = torch.nn.Linear(2, 2)
    prod = AsyncProducer(make, model, max_staleness=k, start=0, steps=6)
    stale = []
    for u in range(1, 7):
        traj = prod.get()
        stale.append(u - 1 - traj.policy_version)
        time.sleep(0.2)  # the "update"
        with torch.no_grad():
            model.weight.add_(1.0)
        prod.publish(u, model)
    prod.close()
    assert [s for s, _ in made] == [1, 2, 3, 4, 5, 6]
    assert all(0 <= s <= k for s in stale)
    if k == 0:
        assert stale == [0] * 6  # synchronous: every batch from the newest weights
    else:
        assert stale[:3] == [0, 1, 2]


@pytest.mark.parametrize("overrides, message", [
    (["rollout.turns.turn_tokens=100"], "rollout.turns.turn_tokens = 100: a 2-hop prompt"),
    (["model.tiny.max_position=40", "env.max_hops=5"], "env.max_hops = 5: a full search trace takes"),
])
def test_a_context_the_budget_cannot_fit_is_a_config_error(tmp_path, capsys, overrides, message):
    """Every row ended `context_limit` before its first turn (or the warm start trained past the context): the
    run exited 0 with every loss exactly 0."""
    assert main(["train", "recipes/search_agent.yaml", *TINY, *overrides, "--out", str(tmp_path / "r")]) == 2
    assert message in capsys.readouterr().err


def test_close_does_not_wait_for_the_batch_in_flight():
    """Ctrl-C during an update called close(), which waited for the producer's whole batch: up to max_turns x
    tool_latency_s (8 x 1 s here; the config allows 256 x 60 s). The stop event ends it at the next wait."""
    from test_rollout import ENV, Q, ScriptedEngine

    from rlx.agents.rollout import TurnConfig, rollout
    from rlx.models.tokenizer import char_tokenizer

    tok = char_tokenizer()
    turns = TurnConfig(max_turns=8, tool_latency_s=1.0)  # an agent that searches every turn

    def make(step, model, version, stop):
        return rollout(ScriptedEngine(tok, ["[kab.A]"] * 8), tok, ENV, [Q], 2, turns, seed=step, max_len=512,
                       policy_version=version, stop=stop)

    prod = AsyncProducer(make, torch.nn.Linear(2, 2), max_staleness=1, start=0, steps=10)
    assert prod.get().turns.tolist() == [8, 8]  # the first batch ran its 8 turns; the next one is in flight
    t0 = time.perf_counter()
    prod.close()
    assert time.perf_counter() - t0 < 4.0  # 8 s before
    assert not prod._thread.is_alive() and prod._error is None
