"""Configs: YAML <-> config one to one, dotted overrides, one-line errors naming the field."""

from pathlib import Path

import pytest
import yaml

from rlx.cli import load_recipe, main
from rlx.config import ConfigError, apply_overrides, build_config, dump_yaml

RECIPES = sorted(Path(__file__).resolve().parents[1].joinpath("recipes").glob("*.yaml"))


def test_overrides_parse_yaml_values_and_nest():
    data = apply_overrides({"train": {"lr": 1.0}}, ["train.lr=3e-5", "train.steps=7", "a.b.c=true", "name=x"])
    assert data == {"train": {"lr": 3e-5, "steps": 7}, "a": {"b": {"c": True}}, "name": "x"}


def test_a_quoted_override_stays_a_string():
    """model.path="7" names the directory 7 (it used to become the float 7.0 and fail validation)."""
    data = apply_overrides({}, ['model.path="7"', "train.tag='1e-3'", "train.n=7", "train.lr=3e-5"])
    assert data == {"model": {"path": "7"}, "train": {"tag": "1e-3", "n": 7, "lr": 3e-5}}


def test_off_and_no_stay_strings_only_true_false_are_bools(tmp_path):
    # YAML 1.1 would read `off` / `no` / `on` as bools and reject `pear.level: off` as "False"
    recipe = tmp_path / "r.yaml"
    recipe.write_text("kind: sft\ntask: {name: arithmetic}\ntrain:\n  pear: {level: off}\n  x: [no, on, yes, True, false]\n")
    from rlx.config import read_yaml
    assert read_yaml(recipe)["train"] == {"pear": {"level": "off"}, "x": ["no", "on", "yes", True, False]}
    assert apply_overrides({}, ["train.pear.level=off", "a=false"]) == {"train": {"pear": {"level": "off"}}, "a": False}
    recipe.write_text("kind: sft\nmodel: {tiny: {}}\ntask: {name: arithmetic}\ntrain:\n  pear: {level: off}\n")
    _, cfg = load_recipe(str(recipe), [])
    assert cfg.train.pear.level == "off"


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides({}, ["train.lr"])


@pytest.mark.parametrize("recipe", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_validates_and_round_trips(recipe):
    if recipe.stem.startswith("quant_"):  # `rlx quantize --config` files hold a QuantConfig
        from rlx.config import read_yaml
        from rlx.quant.config import QuantConfig

        cls, cfg = QuantConfig, build_config(QuantConfig, read_yaml(recipe))
    else:
        module, cfg = load_recipe(str(recipe), [])
        cls = module.Config
    assert build_config(cls, yaml.safe_load(dump_yaml(cfg))) == cfg


def test_misspelled_key_names_the_field():
    with pytest.raises(ConfigError) as e:
        load_recipe("recipes/arith_sft.yaml", ["train.stpes=3"])
    assert str(e.value) == "config error: unknown key 'train.stpes' (did you mean 'train.steps'?)"


def test_negative_learning_rate_names_field_value_and_expectation():
    with pytest.raises(ConfigError) as e:
        load_recipe("recipes/arith_sft.yaml", ["train.optim.lr=-1"])
    assert str(e.value) == "config error: train.optim.lr = -1: Input should be greater than 0"


def test_wrong_type_is_reported():
    with pytest.raises(ConfigError, match=r"train.steps = 'many'"):
        load_recipe("recipes/arith_sft.yaml", ["train.steps=many"])


def test_unknown_kind():
    with pytest.raises(ConfigError, match="kind = 'nope'"):
        load_recipe("recipes/arith_sft.yaml", ["kind=nope"])


def test_a_quantization_config_under_train_says_how_to_run_it(tmp_path, capsys):
    assert main(["train", "recipes/quant_arith_quest2.yaml", "--out", str(tmp_path / "r")]) == 2
    assert "is a quantization config" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_out_pointing_at_a_file_is_a_one_line_error(tmp_path, capsys):
    """It was `[Errno 20] Not a directory`, from deep inside the run directory code."""
    f = tmp_path / "afile"
    f.write_text("keep me")
    assert main(["train", "recipes/arith_grpo.yaml", "--out", str(f)]) == 2
    assert f"--out {f} is a file" in capsys.readouterr().err and f.read_text() == "keep me"


def test_cli_exit_code_2_and_nothing_written(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "recipes/arith_sft.yaml", "train.optim.lr=-1", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["config error: train.optim.lr = -1: Input should be greater than 0"]
    assert not out.exists()


def test_missing_recipe_file(capsys):
    assert main(["train", "recipes/does_not_exist.yaml"]) == 2
    assert "recipe file not found" in capsys.readouterr().err


def test_corrupt_checkpoint_one_line_exit_2_nothing_written(tmp_path, capsys, tiny_model_dir):
    import shutil

    ck = tmp_path / "ck"
    shutil.copytree(tiny_model_dir, ck)
    (ck / "model.safetensors").write_bytes(b"\x00garbage")
    out = tmp_path / "run"
    assert main(["train", "recipes/arith_grpo.yaml", f"model.path={ck}", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("config error: model.path =") and "unreadable" in err[0]
    assert not out.exists()


def test_missing_dataset_path_names_the_field(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "recipes/arith_grpo.yaml", "task.name=math", f"task.path={tmp_path / 'nope.jsonl'}",
                 "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("config error: task.path =") and "file not found" in err
    assert not out.exists()


def test_a_missing_cuda_device_is_a_config_error_and_leaves_no_run(tmp_path, capsys):
    """model.device=cuda on a CPU machine used to raise RuntimeError (exit 1) after creating the run
    directory, which then blocked a retry ("already holds a run")."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "r"
    assert main(["train", "recipes/arith_grpo.yaml", "model.device=cuda", "train.steps=1", "--out", str(out)]) == 2
    assert "CUDA is not available" in capsys.readouterr().err and not out.exists()
    assert main(["train", "recipes/arith_grpo.yaml", "model.device=gpu0", "--out", str(out)]) == 2
    assert "not a torch device" in capsys.readouterr().err and not out.exists()


def test_resume_accepts_a_run_whose_config_predates_new_fields_at_their_default(tmp_path):
    """A field added to rlx after a run started is absent from its config.yaml: at its default it is not a
    difference (session 10 added eval.top_p / top_k / stop); set to something else, it still is."""
    from rlx.cli import _same_config_or_error
    from rlx.config import build_config, dump_yaml
    from rlx.train.rlvr_config import Config

    cfg = build_config(Config, {"kind": "rlvr", "model": {"path": "assets/arith-base"}, "task": {"name": "arithmetic"}})
    text = dump_yaml(cfg)
    import yaml

    data = yaml.safe_load(text)
    for k in ("top_p", "top_k", "stop"):
        data["eval"].pop(k)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(data))
    _same_config_or_error(tmp_path, text, cfg)  # no error
    changed = build_config(Config, {"kind": "rlvr", "model": {"path": "assets/arith-base"},
                                    "task": {"name": "arithmetic"}, "eval": {"top_p": 0.9}})
    with pytest.raises(ConfigError, match="eval.top_p"):
        _same_config_or_error(tmp_path, dump_yaml(changed), changed)


def test_resume_lets_only_the_run_length_change(tmp_path):
    """Any field ending in `steps` used to be free to change under --resume: warmup_steps=0 on resume changed
    the LR schedule mid-run and rewrote config.yaml. Only `steps` / `total_steps` (train longer) may change."""
    from rlx.cli import _same_config_or_error
    from rlx.config import build_config, dump_yaml
    from rlx.train.rlvr_config import Config

    def cfg(**train):
        return build_config(Config, {"kind": "rlvr", "model": {"path": "assets/arith-base"},
                                     "task": {"name": "arithmetic"}, "train": train})

    (tmp_path / "config.yaml").write_text(dump_yaml(cfg(steps=4, optim={"warmup_steps": 2})))
    longer = cfg(steps=8, optim={"warmup_steps": 2})
    _same_config_or_error(tmp_path, dump_yaml(longer), longer)  # no error
    other = cfg(steps=8, optim={"warmup_steps": 0})
    with pytest.raises(ConfigError, match=r"train\.optim\.warmup_steps \(2 -> 0\)"):
        _same_config_or_error(tmp_path, dump_yaml(other), other)
    shorter = cfg(steps=2, optim={"warmup_steps": 2})  # a run past step 2 cannot be trained back to it
    with pytest.raises(ConfigError, match=r"may lengthen a run, not shorten it: train\.steps \(4 -> 2\)"):
        _same_config_or_error(tmp_path, dump_yaml(shorter), shorter)


def test_yaml_duplicates_locations_and_adam_betas_are_config_errors(tmp_path, capsys):
    """A key given twice used to be read silently (the last one won); a YAML error gave no line; betas
    outside [0, 1) crashed inside torch with a traceback."""
    from rlx.config import read_yaml

    dup = tmp_path / "dup.yaml"
    dup.write_text("kind: sft\ntrain:\n  steps: 3\nseed: 1\ntrain: {steps: 2}\n")
    with pytest.raises(ConfigError, match=r"line 5, column 1\): key 'train' appears twice \(lines 2 and 5\)"):
        read_yaml(dup)
    tab = tmp_path / "tab.yaml"
    tab.write_text("kind: sft\ntrain:\n\tsteps: 3\n")
    with pytest.raises(ConfigError, match=r"\(line 3, column 1\): found character '\\t'"):
        read_yaml(tab)
    out = tmp_path / "r"
    assert main(["train", "recipes/arith_sft.yaml", "train.optim.betas=[0.9,2]", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "train.optim.betas" in err and "Traceback" not in err and not out.exists()


def test_overrides_index_lists_and_read_numbers_as_written():
    """`task.tasks.0.max_value=5` used to fail ("tasks is a value, not a section"); YAML 1.1 read `-` as
    [None], 010 as 8, 1:20 as 80 and `#a` as null."""
    from rlx.config import apply_overrides

    data = {"task": {"tasks": [{"name": "arithmetic"}, {"name": "countdown"}]}, "net": {"hidden": [64, 64]}}
    out = apply_overrides(data, ["task.tasks.0.max_value=5", "net.hidden.1=32", "task.operators=-", "seed=010",
                                 "train.log_every=1:20", "x=#a", "lr=3e-5", "flag=true", "y=null", "z=[1,2]"])
    assert out["task"]["tasks"][0] == {"name": "arithmetic", "max_value": 5} and out["net"]["hidden"] == [64, 32]
    assert (out["task"]["operators"], out["seed"], out["train"]["log_every"], out["x"]) == ("-", 10, "1:20", "#a")
    assert (out["lr"], out["flag"], out["y"], out["z"]) == (3e-5, True, None, [1, 2])
    assert data["net"]["hidden"] == [64, 64]  # the input is not changed
    with pytest.raises(ConfigError, match=r"task\.tasks is a list of 2; '5' is not an index of it"):
        apply_overrides(data, ["task.tasks.5.max_value=1"])


def test_the_parser_imports_only_the_chosen_subcommand():
    """Every subcommand's module (torch, transformers) was imported to build the parser: `rlx --help` took
    ~4.5 s and a Ctrl-C during it printed a traceback."""
    import subprocess
    import sys

    code = ("import sys; from rlx.cli import build_parser; build_parser({argv!r}); "
            "print('torch' in sys.modules, 'rlx.evaluation.cli' in sys.modules)")
    run = lambda argv: subprocess.run([sys.executable, "-c", code.format(argv=argv)], capture_output=True,
                                      text=True, check=True).stdout.split()
    assert run(["--help"]) == ["False", "False"] and run(["train", "r.yaml"]) == ["False", "False"]
    assert run(["eval", "--help"])[1] == "True"


def test_yaml_merge_keys_bad_list_indices_and_new_fields_inside_a_mixture(tmp_path):
    """Review of this session's diff: the duplicate-key check broke `<<: *anchor`; `--1` as an index raised a
    bare ValueError; a field added to a mixture's task (inside a list) counted as a changed config."""
    import yaml

    from rlx.cli import config_differences, load_recipe
    from rlx.config import apply_overrides, dump_yaml, read_yaml

    merged = tmp_path / "m.yaml"
    merged.write_text("base: &b {lr: 1, wd: 2}\ntrain: {<<: *b, lr: 3}\n")
    assert read_yaml(merged)["train"] == {"lr": 3, "wd": 2}
    with pytest.raises(ConfigError, match="is not an index"):
        apply_overrides({"a": [{"x": 1}]}, ["a.--1.x=2"])
    _, cfg = load_recipe("recipes/arith_recap.yaml", [])
    text = dump_yaml(cfg)
    old = yaml.safe_load(text)
    old["task"]["tasks"][0].pop("pool_seed")  # a run from before the field existed
    assert config_differences(yaml.safe_dump(old), text, cfg) == []
    _, other = load_recipe("recipes/arith_recap.yaml", ["task.tasks.1.pool_seed=3"])
    assert config_differences(text, dump_yaml(other), other) == ["task.tasks.1.pool_seed (0 -> 3)"]


def test_an_unknown_key_suggests_the_field_meant(capsys):
    for override, meant in (("train.lr=1", "train.optim.lr"), ("rollout.grup_size=4", "rollout.group_size"),
                            ("seed2=1", "seed"), ("train.optim.warmup=3", "train.optim.warmup_steps")):
        assert main(["train", "recipes/arith_grpo.yaml", override, "--out", "/nonexistent/never"]) == 2
        assert f"(did you mean '{meant}'?)" in capsys.readouterr().err, override
    assert main(["train", "recipes/arith_grpo.yaml", "zzz=1", "--out", "/nonexistent/never"]) == 2
    assert "unknown key 'zzz' (check the spelling" in capsys.readouterr().err


def test_a_finished_run_names_its_directory(tmp_path, capsys):
    """Without --out the run went to runs/RECIPE-TIMESTAMP and nothing said so."""
    out = tmp_path / "r"
    assert main(["sft", "recipes/arith_sft.yaml", "model.tiny.hidden_size=32", "model.tiny.num_layers=1",
                 "model.tiny.intermediate_size=64", "train.steps=1", "eval.n=2", "eval.every=0", "--out", str(out)]) == 0
    assert f"run directory: {out}" in capsys.readouterr().err
