"""A user's folder of images without classes, explained with their own checkpoint.

Every stage that reads labels meets label UNLABELLED (-1) here: the adapter writes it, splits put
everything in test, evaluation predicts without scoring, selection groups by predicted class,
targets refuse 'true', pictures say "predicted" without a made-up true class.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ferxai.classes import UNLABELLED, UNLABELLED_NAME, class_name
from ferxai.config import ConfigError, check_config
from ferxai.data.adapters import build_manifest
from ferxai.data.manifest import ManifestError
from ferxai.data.splits import SplitError, make_splits
from ferxai.evaluate import evaluate_model
from ferxai.explain.selection import select_samples
from ferxai.explain.targets import resolve_targets
from ferxai.plots.attribution import sample_title

CLASSES = ["happy", "sad", "neutral"]


def write_folder(root, n=7, size=20):
    """Images at several depths, grey and RGB, plus a non-image and a broken image."""
    rng = np.random.default_rng(3)
    (root / "a" / "b").mkdir(parents=True)
    paths = []
    for i in range(n):
        where = root if i % 3 == 0 else root / "a" if i % 3 == 1 else root / "a" / "b"
        shape = (size, size) if i % 2 else (size, size, 3)
        path = where / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)
        paths.append(path)
    (root / "notes.txt").write_text("not an image")
    return paths


def test_class_name_refuses_to_wrap_around():
    assert class_name(CLASSES, 1) == "sad"
    assert class_name(CLASSES, UNLABELLED) == UNLABELLED_NAME  # not CLASSES[-1]
    with pytest.raises(IndexError):
        class_name(CLASSES, 3)


def test_images_adapter_reads_every_image_without_a_class(tmp_path):
    write_folder(tmp_path / "photos")
    (tmp_path / "photos" / "broken.png").write_bytes(b"not a png")
    result = build_manifest("images", {"root": str(tmp_path / "photos"), "classes": CLASSES})
    frame = pd.DataFrame(result.rows)
    assert len(frame) == 7
    assert set(frame["label"]) == {UNLABELLED}
    assert set(frame["source_split"]) == {"test"}
    assert "a/b/img2.png" in set(frame["id"])
    assert result.classes == CLASSES
    assert [r["source"].endswith("broken.png") for r in result.rejects] == [True]
    assert any(d["source"].endswith("notes.txt") for d in result.dropped)


def test_images_adapter_needs_classes_and_a_folder(tmp_path):
    with pytest.raises(ManifestError, match="classes"):
        build_manifest("images", {"root": str(tmp_path)})
    with pytest.raises(ManifestError, match="not a directory"):
        build_manifest("images", {"root": str(tmp_path / "nope"), "classes": CLASSES})


def manifest_rows(labels):
    return pd.DataFrame({
        "id": [f"i{k}" for k in range(len(labels))], "source": "x", "label": labels,
        "label_name": ["" if y == UNLABELLED else CLASSES[y] for y in labels], "subject": "",
        "source_split": "test", "content_hash": [f"h{k}" for k in range(len(labels))],
    })


def test_splits_put_images_without_classes_in_test():
    result = make_splits(manifest_rows([UNLABELLED] * 5))
    assert (len(result.train), len(result.val), len(result.test)) == (0, 0, 5)
    assert result.summary.iloc[-1].tolist() == ["total", 0, 0, 5, 5]


def test_splits_refuse_a_mix_naming_rows():
    with pytest.raises(SplitError, match="i0.*i1"):
        make_splits(manifest_rows([UNLABELLED, 0, 1, 2, 0, 1]))


def test_evaluation_predicts_without_scoring():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
    images = np.random.default_rng(0).integers(0, 256, (6, 1, 4, 4), dtype=np.uint8)
    labels = np.full(6, UNLABELLED)
    frame, summary, cm = evaluate_model(model, images, labels, [f"i{k}" for k in range(6)], CLASSES, device="cpu")
    assert summary["labelled"] is False and summary["n"] == 6
    assert sum(summary["predicted_counts"].values()) == 6
    assert cm.shape == (1, 3) and cm.sum() == 6
    assert set(frame["label_name"]) == {UNLABELLED_NAME}
    assert not frame["correct"].any()
    with pytest.raises(ValueError, match="either labelled or not"):
        evaluate_model(model, images, np.array([UNLABELLED, 0, 1, 2, 0, 1]), list("abcdef"), CLASSES, device="cpu")


def test_selection_groups_by_prediction():
    predictions = pd.DataFrame({
        "id": list("abcdef"), "label": UNLABELLED, "prediction": [0, 0, 0, 2, 2, 1],
        "confidence": [0.5, 0.9, 0.7, 0.6, 0.8, 0.4],
    })
    picked = select_samples(predictions, num_each=1)
    # per predicted class (0, 1, 2): most confident, then least confident; nothing misclassified
    assert picked["id"].tolist() == ["b", "a", "f", "e", "d"]
    assert picked["set"].tolist() == ["high_confidence", "low_confidence", "high_confidence;low_confidence",
                                      "high_confidence", "low_confidence"]
    assert select_samples(predictions, sets=["misclassified"], num_each=2).empty


def test_targets_refuse_true_class_without_classes():
    labels, preds = np.full(3, UNLABELLED), np.array([0, 2, 1])
    assert resolve_targets("predicted", labels, preds, CLASSES).tolist() == [0, 2, 1]
    assert resolve_targets("class", labels, preds, CLASSES, "sad").tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="'true' needs images with a class"):
        resolve_targets("true", labels, preds, CLASSES)


def test_titles_say_only_what_is_known():
    assert sample_title(None, "sad", 0.834) == "predicted sad (0.83)"
    assert sample_title("happy", "sad", 0.834) == "true happy, predicted sad (0.83)"


def folder_config(root, checkpoint="data/mine.pt", target="predicted"):
    model = {"arch": "fer_cnn", "input_size": 32, "channels": 1, "options": {"widths": [8, 8, 8]}}
    if checkpoint:
        model["checkpoint"] = checkpoint
    return {
        "datasets": {"photos": {"format": "images", "options": {"root": str(root), "classes": CLASSES}}},
        "models": {"mine": model},
        "experiments": {"photos_mine": {"dataset": "photos", "model": "mine"}},
        "evaluate": {"device": "cpu"},
        "explain": {
            "num_each": 1, "shards": 2, "device": "cpu", "target": target,
            "preflight": {"batch_sizes": [2], "memory_budget_mb": 2000, "min_seconds": 0.01},
            "methods": {"saliency": {}, "integrated_gradients": {"baseline": "mean", "n_steps": 4}},
        },
        "resources": {g: {"gpu": 0, "threads": 1} for g in ("train", "evaluate", "explain")},
    }


def test_config_needs_a_checkpoint_and_no_true_target(tmp_path):
    with pytest.raises(ConfigError, match=r"experiments\.photos_mine: .*models\.mine\.checkpoint"):
        check_config(folder_config(tmp_path, checkpoint=None))
    with pytest.raises(ConfigError, match=r"explain\.target: 'true'"):
        check_config(folder_config(tmp_path, target="true"))


@pytest.mark.slow
def test_a_folder_is_explained_with_a_bring_your_own_checkpoint(tmp_path):
    from tinyflow import make_workdir, planned_rules, snakemake

    from ferxai.models import build_model

    write_folder(tmp_path / "data" / "photos")
    torch.manual_seed(0)
    model = build_model("fer_cnn", num_classes=3, in_channels=1, input_size=32, widths=[8, 8, 8])
    torch.save(model.state_dict(), tmp_path / "data" / "mine.pt")
    workdir = make_workdir(tmp_path, folder_config("data/photos"))

    rules = planned_rules(workdir)
    assert {"manifest", "splits", "import_checkpoint", "evaluate", "select_samples", "explain_inputs",
            "explanation_store", "method_grids"} <= rules
    assert not rules & {"train", "plot_confusion_matrix", "plot_training_curves"}
    snakemake(workdir)

    exp = workdir / "results" / "photos_mine"
    summary = json.loads((exp / "eval" / "test_summary.json").read_text())
    assert summary["labelled"] is False and summary["n"] == 7
    samples = pd.read_csv(exp / "explain" / "samples.csv")
    assert len(samples) >= 1 and not samples["set"].str.contains("misclassified").any()

    import xarray as xr

    store = xr.open_zarr(exp / "explain" / "store.zarr")
    assert (store["labels"].values == UNLABELLED).all()
    assert store["predictions"].values.tolist() == samples["prediction"].tolist()
    grids = sorted((exp / "explain" / "clean" / "grids").glob("*.png"))
    assert len(grids) == len(samples)
    assert planned_rules(workdir) == set()
