"""The settings dataclasses (ferxai.settings, ferxai.train) and config/schema.yaml describe the
same keys, and wherever the schema states a default it is the dataclass's."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from ferxai.config import ConfigError, check_config
from ferxai.settings import (AssessSettings, EvaluateSettings, ExplainSettings, IntervalSettings, PreflightSettings,
                             RandomisationSettings, RobustnessSettings, TrackingSettings)

SCHEMA = yaml.safe_load((Path(REPO) / "config" / "schema.yaml").read_text())


def schema_section(*path: str) -> dict:
    node = SCHEMA
    for key in path:
        node = node["properties"][key] if "properties" in node else node[key]
        if "$ref" in node:
            node = SCHEMA["definitions"][node["$ref"].rsplit("/", 1)[1]]
    return node


def sections():
    from ferxai.augment import AugmentSettings
    from ferxai.train import TrainSettings

    return [(EvaluateSettings, ("evaluate",)), (ExplainSettings, ("explain",)),
            (PreflightSettings, ("explain", "preflight")), (TrainSettings, ("train",)),
            (AugmentSettings, ("train", "augment")), (AssessSettings, ("assess",)),
            (RandomisationSettings, ("assess", "randomisation")), (RobustnessSettings, ("assess", "robustness")),
            (IntervalSettings, ("assess", "intervals")), (TrackingSettings, ("tracking",))]


def plain(value):
    if isinstance(value, tuple):
        return [plain(v) for v in value]
    return value


@pytest.mark.parametrize("cls,path", sections(), ids=lambda v: v.__name__ if isinstance(v, type) else ".".join(v))
def test_schema_and_dataclass_name_the_same_keys(cls, path):
    props = schema_section(*path)["properties"]
    assert sorted(props) == sorted(f.name for f in dataclasses.fields(cls))


@pytest.mark.parametrize("cls,path", [(EvaluateSettings, ("evaluate",)), (ExplainSettings, ("explain",)),
                                      (PreflightSettings, ("explain", "preflight")), (AssessSettings, ("assess",)),
                                      (RandomisationSettings, ("assess", "randomisation")),
                                      (IntervalSettings, ("assess", "intervals")), (TrackingSettings, ("tracking",))],
                         ids=lambda v: v.__name__ if isinstance(v, type) else ".".join(v))
def test_defaults_are_stated_by_the_dataclass_only(cls, path):
    props = schema_section(*path)["properties"]
    assert [key for key, prop in props.items() if "default" in prop] == []


@pytest.mark.parametrize("cls,path", sections(), ids=lambda v: v.__name__ if isinstance(v, type) else ".".join(v))
def test_defaults_pass_the_schema_and_any_schema_default_agrees(cls, path):
    from jsonschema import validate  # what snakemake.utils.validate uses

    defaults = cls()
    props = schema_section(*path)["properties"]
    for f in dataclasses.fields(cls):
        value = getattr(defaults, f.name)
        if dataclasses.is_dataclass(value):
            continue  # its own section
        if "default" in props[f.name]:
            assert props[f.name]["default"] == plain(value), f"{'.'.join(path)}.{f.name}"
        if value is None and "null" not in str(props[f.name].get("type", "")):
            continue  # unset means "not given": the schema does not need to accept null
        # the default itself must be a value the schema accepts
        validate({f.name: plain(value)}, {"type": "object", "properties": {f.name: props[f.name]},
                                           "definitions": SCHEMA.get("definitions", {})})


def test_explain_settings_resolve_nested_sections_and_reject_unknown_keys():
    s = ExplainSettings.from_dict({"num_each": 2, "preflight": {"batch_sizes": [2, 8]}})
    assert s.num_each == 2 and s.preflight.batch_sizes == (2, 8)
    assert s.preflight.min_seconds == PreflightSettings().min_seconds
    assert s.run()["preflight"]["batch_sizes"] == [2, 8]
    with pytest.raises(ValueError, match=r"explain\.preflight: unknown key\(s\) \['batchsizes'\]"):
        ExplainSettings.from_dict({"preflight": {"batchsizes": [2]}})


def test_config_check_reports_a_bad_settings_key_as_a_config_error():
    from test_config import default_config

    cfg = default_config()
    cfg.setdefault("explain", {})["preflight"] = {"batchsizes": [2]}
    with pytest.raises(ConfigError, match=r"explain\.preflight: unknown key"):
        check_config(cfg)


def test_a_changed_default_changes_the_params_jobs_see():
    # jobs get complete settings, so Snakemake's params trigger sees a changed default as a change
    assert ExplainSettings.from_dict({}).run()["preflight"]["batch_sizes"] == list(PreflightSettings().batch_sizes)
    assert ExplainSettings.from_dict({"seed": 1}).run() != ExplainSettings().run()
    assert set(ExplainSettings().run()) == {"target", "target_class", "output", "seed", "device",
                                            "shards", "preflight", "on_error"}
