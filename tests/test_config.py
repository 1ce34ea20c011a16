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
