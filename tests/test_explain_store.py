import json
import warnings

import numpy as np
import pytest

from ferxai.explain.store import (
    ShardError,
    create_store,
    gather_shards,
    list_attributions,
    load_shard,
    load_shard_arrays,
    mean_images,
    open_store,
    read_attributions,
    read_samples,
    read_strings,
    save_shard,
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


def test_mean_images():
    images = np.zeros((4, 1, 2, 2), np.uint8)
    images[0] = 255
    images[1] = 51
    labels = np.array([0, 0, 2, 2])
    mean, class_means = mean_images(images, labels, 4, batch_size=3)
    assert mean.dtype == np.float32 and mean.shape == (1, 2, 2)
    assert np.allclose(mean, (1.0 + 0.2) / 4)
    assert np.allclose(class_means[0], 0.6) and np.allclose(class_means[2], 0.0)
    assert np.isnan(class_means[1]).all() and np.isnan(class_means[3]).all()
    # float input is taken as [0, 1] already
    mean_f, _ = mean_images(images.astype(np.float32) / 255, labels, 4)
    assert np.allclose(mean_f, mean)
    with pytest.raises(ValueError, match="labels"):
        mean_images(images, np.array([0, 0, 5, 1]), 4)


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


def _write_shards(tmp_path, n=10, size=4, skip=(), **meta):
    maps = np.arange(n * 3 * 2, dtype=np.float32).reshape(n, 3, 2)
    ids = [f"dir/{i}.png" for i in range(n)]
    paths = []
    for k, start in enumerate(range(0, n, size)):
        if k in skip:
            continue
        stop = min(start + size, n)
        p = tmp_path / f"shard-{k}.npz"
        save_shard(p, maps[start:stop], ids[start:stop],
                   {"start": start, "total": n, "shard": k, "shard_size": size, "method": "m",
                    "condition": "clean", "seconds": 1.0 + k, **meta},
                   arrays={"targets": np.arange(start, stop) % 3})
        paths.append(p)
    return paths, maps, ids


def test_shard_round_trip_and_gather(tmp_path):
    paths, maps, ids = _write_shards(tmp_path)
    got_maps, got_ids, meta = load_shard(paths[1])
    assert np.array_equal(got_maps, maps[4:8]) and got_ids == ids[4:8]
    assert meta["start"] == 4 and meta["stop"] == 8 and meta["total"] == 10
    # given in any order
    all_maps, all_ids, meta = gather_shards(list(reversed(paths)), expected_ids=ids)
    assert np.array_equal(all_maps, maps) and all_ids == ids
    assert meta["method"] == "m" and meta["num_shards"] == 3
    assert "seconds" not in meta and [s["seconds"] for s in meta["shards"]] == [1.0, 2.0, 3.0]
    assert "start" not in meta
    # the gathered result is itself a shard file (start 0)
    out = tmp_path / "attributions.npz"
    save_shard(out, all_maps, all_ids, {**meta, "start": 0, "total": len(all_ids)})
    again, again_ids, _ = gather_shards([out])
    assert np.array_equal(again, maps) and again_ids == ids
    assert json.loads(json.dumps(meta))  # plain JSON
    # extra per-image arrays travel with the shards
    assert load_shard_arrays(paths[1])["targets"].tolist() == [1, 2, 0, 1]
    *_, arrays = gather_shards(paths, with_arrays=True)
    assert arrays["targets"].tolist() == (np.arange(10) % 3).tolist()
    with pytest.raises(ValueError, match="one row per image"):
        save_shard(tmp_path / "bad.npz", maps[:2], ids[:2], {"start": 0, "total": 2}, arrays={"t": [1]})


def test_gather_names_the_missing_shard(tmp_path):
    paths, _, _ = _write_shards(tmp_path, skip=(1,))
    with pytest.raises(ShardError, match=r"missing shard-1 \(images 4..7\)"):
        gather_shards(paths)
    paths, _, _ = _write_shards(tmp_path / "tail", skip=(2,))
    with pytest.raises(ShardError, match=r"missing shard-2 \(images 8..9\)"):
        gather_shards(paths)


def test_gather_errors(tmp_path):
    paths, _, ids = _write_shards(tmp_path)
    with pytest.raises(ShardError, match="overlap"):
        gather_shards(paths + [paths[0]])
    with pytest.raises(ShardError, match="image 0"):
        gather_shards(paths, expected_ids=["other"] + ids[1:])
    other, _, _ = _write_shards(tmp_path / "b", method="other")
    with pytest.raises(ShardError, match="disagree on 'method'"):
        gather_shards(paths[:2] + other[2:])
    with pytest.raises(ShardError, match="no shard files"):
        gather_shards([])
    with pytest.raises(ValueError, match="misses"):
        save_shard(tmp_path / "x.npz", np.zeros((1, 2, 2)), ["a"], {"total": 1})
    with pytest.raises(ValueError, match="does not fit"):
        save_shard(tmp_path / "x.npz", np.zeros((2, 2, 2)), ["a", "b"], {"start": 0, "total": 1})


def test_empty_selection_shard(tmp_path):
    p = tmp_path / "shard-0.npz"
    save_shard(p, np.zeros((0, 4, 4)), [], {"start": 0, "total": 0})
    maps, ids, _ = gather_shards([p])
    assert maps.shape == (0, 4, 4) and ids == []
