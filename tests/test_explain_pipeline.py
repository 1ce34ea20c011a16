"""The attribution jobs' library side (ferxai.explain.pipeline) on a real small checkpoint: the
merged preflight job measures, writes its JSON and explains shard 0; an empty selection gives an
empty shard instead of a crash; the other shards use the measured batch size."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ferxai.explain.pipeline import write_preflight_and_shard, write_shard
from ferxai.explain.shard_files import load_shard
from ferxai.models import build_model, checkpoint_meta, model_normalization, save_checkpoint

CLASSES = ["a", "b", "c"]
SIZE = 16


@pytest.fixture()
def checkpoint(tmp_path):
    torch.manual_seed(0)
    model = build_model("fer_cnn", len(CLASSES), 1, SIZE, widths=(4, 8))
    meta = checkpoint_meta(arch="fer_cnn", classes=CLASSES, in_channels=1, input_size=SIZE,
                           normalization=model_normalization(model), model_options={"widths": (4, 8)})
    return save_checkpoint(tmp_path / "best.pt", model.eval(), meta)


def inputs_file(tmp_path, n: int):
    rng = np.random.default_rng(0)
    path = tmp_path / f"inputs-{n}.npz"
    np.savez(path, images=rng.integers(0, 256, (n, 1, SIZE, SIZE), dtype=np.uint8),
             labels=rng.integers(0, 3, n), predictions=rng.integers(0, 3, n),
             probabilities=np.full((n, 3), 1 / 3, np.float32), confidence=np.full(n, 1 / 3, np.float32),
             ids=np.array([f"img{i}" for i in range(n)], dtype=str), sets=np.array(["high_confidence"] * n),
             class_names=np.array(CLASSES), mean_image=np.zeros((1, SIZE, SIZE), np.float32),
             class_means=np.zeros((3, 1, SIZE, SIZE), np.float32),
             reference_images=rng.integers(0, 256, (4, 1, SIZE, SIZE), dtype=np.uint8))
    return path


SETTINGS = {"device": "cpu", "shards": 2, "preflight": {"batch_sizes": [1, 2, 4], "min_seconds": 0.01}}
SPEC = {"method": "saliency", "params": {}}


def test_preflight_job_measures_then_explains_shard_zero(tmp_path, checkpoint, caplog):
    caplog.set_level("INFO")
    inputs = inputs_file(tmp_path, 6)
    result = write_preflight_and_shard(checkpoint, inputs, SPEC, SETTINGS, "clean",
                                       tmp_path / "pf.json", tmp_path / "shard-0.npz")
    record = json.loads((tmp_path / "pf.json").read_text())
    assert record["batch_size"] == result.batch_size in (1, 2, 4)
    assert record["spec"] == SPEC and record["candidates"]
    maps, ids, meta = load_shard(tmp_path / "shard-0.npz")
    assert ids == ["img0", "img1", "img2"] and maps.shape == (3, SIZE, SIZE)
    assert meta["batch_size"] == result.batch_size
    # the attribution time goes to the job's log (bench/job_costs.py reads it), not into the shard
    assert "compute_seconds" not in meta
    assert "saliency clean shard 0: computed 3 images in" in caplog.text
    # what the other shard jobs' cluster runtime is sized for: the larger of the two halves
    assert record["shard_images"] == 3

    # the next shard (and other conditions) use the measured batch size
    write_shard(checkpoint, inputs, tmp_path / "pf.json", SPEC, SETTINGS, "gaussian-0.1", 1,
                tmp_path / "shard-1.npz")
    maps1, ids1, meta1 = load_shard(tmp_path / "shard-1.npz")
    assert ids1 == ["img3", "img4", "img5"] and meta1["batch_size"] == result.batch_size
    assert meta1["condition"] == "gaussian-0.1"


def test_an_empty_selection_gives_an_empty_shard_not_a_crash(tmp_path, checkpoint):
    inputs = inputs_file(tmp_path, 0)
    result = write_preflight_and_shard(checkpoint, inputs, SPEC, SETTINGS, "clean",
                                       tmp_path / "pf.json", tmp_path / "shard-0.npz")
    assert result.batch_size == 1 and result.candidates == []
    maps, ids, _ = load_shard(tmp_path / "shard-0.npz")
    assert ids == [] and maps.shape == (0, SIZE, SIZE)


def test_ground_truth_masks_follow_the_image_geometry_and_name_a_bad_file(tmp_path):
    import pandas as pd
    from PIL import Image

    from ferxai.explain.pipeline import ground_truth_masks

    big = np.zeros((64, 96), dtype=bool)
    big[16:48, 0:48] = True  # left half of a wide image: stretched to a square, still the left half
    Image.fromarray(big).save(tmp_path / "wide.png")
    rows = pd.DataFrame({"id": ["a", "b"], "mask": [str(tmp_path / "wide.png"), ""]})
    masks, has = ground_truth_masks(rows, 32, where="test.csv")
    assert has.tolist() == [True, False] and masks.shape == (2, 32, 32)
    assert masks[0, 8:24, :16].all() and not masks[0, :, 17:].any() and not masks[0, :7].any()
    assert not masks[1].any()
    none, none_has = ground_truth_masks(rows.drop(columns="mask"), 32, where="test.csv")
    assert not none.any() and not none_has.any()
    rows.loc[1, "mask"] = str(tmp_path / "missing.png")
    with pytest.raises(ValueError, match=r"test.csv: mask of image 'b' \(.*missing.png\)"):
        ground_truth_masks(rows, 32, where="test.csv")
