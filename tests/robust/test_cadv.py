"""Continuous adversarial training (paper cadv): losses by hand, the PGD attack's constraints and effect,
attack success as greedy decoding, GCG, behaviours, and the SFT switch end to end."""

import json
import math

import pytest
import torch

from rlx.cli import main
from rlx.config import ConfigError, build_config
from rlx.robust import cadv
from rlx.tasks.arithmetic import ArithmeticTask
from rlx.tasks.config import ArithmeticConfig


def test_ipo_loss_hand_value():
    # h = (-1 - -2) - (-3 - -1) = 1 + 2 = 3; beta 0.5 -> target 1 -> (3 - 1)^2 = 4; second row h = 0 -> 1
    loss = cadv.ipo_loss(torch.tensor([-1.0, -1.0]), torch.tensor([-3.0, -1.0]), torch.tensor([-2.0, -1.0]),
                         torch.tensor([-1.0, -1.0]), beta=0.5)
    assert float(loss) == pytest.approx((4.0 + 1.0) / 2)


def test_unlikelihood_hand_value_and_mask():
    lp = torch.log(torch.tensor([[0.5, 0.9, 0.2]]))
    mask = torch.tensor([[True, False, True]])
    expect = -(math.log(0.5) + math.log(0.8)) / 2
    assert float(cadv.unlikelihood_loss(lp, mask)) == pytest.approx(expect, rel=1e-6)


@pytest.fixture(scope="module")
def model_tok(base_model_dir):
    from rlx.models import load_pretrained

    torch.manual_seed(0)
    return load_pretrained(str(base_model_dir))


def _behaviours(tok, n=8, seed=0):
    task = ArithmeticTask(ArithmeticConfig())
    return cadv.off_by_one_behaviours(task, task.train_problems(n, seed=seed), tok)


def test_off_by_one_behaviours_and_pair_batch(model_tok):
    _, tok = model_tok
    task = ArithmeticTask(ArithmeticConfig())
    probs = task.train_problems(4, seed=0)
    beh = cadv.off_by_one_behaviours(task, probs, tok)
    assert [b.harmful for b in beh] == [str(int(p.answer) + 1) for p in probs]
    assert [b.safe for b in beh] == [task.reference_completion(p) for p in probs]
    b = cadv.pair_batch(tok, [cadv.Behaviour("19+29=", "49", "48"), cadv.Behaviour("9-9=", "1", "0")])
    # row 0: prompt 6 tokens; harmful "49" + EOS; the shared "4" is not pushed away, "9" and EOS are
    assert b.prompt_mask[0].tolist()[:7] == [True] * 6 + [False]
    assert b.away_mask[0].nonzero().squeeze(1).tolist() == [6, 7]  # predicting "9" (index 6 of labels[1:]) and EOS
    assert b.away_mask[1].nonzero().squeeze(1).tolist() == [3, 4]  # "1" differs from "0" at once


def test_pgd_respects_the_ball_stays_on_the_prompt_and_raises_the_target(model_tok):
    model, tok = model_tok
    b = cadv.pair_batch(tok, _behaviours(tok))
    e = model.get_input_embeddings()(b.harm_ids).detach()
    eps = 0.1 * cadv.embedding_scale(model)
    d = cadv.pgd_attack(model, e, b.harm_mask, b.harm_labels, b.prompt_mask, eps, steps=10, step_size=0.25 * eps)
    assert not d.requires_grad and all(p.grad is None for p in model.parameters())
    assert float(d.norm(dim=-1).max()) <= eps * (1 + 1e-5)
    assert float(d[~b.prompt_mask].abs().max()) == 0.0  # completion and padding untouched
    before, _ = cadv.target_logprobs(model, e, b.harm_mask, b.harm_labels)
    after, _ = cadv.target_logprobs(model, e + d, b.harm_mask, b.harm_labels)
    assert bool((after.sum(-1) >= before.sum(-1)).all())  # best iterate: never worse than no attack
    assert float((after.sum() - before.sum()).detach()) > 5.0


def test_attack_success_is_greedy_decoding(model_tok):
    """A completion 'succeeds' exactly when greedy generation from the prompt produces it (then EOS)."""
    model, tok = model_tok
    from rlx.rollout import HFEngine, SamplingParams

    prompts = ["12+34=", "71*96=", "19+29=", "89-63=", "5+5=", "7*8="]
    greedy = HFEngine(model, tok).generate(prompts, SamplingParams(temperature=0.0, max_new_tokens=8), seed=0)
    texts = [tok.decode(r[m], skip_special_tokens=True) for r, m in zip(greedy.completion_ids, greedy.completion_mask)]
    beh = [cadv.Behaviour(p, t, t) for p, t in zip(prompts, texts)]
    wrong = [cadv.Behaviour(p, t + "1", t) for p, t in zip(prompts, texts)]
    for rows, expect in ((beh, True), (wrong, False)):
        b = cadv.pair_batch(tok, rows)
        e = model.get_input_embeddings()(b.harm_ids)
        assert cadv.attack_success(model, e, b.harm_mask, b.harm_labels).tolist() == [expect] * len(prompts)


def test_gcg_finds_prefixes_that_raise_success_over_no_attack(model_tok):
    model, tok = model_tok
    beh = _behaviours(tok, n=12, seed=3)
    b = cadv.pair_batch(tok, beh)
    clean = cadv.attack_success(model, model.get_input_embeddings()(b.harm_ids), b.harm_mask, b.harm_labels)
    hit = cadv.gcg_attack(model, tok, beh, prefix_len=6, steps=15, topk=16, candidates=16, seed=0)
    assert hit.shape == (12,) and int(hit.sum()) > int(clean.sum())


def test_config_off_and_errors():
    assert cadv.CAdvConfig(mode=False).mode == "off"  # YAML's bare `off`
    with pytest.raises(Exception, match="mode"):
        cadv.CAdvConfig(mode="fgsm")
    from rlx.train import sft

    with pytest.raises(ConfigError, match="cadv"):
        build_config(sft.Config, {"kind": "sft", "model": {"path": "x"}, "task": {"name": "arithmetic"},
                                  "train": {"cadv": {"eps": 0}}})


@pytest.mark.parametrize("mode,utility", [("ul", 4.0), ("ipo", 4.0), ("ipo", 0.0)])
def test_sft_with_cadv_runs_and_reports(tmp_path, base_model_dir, mode, utility):
    out = tmp_path / mode
    args = ["sft", "recipes/arith_cadv.yaml", f"model.path={base_model_dir}", "train.steps=3", "train.log_every=1",
            "train.batch_size=4", f"train.cadv.mode={mode}", f"train.cadv.utility={utility}", "train.cadv.behaviours=4",
            "train.cadv.attack_steps=2",
            "train.cadv.eval_n=4", "train.cadv.eval_attack_steps=2", "train.cadv.gcg_steps=1", "eval.n=8",
            "--out", str(out)]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("robust/asr_clean", "robust/asr_pgd", "robust/asr_pgd_2eps", "robust/asr_gcg", "robust/safe_clean"):
        assert 0.0 <= summary[key] <= 1.0
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    key = "cadv/toward" if mode == "ul" else "cadv/ipo"
    assert sum(key in r for r in rows) == 3 and all(math.isfinite(r[key]) for r in rows if key in r)
    if utility == 0:  # no clean loss was computed: the logged total is the adversarial term alone
        assert all(r["train/utility_loss"] == 0.0 and r["train/loss"] == pytest.approx(r[key]) for r in rows if key in r)


def test_cadv_needs_plain_arithmetic(tmp_path, capsys):
    """The behaviours are a bare off-by-one number vs the reference completion: with boxed answers the
    harmful and safe completions differ in format, not only in the number, so it is a config error."""
    from rlx.cli import main

    assert main(["sft", "recipes/arith_cadv.yaml", "task.answer_format=boxed", "train.steps=1",
                 "--out", str(tmp_path / "x")]) == 2
    assert "train.cadv" in capsys.readouterr().err
