"""Ground-truth masks for a user's own images: option `masks` (folder, images), `mask_column` (csv)."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ferxai.data.adapters import build_manifest, run_manifest
from ferxai.data.fingerprint import input_files, source_fingerprint
from ferxai.data.manifest import ManifestError, read_manifest
from ferxai.data.options import FORMATS, MASK_OPTIONS, OptionError, provides_masks

RNG = np.random.default_rng(7)


def image(path, h=6, w=6, colour=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (h, w, 3) if colour else (h, w), dtype=np.uint8)).save(path)


def mask(path, h=6, w=6, box=(1, 3, 2, 5)) -> np.ndarray:
    """A mask PNG with foreground rows box[0]:box[1], columns box[2]:box[3]; returns it as bool."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fg = np.zeros((h, w), dtype=bool)
    fg[box[0]:box[1], box[2]:box[3]] = True
    Image.fromarray(fg.astype(np.uint8) * 255).save(path)
    return fg


def rejects_by_source(result) -> dict[str, str]:
    return {r["source"]: r["reason"] for r in result.rejects}


# --------------------------------------------------------------------------- folder / images


def make_masked_folder(tmp_path):
    root, masks = tmp_path / "faces", tmp_path / "faces_masks"
    image(root / "happy" / "a.png")
    image(root / "happy" / "deep" / "b.jpg", colour=True)
    image(root / "sad" / "c.png")          # no mask
    image(root / "sad" / "d.png")          # undecodable mask
    image(root / "sad" / "e.png")          # mask of another size
    image(root / "sad" / "f.png")          # two candidate masks
    (root / "sad" / "g.png").write_bytes(b"")  # broken image: rejected as an image, its mask ignored
    a = mask(masks / "happy" / "a.png")
    b = mask(masks / "happy" / "deep" / "b.PNG", box=(0, 6, 0, 1))  # another extension, any case
    (masks / "sad").mkdir(parents=True)
    (masks / "sad" / "d.png").write_bytes(b"\x89PNG not really")
    mask(masks / "sad" / "e.png", h=4)
    mask(masks / "sad" / "f.png")
    mask(masks / "sad" / "f.bmp")
    mask(masks / "sad" / "g.png")
    mask(masks / "angry" / "z.png")         # matches no image
    (masks / "happy" / "a.tif").write_bytes(b"not an accepted extension")
    return root, masks, a, b


def test_folder_masks_give_each_image_its_mask_or_nothing(tmp_path):
    root, masks, a, b = make_masked_folder(tmp_path)
    result = build_manifest("folder", {"root": str(root), "masks": str(masks)})
    got = {row["id"]: row["mask"] for row in result.rows}
    assert got == {
        "happy/a.png": str(masks / "happy/a.png"),
        "happy/deep/b.jpg": str(masks / "happy/deep/b.PNG"),
        "sad/c.png": "", "sad/d.png": "", "sad/e.png": "", "sad/f.png": "",
    }
    rejects = rejects_by_source(result)
    assert rejects.pop(str(root / "sad/g.png")) == "empty file (0 bytes)"
    reason = rejects.pop(str(masks / "sad/d.png"))
    assert reason.startswith("mask of image 'sad/d.png': cannot decode image (")
    assert reason.endswith("; the image is kept without a mask")
    assert rejects.pop(str(masks / "sad/e.png")) == (
        "mask of image 'sad/e.png': is 6x4 pixels but its image is 6x6; the image is kept without a mask")
    assert rejects.pop(str(masks / "sad/f.bmp")) == (
        "several masks for image 'sad/f.png': ['sad/f.bmp', 'sad/f.png']; the image is kept without a mask")
    assert not rejects
    dropped = {r["source"]: r["reason"] for r in result.dropped}
    assert dropped[str(masks / "angry/z.png")].startswith("mask file matches no image")
    assert dropped[str(masks / "happy/a.tif")].startswith("not an image file")
    assert str(masks / "sad/g.png") not in dropped  # its image exists, only it is broken


def test_folder_masks_reach_the_manifest_rejects_file_and_the_explain_stage(tmp_path):
    root, masks, a, b = make_masked_folder(tmp_path)
    out = tmp_path / "out"
    run_manifest("folder", {"root": str(root), "masks": str(masks)}, out / "manifest.csv", out / "rejects.csv",
                 max_reject_fraction=1.0)
    rejects = pd.read_csv(out / "rejects.csv", keep_default_na=False)
    bad = rejects[rejects["source"] == str(masks / "sad/e.png")]
    assert len(bad) == 1 and bad["reason"].iloc[0].startswith("mask of image 'sad/e.png': is 6x4 pixels")
    assert bool(bad["counted"].iloc[0])
    frame = read_manifest(out / "manifest.csv").set_index("id", drop=False)
    assert frame.loc["sad/c.png", "mask"] == "" and frame.loc["happy/a.png", "mask"] == str(masks / "happy/a.png")

    from ferxai.explain.pipeline import ground_truth_masks

    got, has = ground_truth_masks(frame.loc[["happy/a.png", "happy/deep/b.jpg", "sad/c.png"]], 6, where="test")
    assert has.tolist() == [True, True, False]
    assert np.array_equal(got[0], a) and np.array_equal(got[1], b) and not got[2].any()


def test_folder_masks_follow_a_split_layout(tmp_path):
    root, masks = tmp_path / "fer", tmp_path / "masks"
    image(root / "train" / "happy" / "a.png")
    image(root / "test" / "happy" / "a.png")
    mask(masks / "test" / "happy" / "a.png")
    result = build_manifest("folder", {"root": str(root), "masks": str(masks)})
    assert {r["id"]: r["mask"] for r in result.rows} == {"test/happy/a.png": str(masks / "test/happy/a.png"),
                                                         "train/happy/a.png": ""}
    assert not result.rejects and not result.dropped


def test_folder_without_masks_has_no_mask_column(tmp_path):
    image(tmp_path / "faces" / "happy" / "a.png")
    mask(tmp_path / "faces_masks" / "happy" / "a.png")
    assert "mask" not in build_manifest("folder", {"root": str(tmp_path / "faces")}).rows[0]


def test_images_format_takes_masks_too(tmp_path):
    root, masks = tmp_path / "photos", tmp_path / "masks"
    image(root / "x" / "one.png", h=5, w=7)
    image(root / "two.jpg", colour=True)
    mask(masks / "x" / "one.png", h=5, w=7)
    result = build_manifest("images", {"root": str(root), "classes": ["a", "b"], "masks": str(masks)})
    assert {r["id"]: r["mask"] for r in result.rows} == {"x/one.png": str(masks / "x/one.png"), "two.jpg": ""}


def test_bad_masks_option_values(tmp_path):
    root = tmp_path / "faces"
    image(root / "happy" / "a.png")
    with pytest.raises(ManifestError, match=r"folder dataset: masks '.*nope' is not a directory"):
        build_manifest("folder", {"root": str(root), "masks": str(tmp_path / "nope")})
    with pytest.raises(OptionError, match=r"folder .*nope does not exist") as info:  # the workflow's DAG-time check
        input_files("folder", {"root": str(root), "masks": str(tmp_path / "nope")})
    assert info.value.key == "masks"
    (root / "masks").mkdir()
    for inside, outside in ((root / "masks", root), (root, tmp_path)):
        with pytest.raises(ManifestError, match=r"must be separate folders, neither inside the other"):
            build_manifest("folder", {"root": str(outside), "masks": str(inside)})
    with pytest.raises(ManifestError, match=r"images dataset: masks .* is not a directory"):
        build_manifest("images", {"root": str(root), "classes": ["a"], "masks": str(tmp_path / "nope")})


# --------------------------------------------------------------------------- csv


def test_csv_mask_column(tmp_path):
    meta = tmp_path / "meta"
    for name in "abcdef":
        image(meta / "imgs" / f"{name}.png")
    a = mask(meta / "masks" / "a.png")
    elsewhere = mask(tmp_path / "elsewhere" / "f.png", box=(0, 2, 0, 6))
    (meta / "masks" / "d.png").write_bytes(b"garbage")
    mask(meta / "masks" / "e.png", w=5)
    lines = [
        "path,label, mask ",
        "imgs/a.png,happy,masks/a.png",                   # 1
        "imgs/b.png,sad,",                                # 2 no mask
        "imgs/c.png,sad,masks/c.png",                     # 3 mask missing
        "imgs/d.png,happy,masks/d.png",                   # 4 undecodable
        "imgs/e.png,happy,masks/e.png",                   # 5 another size
        f"imgs/f.png,sad,{tmp_path / 'elsewhere' / 'f.png'}",  # 6 absolute
        "imgs/missing.png,sad,masks/a.png",               # 7 image missing: a reject, as before
    ]
    listing = meta / "labels.csv"
    listing.write_text("\n".join(lines) + "\n")
    result = build_manifest("csv", {"path": str(listing), "mask_column": " mask"})
    assert [(r["id"], r["mask"]) for r in result.rows] == [
        ("imgs/a.png", str(meta / "masks/a.png")), ("imgs/b.png", ""), ("imgs/c.png", ""), ("imgs/d.png", ""),
        ("imgs/e.png", ""), ("imgs/f.png", str(tmp_path / "elsewhere/f.png")),
    ]
    kept = "; the image is kept without a mask"
    got = [(r["source"], r["row"], r["reason"]) for r in result.rejects]
    assert got[0] == (str(meta / "masks/c.png"), 3, f"mask of image 'imgs/c.png': file not found{kept}")
    assert got[1][:2] == (str(meta / "masks/d.png"), 4) and "cannot decode image" in got[1][2]
    assert got[2] == (str(meta / "masks/e.png"), 5,
                      f"mask of image 'imgs/e.png': is 5x6 pixels but its image is 6x6{kept}")
    assert got[3][1:] == (7, "file not found: imgs/missing.png") and len(got) == 4
    from ferxai.data.synthetic import load_mask

    assert np.array_equal(load_mask(result.rows[0]["mask"]), a)
    assert np.array_equal(load_mask(result.rows[5]["mask"]), elsewhere)


def test_csv_mask_column_must_exist_and_is_optional(tmp_path):
    image(tmp_path / "a.png")
    listing = tmp_path / "m.csv"
    listing.write_text("path,label\na.png,sad\n")
    with pytest.raises(ManifestError, match=r"m\.csv: has no column 'mask', which option 'mask_column' names"):
        build_manifest("csv", {"path": str(listing), "mask_column": "mask"})
    assert "mask" not in build_manifest("csv", {"path": str(listing)}).rows[0]


# --------------------------------------------------------------------------- from the config alone


@pytest.mark.parametrize("fmt, options, expected", [
    ("synthetic", {}, True),
    ("folder", {"root": "d"}, False),
    ("folder", {"root": "d", "masks": "m"}, True),
    ("folder", {"root": "d", "masks": None}, False),
    ("folder", {"root": "d", "masks": ""}, False),
    ("images", {"root": "d", "classes": ["a"], "masks": "m"}, True),
    ("csv", {"path": "x.csv"}, False),
    ("csv", {"path": "x.csv", "mask_column": "mask"}, True),
    ("csv", {"path": "x.csv", "masks": "m"}, False),  # not a csv option
    ("npz", {"path": "x.npz"}, False),
    ("fer2013_csv", {"path": "x.csv"}, False),
    ("ferplus", {"fer2013_csv": "a.csv", "ferplus_csv": "b.csv"}, False),
    ("no_such_format", {"masks": "m"}, False),
])
def test_provides_masks(fmt, options, expected):
    assert provides_masks(fmt, options) is expected


def test_every_mask_option_is_declared():
    for fmt, name in MASK_OPTIONS.items():
        assert name in [opt.name for opt in FORMATS[fmt]], (fmt, name)


# --------------------------------------------------------------------------- reruns


def test_adding_or_changing_a_mask_changes_the_fingerprint(tmp_path):
    root, masks = tmp_path / "faces", tmp_path / "masks"
    image(root / "happy" / "a.png")
    image(root / "happy" / "b.png")
    mask(masks / "happy" / "a.png")
    options = {"root": str(root), "masks": str(masks)}
    first = source_fingerprint("folder", options)
    assert "masks=" in first and first != source_fingerprint("folder", {"root": str(root)})
    mask(masks / "happy" / "b.png")  # a mask is added
    added = source_fingerprint("folder", options)
    assert added != first
    mask(masks / "happy" / "b.png", box=(0, 6, 0, 6))  # ... and redrawn (an mtime apart: stat granularity)
    os.utime(masks / "happy" / "b.png", ns=(1, 1))
    assert source_fingerprint("folder", options) != added

    listing = tmp_path / "labels.csv"
    listing.write_text("path,label,mask\nfaces/happy/a.png,happy,masks/happy/a.png\n"
                       "faces/happy/b.png,happy,masks/happy/c.png\n")
    csv_options = {"path": str(listing), "mask_column": "mask"}
    without = source_fingerprint("csv", {"path": str(listing)})
    assert without.startswith("listed=") and "masks=" not in without  # unchanged without the option
    first = source_fingerprint("csv", csv_options)
    assert first.startswith(without + ";masks=")
    mask(masks / "happy" / "c.png")  # the listed, missing mask appears
    added = source_fingerprint("csv", csv_options)
    assert added != first
    mask(masks / "happy" / "a.png", box=(0, 1, 0, 1))  # a listed mask is redrawn
    os.utime(masks / "happy" / "a.png", ns=(2, 2))
    assert source_fingerprint("csv", csv_options) != added
