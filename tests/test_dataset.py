"""ferxai.data.dataset: split files to uint8 arrays, and the in-memory torch Dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from ferxai.data.adapters import build_manifest
from ferxai.data.dataset import TensorImageDataset, load_split_arrays
from ferxai.data.manifest import write_manifest

RNG = np.random.default_rng(2)


@pytest.fixture()
def manifest_csv(tmp_path):
    """A folder-dataset manifest: a 48x48 gray PNG and a 30x20 RGB PNG."""
    images = {
        "happy/a.png": RNG.integers(0, 256, (48, 48), dtype=np.uint8),
        "sad/b.png": RNG.integers(0, 256, (20, 30, 3), dtype=np.uint8),
    }
    for rel, array in images.items():
        (tmp_path / "ds" / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(tmp_path / "ds" / rel)
    result = build_manifest("folder", {"root": str(tmp_path / "ds")})
    path = tmp_path / "manifest.csv"
    write_manifest(result, path, tmp_path / "rejects.csv", max_reject_fraction=0.0)
    return path, images


def test_load_split_arrays_from_csv(manifest_csv):
    path, images = manifest_csv
    x, y, ids = load_split_arrays(path, 48, 1)
    assert x.shape == (2, 1, 48, 48) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [0, 1]
    assert ids == ["happy/a.png", "sad/b.png"]
    assert np.array_equal(x[0, 0], images["happy/a.png"])  # right size and gray: untouched
    x3, _, _ = load_split_arrays(path, 32, 3)
    assert x3.shape == (2, 3, 32, 32)
    assert (x3[0, 0] == x3[0, 2]).all()                   # gray repeated into RGB


def test_load_split_arrays_from_frame_and_errors(manifest_csv, tmp_path):
    path, _ = manifest_csv
    frame = pd.read_csv(path, keep_default_na=False)[["id", "source", "label"]].iloc[::-1]
    x, y, ids = load_split_arrays(frame, 16, 1)
    assert ids == ["sad/b.png", "happy/a.png"] and y.tolist() == [1, 0] and x.shape == (2, 1, 16, 16)
    with pytest.raises(ValueError, match=r"missing columns \['label'\]"):
        load_split_arrays(frame.drop(columns="label"), 16, 1)
    bad = frame.assign(label=["1", "two"])
    with pytest.raises(ValueError, match=r"image 'happy/a.png' has a non-integer label"):
        load_split_arrays(bad, 16, 1)
    empty = tmp_path / "empty.csv"
    frame.iloc[:0].to_csv(empty, index=False)
    x, y, ids = load_split_arrays(empty, 16, 3)
    assert x.shape == (0, 3, 16, 16) and len(y) == 0 and ids == []


def test_tensor_image_dataset():
    images = RNG.integers(0, 256, (5, 1, 4, 4), dtype=np.uint8)
    labels = np.array([0, 1, 2, 1, 0])
    ds = TensorImageDataset(images, labels)
    x, y = ds[3]
    assert len(ds) == 5 and x.dtype == torch.float32 and y.dtype == torch.int64 and int(y) == 1
    assert torch.allclose(x, torch.from_numpy(images[3]).float() / 255)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    x[0, 0, 0] = 5.0  # the item is a fresh tensor: editing it leaves the stored uint8 alone
    assert ds.images[3, 0, 0, 0] == images[3, 0, 0, 0]
    flipped = TensorImageDataset(images, labels, transform=lambda t: t.flip(-1))
    assert torch.equal(flipped[2][0], ds[2][0].flip(-1))
    batch_x, batch_y = next(iter(DataLoader(ds, batch_size=4)))
    assert batch_x.shape == (4, 1, 4, 4) and batch_y.tolist() == [0, 1, 2, 1]


def test_tensor_image_dataset_rejects_bad_inputs():
    with pytest.raises(ValueError, match="uint8 N x C x H x W"):
        TensorImageDataset(np.zeros((2, 4, 4), np.uint8), np.zeros(2))
    with pytest.raises(ValueError, match="uint8 N x C x H x W"):
        TensorImageDataset(np.zeros((2, 1, 4, 4), np.float32), np.zeros(2))
    with pytest.raises(ValueError, match="one per image"):
        TensorImageDataset(np.zeros((2, 1, 4, 4), np.uint8), np.zeros(3))
