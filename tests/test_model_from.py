"""`experiments.<name>.model_from`: evaluate and explain another experiment's model on this
experiment's dataset (a second test set), training nothing."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tinyflow import TINY, make_workdir, planned_jobs, snakemake

from ferxai.config import ConfigError, check_config
from ferxai.data.dataset import load_split_arrays


def two_test_sets() -> dict:
    cfg = json.loads(json.dumps(TINY))
    cfg["explain"]["methods"] = {}
    tiny = cfg["datasets"]["tiny"]
    # the same faces, the mark of another class in a corner of each
    cfg["datasets"]["tiny_misleading"] = {**tiny, "options": {**tiny["options"], "cue": "shuffled", "cue_size": 4}}
    cfg["experiments"]["tiny_cnn_misleading"] = {"dataset": "tiny_misleading", "model": "cnn", "model_from": "tiny_cnn"}
    return cfg


@pytest.mark.parametrize("change, message", [
    (lambda e: e.update(model_from="nowhere"), r"model_from: 'nowhere' is not another experiment"),
    (lambda e: e.update(model_from="tiny_cnn_misleading"), r"model_from: 'tiny_cnn_misleading' is not another"),
    (lambda e: e.update(model="other"), r"experiment 'tiny_cnn' trains model 'cnn', but .*model is 'other'"),
    (lambda e: e.update(train={"epochs": 3}), r"experiments\.tiny_cnn_misleading\.train: \['epochs'\] would not"),
])
def test_bad_model_from_fails_at_config_time_naming_the_key(change, message):
    cfg = two_test_sets()
    cfg["models"]["other"] = dict(cfg["models"]["cnn"])
    change(cfg["experiments"]["tiny_cnn_misleading"])
    with pytest.raises(ConfigError, match=message):
        check_config(cfg)


def test_a_chain_of_model_from_names_the_source():
    cfg = two_test_sets()
    cfg["experiments"]["third"] = {"dataset": "tiny", "model": "cnn", "model_from": "tiny_cnn_misleading"}
    with pytest.raises(ConfigError, match=r"experiments\.third\.model_from: .* takes its model from 'tiny_cnn' "
                                          r"itself; name 'tiny_cnn' instead"):
        check_config(cfg)


def test_labels_must_mean_the_models_classes(tmp_path):
    split = pd.DataFrame({"id": ["a", "b"], "source": ["x.png", "y.png"], "label": [0, 1],
                          "label_name": ["angry", "happy"]})
    with pytest.raises(ValueError, match=r"row 2 \(image 'b'\) has label 1 = 'happy', but the model's class 1 "
                                         r"is 'disgust'"):
        load_split_arrays(split, 8, 1, classes=["angry", "disgust"])


@pytest.mark.slow
def test_the_second_experiment_uses_the_first_ones_model_and_trains_nothing(tmp_path):
    workdir = make_workdir(tmp_path, two_test_sets())
    planned = planned_jobs(workdir)
    assert [wc for rule, wc in planned if rule == "train"] == ["experiment=tiny_cnn"]
    target = "results/tiny_cnn_misleading/eval/test_summary.json"
    snakemake(workdir, target, "results/tiny_cnn/eval/test_summary.json")
    assert not (workdir / "results" / "tiny_cnn_misleading" / "model").exists()
    clean = json.loads((workdir / "results" / "tiny_cnn" / "eval" / "test_summary.json").read_text())
    misleading = json.loads((workdir / target).read_text())
    assert misleading["num_samples"] == clean["num_samples"]  # the same test faces (seed, splits), other marks
    assert misleading["checkpoint"] == clean["checkpoint"]
    predictions = pd.read_csv(workdir / "results" / "tiny_cnn_misleading" / "eval" / "predictions.csv")
    clean_ids = pd.read_csv(workdir / "results" / "tiny_cnn" / "eval" / "predictions.csv")["id"]
    assert predictions["id"].tolist() == clean_ids.tolist()
    assert np.isin(predictions["prediction_name"], json.loads(
        (workdir / "results" / "data" / "tiny" / "classes.json").read_text())).all()
