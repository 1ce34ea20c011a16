from pathlib import Path

import pytest
import yaml

from conftest import REPO
from ferxai.config import ConfigError, check_config, config_hash, deep_merge, experiment_settings


def default_config() -> dict:
    return yaml.safe_load((Path(REPO) / "config" / "config.yaml").read_text())


def test_deep_merge_overrides_leaves_and_keeps_siblings():
    base = {"lr": 1, "augment": {"hflip": True, "max_shift": 0.1}}
    merged = deep_merge(base, {"augment": {"max_shift": 0.0}, "epochs": 3})
    assert merged == {"lr": 1, "augment": {"hflip": True, "max_shift": 0.0}, "epochs": 3}
    assert base["augment"]["max_shift"] == 0.1  # inputs untouched


def test_config_hash_ignores_key_order_but_not_values():
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_experiment_settings_merge_experiment_overrides():
    cfg = default_config()
    name = next(iter(cfg["experiments"]))
    cfg["experiments"][name]["train"] = {"epochs": 1, "augment": {"hflip": False}}
    s = experiment_settings(cfg, name)
    assert s["train"]["epochs"] == 1
    assert s["train"]["augment"]["hflip"] is False
    assert s["train"]["augment"]["max_rotation"] == cfg["train"]["augment"]["max_rotation"]
    assert s["model"]["arch"] == cfg["models"][s["model_name"]]["arch"]


def test_unknown_dataset_reference_names_experiment_and_field():
    cfg = default_config()
    name = next(iter(cfg["experiments"]))
    cfg["experiments"][name]["dataset"] = "missing"
    with pytest.raises(ConfigError, match=rf"experiments\.{name}\.dataset: 'missing'"):
        check_config(cfg)


def test_default_config_is_valid_against_schema():
    from snakemake.utils import validate

    cfg = default_config()
    validate(cfg, str(Path(REPO) / "config" / "schema.yaml"))
    check_config(cfg)


def test_unknown_adapter_option_is_named_at_config_check():
    cfg = default_config()
    cfg["datasets"]["fer"] = {"format": "fer2013_csv", "options": {"path": "x.csv", "pixel_colum": "p"}}
    with pytest.raises(ConfigError, match=r"datasets\.fer\.options: .*pixel_colum"):
        check_config(cfg)


def test_bad_synthetic_option_is_named_at_config_check():
    cfg = default_config()
    cfg["datasets"]["synthetic"]["options"]["n_per_clas"] = 3
    with pytest.raises(ConfigError, match=r"datasets\.synthetic\.options: .*n_per_clas"):
        check_config(cfg)


def test_unknown_model_option_is_named_at_config_check():
    cfg = default_config()
    cfg["models"]["fer_cnn"]["options"] = {"width": [8, 8, 8]}
    with pytest.raises(ConfigError, match=r"models\.fer_cnn\.options: .*'width'"):
        check_config(cfg)


@pytest.mark.parametrize("example", sorted((Path(REPO) / "config" / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_example_configs_are_valid(example):
    """Every example a user may copy to config/config.yaml passes schema and cross checks."""
    from snakemake.utils import validate

    cfg = yaml.safe_load(example.read_text())
    if "models" not in cfg:  # an overlay meant for --configfile on top of the default (it uses its models)
        cfg = deep_merge(default_config(), cfg)
    validate(cfg, str(Path(REPO) / "config" / "schema.yaml"))
    check_config(cfg)


def test_config_check_imports_neither_pandas_nor_torch():
    # Every `snakemake` command runs check_config while building its DAG; pandas alone adds
    # ~0.4 s and torch ~1 s to each, so the check must stay free of both.
    import subprocess
    import sys

    code = (
        "import sys, yaml\n"
        "from ferxai.config import check_config\n"
        f"check_config(yaml.safe_load(open({str(Path(REPO) / 'config' / 'config.yaml')!r})))\n"
        "heavy = sorted(m for m in ('pandas', 'torch') if m in sys.modules)\n"
        "assert not heavy, f'config check imported {heavy}'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_config_error_key_is_the_dotted_prefix_of_its_message():
    assert ConfigError("datasets.ck.options: dataset format 'x' ...").key == "datasets.ck.options"
    assert ConfigError("explain.methods.ig_blur: unknown parameter").key == "explain.methods.ig_blur"
    assert ConfigError("no key here, just words").key == "no"  # a plain word is still a top-level key
    assert ConfigError("").key == ""


def test_config_origin_names_the_layer_that_set_the_key(tmp_path):
    from ferxai.config import config_layers, config_origin

    default = tmp_path / "config.yaml"
    default.write_text(yaml.safe_dump({"datasets": {"syn": {"format": "synthetic"}}, "train": {"lr": 1}}))
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"datasets": {"ck": {"format": "folder", "options": {"root": "x"}}}}))
    later = tmp_path / "later.yaml"
    later.write_text(yaml.safe_dump({"train": {"lr": 2}}))
    layers = config_layers(str(default), [mine, later], {"train": {"epochs": 3}})
    assert [name for name, _ in layers][0] == "--config"
    assert config_origin("datasets.ck.options", layers).endswith("mine.yaml")
    assert config_origin("datasets.syn.format", layers) == str(default)
    assert config_origin("train.lr", layers).endswith("later.yaml")  # the later --configfile wins
    assert config_origin("train.epochs", layers) == "--config"
    # a key set nowhere is attributed to the file holding its longest prefix
    assert config_origin("datasets.ck.options.label_mode", layers).endswith("mine.yaml")


def test_setting_one_resource_leaves_the_others_to_the_rules(tmp_path):
    # The rules' own defaults (workflow/rules/*.smk, rule_resource) apply to keys not given; a
    # schema default would fill them in silently (e.g. gpu: 0 for a rule that asks for a GPU).
    from snakemake.utils import validate

    cfg = default_config()
    cfg["resources"] = {"explain": {"mem_mb": 100}}
    validate(cfg, str(Path(REPO) / "config" / "schema.yaml"))
    assert cfg["resources"]["explain"] == {"mem_mb": 100}


def test_config_origin_handles_names_with_dots(tmp_path):
    from ferxai.config import config_layers, config_origin

    default = tmp_path / "config.yaml"
    default.write_text(yaml.safe_dump({"models": {"resnet.v2": {"arch": "resnet19"}}}))
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"models": {"cnn": {"arch": "fer_cnn"}}}))
    layers = config_layers(str(default), [mine])
    # the dotted model name lives in the default file, not in the --configfile that also has `models`
    assert config_origin("models.resnet.v2.arch", layers) == str(default)
    assert config_origin("models.cnn.arch", layers).endswith("mine.yaml")
