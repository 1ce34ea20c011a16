import warnings

import numpy as np
import pytest

from ferxai.explain.mean_images import mean_images
from ferxai.explain.store import (
    create_store,
    list_attributions,
    open_store,
    read_attributions,
    read_samples,
    read_strings,
    write_attributions,
)

zarr = pytest.importorskip("zarr")

CLASSES = ["angry", "happy", "sad"]
N, C, H, W = 5, 1, 12, 10
IDS = ["test/angry/1.png", "test/happy/ü 2.png", "3", "4", "5"]
SETS = ["high_confidence", "low_confidence;misclassified", "misclassified", "all", "x"]


def _store(tmp_path, images=None):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (N, C, H, W), dtype=np.uint8) if images is None else images
    labels = np.array([0, 1, 2, 0, 1])
    preds = np.array([0, 2, 2, 1, 1])
    probs = rng.dirichlet(np.ones(3), N).astype(np.float32)
    mean, class_means = mean_images(images, labels, 3)
    path = tmp_path / "store.zarr"
    create_store(path, images, labels, preds, probs, IDS, SETS, CLASSES, mean, class_means,
                 attrs={"experiment": "exp1"})
    return path, images, labels, preds, probs, mean, class_means


def test_store_round_trip(tmp_path):
    path, images, labels, preds, probs, mean, class_means = _store(tmp_path)
    maps = np.random.default_rng(1).normal(size=(N, H, W)).astype(np.float32)
    write_attributions(path, "clean", "integrated_gradients", maps,
                       {"signed": True, "library": "captum", "params": {"n_steps": np.int64(8)}})
    write_attributions(path, "gaussian-0.1", "gradcam", np.abs(maps), {"signed": False})
    # rewriting replaces
    write_attributions(path, "gaussian-0.1", "gradcam", 2 * np.abs(maps), {"signed": False})

    assert list_attributions(path) == [("clean", "integrated_gradients"), ("gaussian-0.1", "gradcam")]
    assert np.array_equal(read_attributions(path, "clean", "integrated_gradients"), maps)
    assert np.allclose(read_attributions(path, "gaussian-0.1", "gradcam"), 2 * np.abs(maps))
    assert read_strings(path, "ids") == IDS
    assert read_strings(path, "sets") == SETS
    samples = read_samples(path)
    assert samples["id"].tolist() == IDS and samples["label"].tolist() == labels.tolist()
    assert np.allclose(samples["prob_sad"], probs[:, 2])

    root = zarr.open_group(str(path), mode="r")  # plain zarr, no ferxai
    assert root.metadata.zarr_format == 3
    assert np.array_equal(root["images"][...], images) and root["images"].dtype == np.uint8
    assert root["images"].chunks == (1, C, H, W)
    assert np.array_equal(root["predictions"][...], preds)
    assert np.allclose(root["class_mean_images"][...], class_means, equal_nan=True)
    assert root.attrs["class_names"] == CLASSES and root.attrs["experiment"] == "exp1"
    arr = root["attributions/clean/integrated_gradients"]
    assert arr.dtype == np.float32 and arr.shape == (N, H, W)
    assert arr.metadata.dimension_names == ("sample", "y", "x")
    attrs = dict(arr.attrs)
    assert attrs["signed"] is True and attrs["library"] == "captum" and attrs["params"] == {"n_steps": 8}
    assert attrs["method"] == "integrated_gradients" and attrs["condition"] == "clean"
    assert "zarr" in attrs["versions"]

    with pytest.raises(KeyError, match="have: clean/integrated_gradients"):
        read_attributions(path, "clean", "lime")
    with pytest.raises(ValueError, match="expected"):
        write_attributions(path, "clean", "x", maps[:, :5], {})
    with pytest.raises(ValueError, match="zarr node"):
        write_attributions(path, "clean", "a/b", maps, {})
    with pytest.raises(FileNotFoundError):
        open_store(tmp_path / "nothing.zarr")


def test_store_float_images_and_empty(tmp_path):
    images = np.random.default_rng(0).random((N, C, H, W))
    path, *_ = _store(tmp_path, images=images)
    assert open_store(path)["images"].dtype == np.float32
    # an empty selection still makes a valid store
    empty = tmp_path / "empty.zarr"
    create_store(empty, np.zeros((0, 1, 4, 4), np.uint8), [], [], np.zeros((0, 3)), [], [], CLASSES,
                 np.zeros((1, 4, 4)), np.zeros((3, 1, 4, 4)))
    write_attributions(empty, "clean", "m", np.zeros((0, 4, 4)), {})
    assert read_attributions(empty, "clean", "m").shape == (0, 4, 4)
    assert read_strings(empty, "ids") == []


def test_store_reads_with_xarray(tmp_path):
    xr = pytest.importorskip("xarray")
    path, images, labels, *_ = _store(tmp_path)
    maps = np.ones((N, H, W), np.float32)
    write_attributions(path, "clean", "saliency", maps, {"signed": False})
    write_attributions(path, "clean", "gradcam", 2 * maps, {"signed": False})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. xarray's "no consolidated metadata" warning
        ds = xr.open_zarr(path)
        att = xr.open_zarr(path, group="attributions/clean")
    assert ds["images"].dims == ("sample", "channel", "y", "x")
    assert np.array_equal(ds["images"].values, images)
    assert ds["probabilities"].dims == ("sample", "class")
    assert [str(v) for v in ds["ids"].values] == IDS
    assert ds.attrs["class_names"] == CLASSES
    assert set(att.data_vars) == {"saliency", "gradcam"}
    assert att["gradcam"].dims == ("sample", "y", "x")
    assert float(att["gradcam"].sum()) == 2 * N * H * W
    assert att["gradcam"].attrs["signed"] is False
