"""`rlx eval --split`: accuracy per generalisation level (papers seedbench, randcalc)."""

import json

from rlx.cli import main


def test_generalization_split_reports_each_level_and_matches_plain_heldout(base_model_dir, tmp_path, capsys):
    common = ["eval", str(base_model_dir), "--task", "arithmetic", "--n", "20", "--samples", "0", "--max-new-tokens", "8"]
    assert main(common + ["--json", str(tmp_path / "plain.json")]) == 0
    assert main(common + ["--split", "generalization", "--json", str(tmp_path / "split.json"),
                          "--out", str(tmp_path / "run")]) == 0
    plain, split = (json.loads((tmp_path / f).read_text()) for f in ("plain.json", "split.json"))
    levels = {k.split("/")[1] for k in split if k.startswith("eval/") and k.count("/") == 2}
    assert levels == {"in_distribution", "harder", "new_composition"}
    # in_distribution is the task's own held-out set: the same 20 problems, the same greedy answers
    assert split["eval/in_distribution/accuracy"] == plain["eval/accuracy"]
    assert split["eval/in_distribution/problems"] == split["eval/harder/problems"] == 20.0
    assert 0 < split["eval/new_composition/problems"] <= 20
    assert "split: generalization" in (tmp_path / "run" / "config.yaml").read_text()
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["eval/harder/accuracy"] == split["eval/harder/accuracy"]


def test_split_needs_the_arithmetic_task(base_model_dir, capsys):
    assert main(["eval", str(base_model_dir), "--task", "countdown", "--split", "generalization"]) == 2
    assert "--split generalization" in capsys.readouterr().err
