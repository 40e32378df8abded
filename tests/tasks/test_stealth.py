"""The stealth task (paper stealthrl): styles, exact meaning, composite reward, held-out detector, recipe."""

import json
import random

import numpy as np
import pytest

from rlx.config import ConfigError
from rlx.rewards.detection_metrics import human_survival
from rlx.rewards.stealth import log_evasion, preserves
from rlx.tasks import StealthConfig, load_task_config, make_task
from rlx.tasks.stealth import FORMS, StealthTask, attack_report, machine_text, render, styled_text

SMALL = dict(fit_texts=200, calibration_texts=200, lm_texts=500, classifier_steps=100)


@pytest.fixture(scope="module")
def task():
    return make_task(StealthConfig(**SMALL))


def test_render_and_styles():
    assert render("c-a=b", 12, 34, (True, True, False, False)) == "46 - 12=34"
    assert machine_text(12, 34) == "12+34=46"
    assert all(preserves(render(f, 12, 34), "12+34=46") for f in FORMS)
    rng = random.Random(0)
    texts = [styled_text(rng, 12, 34, 1.0) for _ in range(50)]
    assert all(t.count(" ") == 4 and preserves(t, "12+34=46") for t in texts)
    assert {t.replace(" ", "") for t in texts} <= {render(f, 12, 34) for f in FORMS}


def test_problems_prompts_and_references(task):
    probs = task.train_problems(50, seed=0)
    for p in probs:
        assert p.question == machine_text(p.meta["a"], p.meta["b"]) and 10 <= p.meta["a"] <= 99
        assert task.prompt(p) == p.question + ">"
        ref = task.reference_completion(p)
        assert ref == task.reference_completion(p) and preserves(ref, p.question)
        assert task.score(ref, p).parsed
    held = {p.question for p in task.heldout(100)}
    assert len(held) == 100 and not held & {p.question for p in task.train_problems(500, seed=1)}


def test_machine_text_is_caught_and_human_text_evades(task):
    probs = task.heldout(50)
    copies = [task.score(p.question, p) for p in probs]  # the attack "paraphrase" that changes nothing
    assert all(s.parts["preserve"] == 1.0 and s.parts["detected"] == 1.0 and not s.correct for s in copies)
    rng = random.Random(1)
    human = [task.score(styled_text(rng, p.meta["a"], p.meta["b"], 0.8), p) for p in probs]
    assert np.mean([s.correct for s in human]) > 0.9  # flagged only at about the 1% FPR (x 2 training detectors)


def test_reward_is_the_gated_evasion_of_training_detectors(task):
    p = task.heldout(1)[0]
    text = render("c=b+a", p.meta["a"], p.meta["b"], (True, False, True, True))
    s = task.score(text, p)
    surv = [float(human_survival(task.detector_scores([text], [n])[n], task.detectors[n].human_scores)[0])
            for n in ("classifier", "curvature")]
    ev = [log_evasion(x, 0.01) for x in surv]
    assert ev[0] != ev[1]  # so that min and mean differ below
    # gate, w = 0.3, ensemble min: r = 0.3 + 0.7 * min(E)
    assert s.reward == pytest.approx(0.3 + 0.7 * min(ev), abs=1e-12) and s.parts["preserve"] == 1.0
    mean_task = StealthTask(StealthConfig(**SMALL, ensemble="mean", preserve_weight=0.0), detectors=task.detectors)
    assert mean_task.score(text, p).reward == pytest.approx((ev[0] + ev[1]) / 2, abs=1e-12)
    wrong = render("c=b+a", p.meta["a"], p.meta["b"] + 1, (True, False, True, True))  # true but another relation
    assert task.score(wrong, p).reward == 0.0 and not task.score(wrong, p).correct
    for junk in ["", "hello", "1+1=2\n" * 20, None]:
        s = task.score(junk, p)
        assert s.reward == 0.0 and not s.parsed and not s.correct


def test_weighted_reward_pays_evasion_without_meaning():
    t = make_task(StealthConfig(**SMALL, combine="weighted", preserve_weight=0.5))
    p = t.heldout(1)[0]
    wrong = render("c=b+a", p.meta["a"], p.meta["b"] + 1, (True, True, True, True))
    s = t.score(wrong, p)
    assert s.parts["preserve"] == 0.0 and s.parts["evasion"] > 0
    assert s.reward == pytest.approx(0.5 * s.parts["evasion"], abs=1e-12)


def test_heldout_detector_never_enters_the_reward():
    t = make_task(StealthConfig(**SMALL, train_detectors=["classifier"]))
    assert t.heldout_names == ["curvature", "binoculars"]
    p = t.heldout(1)[0]
    text = render("b=c-a", p.meta["a"], p.meta["b"], (True, True, False, True))
    before = t.score(text, p)

    class Loud:
        name = "curvature"

        def scores(self, texts):
            return np.full(len(texts), 1e9)  # flags everything

    t.detectors["curvature"] = type(t.detectors["curvature"])(Loud(), t.detectors["curvature"].human_scores, 0.0)
    t._memo.clear()
    after = t.score(text, p)
    assert after.reward == before.reward and after.correct == before.correct
    assert set(after.parts) == {"preserve", "evasion", "detected", "evade/classifier"}
    rep = attack_report(t, [p.question], [text], t.human_texts(20, seed=0))
    assert rep["tpr/curvature"] == 1.0 and rep["asr_heldout"] == 0.0  # the held-out one is still evaluated


def test_attack_report_on_unchanged_machine_text(task):
    probs = task.heldout(40)
    src = [p.question for p in probs]
    rep = attack_report(task, src, src, task.human_texts(200, seed=3))
    assert rep["preserve"] == 1.0 and rep["asr"] == 0.0  # the classifier flags every canonical text
    assert rep["tpr/classifier"] == 1.0 and rep["auroc/classifier"] > 0.99
    for n in ("classifier", "curvature", "binoculars"):
        cal = task.detectors[n]
        assert (cal.human_scores > cal.threshold).mean() <= 0.01  # calibrated: at most 1% of its humans flagged
        assert rep[f"fpr/{n}"] <= 0.1  # fresh humans: near the target (200 calibration texts are few)


@pytest.mark.parametrize("bad, field", [({"min_value": 50, "max_value": 10}, "min_value"),
                                        ({"train_detectors": ["classifier", "classifier"]}, "train_detectors"),
                                        ({"train_detectors": ["roberta"]}, "train_detectors"),
                                        ({"answer_format": "boxed"}, "answer_format"),
                                        ({"target_fpr": 0.0}, "target_fpr")])
def test_bad_config_names_the_field(bad, field):
    with pytest.raises(ConfigError, match=field):
        load_task_config({"name": "stealth", **bad})


def test_recipe_smoke(tiny_model_dir, tmp_path):
    from rlx.cli import main

    small = [f"task.{k}={v}" for k, v in SMALL.items()]
    args = ["train", "recipes/stealth_grpo.yaml", f"model.path={tiny_model_dir}", "train.steps=2", "eval.n=4",
            "rollout.prompts_per_step=2", "rollout.group_size=4", "train.micro_batch_size=4",
            "train.checkpoint_every=1", "model.lora.r=4", *small, "--out", str(tmp_path / "run")]  # LoRA, as the paper
    assert main(args) == 0
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert 0.0 <= summary["eval/accuracy"] <= 1.0 and summary["train/steps"] == 2
    rows = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "time/rollout" in r] == [1, 2]
    assert (tmp_path / "run" / "checkpoints" / "step_00000002" / "model" / "adapter_config.json").is_file()


def test_the_split_follows_the_relation_so_b_plus_a_is_not_trained_when_a_plus_b_is_held_out(task):
    """'42+18=60' and '18+42=60' state one relation with the same valid paraphrases; 108 of 2000 training
    draws shared a relation with one of 100 held-out problems before."""
    from rlx.rewards.stealth import relation

    held = {relation(p.question) for p in task.heldout(100)}
    train = {relation(p.question) for p in task.train_problems(2000, seed=0)}
    assert held and not held & train
