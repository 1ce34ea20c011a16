"""The embedded synthetic dataset: determinism, geometry, masks, config checks, adapter, grid plot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ferxai.classes import FER2013_CLASSES
from ferxai.data.adapters.synthetic import read_synthetic
from ferxai.data.manifest import MANIFEST_COLUMNS, content_hash, to_frame
from ferxai.data.synthetic import (
    SyntheticConfig,
    generate,
    load_mask,
    render_face,
    render_sample,
)
from ferxai.plots.samples import plot_sample_grid

N_CLASSES = len(FER2013_CLASSES)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _index(root: Path) -> list[dict[str, str]]:
    with open(root / "index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def _dilate(mask: np.ndarray, r: int = 1) -> np.ndarray:
    padded = np.pad(mask, r)
    out = np.zeros_like(mask)
    h, w = mask.shape
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def test_generation_is_byte_identical_and_prefix_stable(tmp_path: Path) -> None:
    opts = {"n_per_class": 3, "size": 32, "seed": 5}
    generate(tmp_path / "a", opts)
    generate(tmp_path / "b", SyntheticConfig(**opts))
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 2 * 3 * N_CLASSES + 1
    assert a == b

    generate(tmp_path / "big", {**opts, "n_per_class": 5})
    big = _files(tmp_path / "big")
    assert len(big) == 2 * 5 * N_CLASSES + 1
    for rel, data in a.items():
        if rel != "index.csv":
            assert big[rel] == data, rel
    assert _index(tmp_path / "big")[:3] == _index(tmp_path / "a")[:3]

    generate(tmp_path / "other", {**opts, "seed": 6})
    other = _files(tmp_path / "other")
    assert other["images/happy/happy_00000.png"] != a["images/happy/happy_00000.png"]


def test_index_lists_relative_paths_that_exist(tmp_path: Path) -> None:
    generate(tmp_path, {"n_per_class": 2, "size": 32})
    rows = _index(tmp_path)
    assert list(rows[0]) == ["id", "image", "mask", "label", "label_name"]
    assert [r["label_name"] for r in rows] == [c for c in FER2013_CLASSES for _ in range(2)]
    for r in rows:
        assert FER2013_CLASSES[int(r["label"])] == r["label_name"]
        assert r["image"] == f"images/{r['label_name']}/{r['id']}.png"
        assert (tmp_path / r["image"]).is_file() and (tmp_path / r["mask"]).is_file()
        img = np.asarray(Image.open(tmp_path / r["image"]))
        assert img.dtype == np.uint8 and img.shape == (32, 32)
        assert load_mask(tmp_path / r["mask"]).shape == (32, 32)
    # What is written is exactly what render_sample returns.
    cfg = SyntheticConfig(n_per_class=2, size=32)
    img, mask = render_sample(cfg, 3, 1)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "images/happy/happy_00001.png")), img)
    assert np.array_equal(load_mask(tmp_path / "masks/happy/happy_00001.png"), mask)


@pytest.mark.parametrize("size", [32, 48, 64])
def test_shapes_dtypes_and_mask_placement(size: int) -> None:
    cfg = SyntheticConfig(size=size)
    centre = (size - 1) / 2
    for label in range(N_CLASSES):
        for i in range(4):
            img, mask = render_sample(cfg, label, i)
            assert img.shape == (size, size) and img.dtype == np.uint8
            assert mask.shape == (size, size) and mask.dtype == bool
            assert mask.sum() >= 0.01 * size * size
            # Features stay clear of the border and around the face centre despite the jitter.
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
            ys, xs = np.nonzero(mask)
            assert abs(ys.mean() - centre) < 0.2 * size and abs(xs.mean() - centre) < 0.2 * size
            assert img.std() > 10  # not blank


@pytest.mark.parametrize("size", [32, 48])
def test_masks_lie_on_the_face(size: int) -> None:
    # At nuisance 0 the face is the centred ellipse of half-width 0.38*size, aspect 1.22.
    cfg = SyntheticConfig(size=size, nuisance=0.0)
    c = np.arange(size) + 0.5 - size / 2
    y, x = np.meshgrid(c, c, indexing="ij")
    face = (x / (0.38 * size)) ** 2 + (y / (0.38 * size * 1.22)) ** 2 <= 1
    for label in range(N_CLASSES):
        img, mask = render_sample(cfg, label, 0)
        assert (mask & face).sum() >= 0.99 * mask.sum()
        # Features are drawn darker than the face around them.
        assert img[mask].mean() < img[face & ~_dilate(mask, 2)].mean() - 30


def test_classes_differ_only_inside_their_masks() -> None:
    cfg = SyntheticConfig(size=48, nuisance=0.0)
    renders = [[render_sample(cfg, label, i) for i in range(5)] for label in range(N_CLASSES)]
    imgs = np.array([[r[0] for r in row] for row in renders], dtype=float)
    masks = np.array([[r[1] for r in row] for row in renders])
    # Outside all features (plus their one-pixel anti-aliased rim) every image is the same.
    outside = ~_dilate(masks.any(axis=(0, 1)), 1)
    assert outside.mean() > 0.75
    assert np.all(imgs[..., outside] == imgs[0, 0][outside])
    means = imgs.mean(axis=1)
    for a in range(N_CLASSES):
        for b in range(a + 1, N_CLASSES):
            region = masks[a].any(axis=0) | masks[b].any(axis=0)
            diff = np.abs(means[a] - means[b])[region].mean()
            assert diff > 15, (FER2013_CLASSES[a], FER2013_CLASSES[b], diff)


def test_nuisance_varies_images_within_a_class() -> None:
    clean = SyntheticConfig(size=48, nuisance=0.0)
    noisy = SyntheticConfig(size=48, nuisance=1.0)
    # Clean: only the expression strength varies, so pixels away from the features agree.
    a0, m0 = render_sample(clean, 6, 0)
    b0, n0 = render_sample(clean, 6, 1)
    far = ~_dilate(m0 | n0, 2)
    assert np.array_equal(a0[far], b0[far])
    a1, _ = render_sample(noisy, 6, 0)
    b1, _ = render_sample(noisy, 6, 1)
    assert np.abs(a1.astype(int) - b1.astype(int))[far].mean() > 10


def test_occluders_hide_part_of_the_mask() -> None:
    shrunk = 0
    for i in range(12):
        img_free, mask_free = render_face(np.random.default_rng([1, 4, i]), 4, 48, 1.0, occluder_prob=0.0)
        img_occ, mask_occ = render_face(np.random.default_rng([1, 4, i]), 4, 48, 1.0, occluder_prob=1.0)
        assert not (mask_occ & ~mask_free).any()
        assert mask_occ.sum() >= 0.6 * mask_free.sum()  # an occluder never hides most features
        shrunk += mask_occ.sum() < mask_free.sum()
        assert not np.array_equal(img_free, img_occ) or np.array_equal(mask_free, mask_occ)
    assert shrunk >= 2


def test_imbalanced_counts_and_stale_files(tmp_path: Path) -> None:
    counts = {"angry": 3, "disgust": 0, "fear": 1, "happy": 2, "sad": 1, "surprise": 1, "neutral": 4}
    generate(tmp_path, {"n_per_class": counts, "size": 32})
    rows = _index(tmp_path)
    assert {c: sum(r["label_name"] == c for r in rows) for c in FER2013_CLASSES} == counts
    assert len(list((tmp_path / "images" / "neutral").glob("*.png"))) == 4
    assert not list((tmp_path / "images" / "disgust").glob("*.png"))

    generate(tmp_path, {"n_per_class": {**counts, "neutral": 1}, "size": 32})
    assert sorted(p.name for p in (tmp_path / "images" / "neutral").glob("*.png")) == ["neutral_00000.png"]
    assert sorted(p.name for p in (tmp_path / "masks" / "neutral").glob("*.png")) == ["neutral_00000.png"]


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_per_clas": 3}, "n_per_clas"),
        ({"size": 48, "colour": True}, "colour"),
        ({"size": 8}, "size"),
        ({"size": 48.5}, "size"),
        ({"seed": -1}, "seed"),
        ({"nuisance": -0.5}, "nuisance"),
        ({"occluder_prob": 1.5}, "occluder_prob"),
        ({"n_per_class": -1}, "n_per_class"),
        ({"n_per_class": {"angry": 2}}, "disgust"),
        ({"n_per_class": {c: 1 for c in (*FER2013_CLASSES, "contempt")}}, "contempt"),
    ],
)
def test_bad_config_is_rejected_naming_the_problem(options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SyntheticConfig.from_dict(options)


def test_config_defaults_and_roundtrip() -> None:
    cfg = SyntheticConfig.from_dict(None)
    assert (cfg.size, cfg.seed, cfg.nuisance, cfg.n_per_class) == (48, 0, 1.0, 300)
    assert cfg.counts() == {c: 300 for c in FER2013_CLASSES}
    assert SyntheticConfig.from_dict(cfg.to_dict()) == cfg


def test_read_synthetic_rows_and_rejects(tmp_path: Path) -> None:
    generate(tmp_path, {"n_per_class": 2, "size": 32})
    corrupt = tmp_path / "images" / "sad" / "sad_00001.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    missing = tmp_path / "images" / "angry" / "angry_00000.png"
    missing.unlink()
    result = read_synthetic(tmp_path)

    assert result.classes == list(FER2013_CLASSES)
    assert len(result.rows) == 2 * N_CLASSES - 2
    rejects = {r["source"]: r for r in result.rejects}
    assert set(rejects) == {str(corrupt), str(missing)}
    # index.csv data rows, 1-based: angry_00000 is the first, sad_00001 the tenth.
    assert (rejects[str(missing)]["row"], rejects[str(corrupt)]["row"]) == (1, 10)
    assert all("unreadable" in r["reason"] for r in result.rejects)

    df = to_frame(result)
    assert list(df.columns) == [*MANIFEST_COLUMNS, "mask"]
    assert df["id"].is_unique
    for row in result.rows:
        pixels = np.asarray(Image.open(row["source"]))
        assert row["content_hash"] == content_hash(pixels)
        assert (row["width"], row["height"], row["channels"]) == (32, 32, 1)
        assert FER2013_CLASSES[row["label"]] == row["label_name"]
        assert Path(row["mask"]).is_file() and Path(row["mask"]).name == Path(row["source"]).name
        assert row["subject"] == "" and row["source_split"] == ""
    # Different images hash differently.
    assert df["content_hash"].is_unique


def test_read_synthetic_without_index_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="index.csv"):
        read_synthetic(tmp_path)


def test_plot_sample_grid_draws_rows_and_mask_outlines(tmp_path: Path) -> None:
    cfg = SyntheticConfig(size=32)
    images, masks, labels = [], [], []
    for label in range(N_CLASSES):
        for i in range(2):
            img, mask = render_sample(cfg, label, i)
            images.append(img)
            masks.append(mask)
            labels.append(label)
    fig = plot_sample_grid(images, labels, FER2013_CLASSES, masks=masks, per_class=3)
    assert len(fig.axes) == N_CLASSES * 3
    assert [fig.axes[r * 3].get_ylabel().split("\n")[0] for r in range(N_CLASSES)] == list(FER2013_CLASSES)
    assert len(fig.axes[0].images) == 1 and fig.axes[0].collections  # image plus contour
    assert not fig.axes[2].images  # only two samples per class: third column stays empty
    plain = plot_sample_grid(images, labels, FER2013_CLASSES, per_class=2)
    assert not plain.axes[0].collections
    fig.savefig(tmp_path / "grid.png", dpi=60)
    assert (tmp_path / "grid.png").stat().st_size > 1000
