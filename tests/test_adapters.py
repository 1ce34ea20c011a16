"""Dataset adapters: every format to one manifest, with exact rows, labels, splits and rejects."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import REPO
from ferxai.classes import FER2013_CLASSES, FERPLUS_CLASSES
from ferxai.data.adapters import ADAPTERS, adapter_options, build_manifest
from ferxai.data.manifest import MANIFEST_COLUMNS, ManifestError, content_hash, to_frame, write_manifest

RNG = np.random.default_rng(1)


def save(path, array) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return array


def gray(h=6, w=6) -> np.ndarray:
    return RNG.integers(0, 256, (h, w), dtype=np.uint8)


def rgb(h=6, w=6) -> np.ndarray:
    return RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)


def by_id(result) -> dict[str, dict]:
    return {row["id"]: row for row in result.rows}


# --------------------------------------------------------------------------- registry


def test_registry_checks_format_and_options(tmp_path):
    assert set(ADAPTERS) == {"synthetic", "folder", "images", "fer2013_csv", "ferplus", "npz", "csv"}
    schema = yaml.safe_load(open(os.path.join(REPO, "config", "schema.yaml")))
    assert set(schema["definitions"]["dataset"]["properties"]["format"]["enum"]) == set(ADAPTERS)
    with pytest.raises(ManifestError, match=r"unknown dataset format 'jpeg_dir'; known formats: csv, fer2013_csv"):
        build_manifest("jpeg_dir", {})
    with pytest.raises(ManifestError, match=r"'folder': unknown option\(s\) \['rot'\]; valid options: root, classes"):
        build_manifest("folder", {"rot": "x"})
    with pytest.raises(ManifestError, match=r"'ferplus': missing required option\(s\) \['ferplus_csv'\]"):
        build_manifest("ferplus", {"fer2013_csv": "a.csv"})
    assert adapter_options("npz") == (["path"], ["classes"])


# --------------------------------------------------------------------------- folder


def make_ckplus(root):
    """CK+ Kaggle-pack-like tree with every awkward case the adapter must handle."""
    files = {
        "anger/S005_001_00000011.png": save(root / "anger/S005_001_00000011.png", gray()),
        "anger/deeper/S010_004_00000017.PNG": save(root / "anger/deeper/S010_004_00000017.PNG", gray()),
        "happy/S005_002_00000003.bmp": save(root / "happy/S005_002_00000003.bmp", rgb()),
        "happy/face.jpeg": save(root / "happy/face.jpeg", rgb(8, 5)),
        "sadness/S022_003_00000001.jpg": save(root / "sadness/S022_003_00000001.jpg", gray()),
    }
    (root / "happy/empty.png").write_bytes(b"")
    (root / "sadness/broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    save(root / "loose.png", gray())
    (root / "README.txt").write_text("about")
    (root / "happy/.DS_Store").write_bytes(b"junk")
    save(root / "__MACOSX/happy/._face.png", gray())
    return files


def test_folder_ckplus_layout(tmp_path):
    root = tmp_path / "ck"
    files = make_ckplus(root)
    result = build_manifest("folder", {"root": str(root)})
    assert result.classes == ["anger", "happy", "sadness"]
    rows = by_id(result)
    assert sorted(rows) == sorted(files)
    expect = {  # id: (label, subject, channels)
        "anger/S005_001_00000011.png": (0, "S005", 1),
        "anger/deeper/S010_004_00000017.PNG": (0, "S010", 1),
        "happy/S005_002_00000003.bmp": (1, "S005", 3),
        "happy/face.jpeg": (1, "", 3),
        "sadness/S022_003_00000001.jpg": (2, "S022", 1),
    }
    for rid, (label, subject, channels) in expect.items():
        row = rows[rid]
        assert (row["label"], row["subject"], row["channels"], row["source_split"]) == (label, subject, channels, "")
        assert row["label_name"] == result.classes[label]
        assert row["source"] == str(root / rid)
    assert (rows["happy/face.jpeg"]["width"], rows["happy/face.jpeg"]["height"]) == (5, 8)
    # Lossless formats hash to the pixels that were written.
    assert rows["anger/S005_001_00000011.png"]["content_hash"] == content_hash(files["anger/S005_001_00000011.png"])
    rejects = {r["source"]: (r["row"], r["reason"]) for r in result.rejects}
    assert rejects.pop(str(root / "happy/empty.png")) == ("", "empty file (0 bytes)")
    assert rejects.pop(str(root / "loose.png")) == ("", "image directly in root, not inside a class folder")
    row, reason = rejects.pop(str(root / "sadness/broken.jpg"))
    assert row == "" and reason.startswith("cannot decode image (") and not rejects
    dropped = {r["source"]: r["reason"] for r in result.dropped}
    assert dropped[str(root / "README.txt")].startswith("not an image file")
    assert dropped[str(root / "happy/.DS_Store")] == "hidden file"
    assert dropped[str(root / "__MACOSX")] == "hidden or archiver folder"
    assert list(to_frame(result).columns) == list(MANIFEST_COLUMNS)


def test_folder_split_layout_classes_and_patterns(tmp_path):
    root = tmp_path / "fer"
    for split in ("train", "Test", "valid"):
        save(root / split / "happy" / "a.png", gray())
        save(root / split / "sad" / "b.png", gray())
    save(root / "train" / "angry" / "c.png", gray())
    save(root / "train" / "x.png", gray())
    result = build_manifest("folder", {"root": str(root), "classes": ["sad", "happy"],
                                       "subject_pattern": r"^(?P<subject>[^/]+)/"})
    assert result.classes == ["sad", "happy"]
    rows = by_id(result)
    assert {rid: (r["source_split"], r["label"], r["subject"]) for rid, r in rows.items()} == {
        "Test/happy/a.png": ("test", 1, "Test"), "Test/sad/b.png": ("test", 0, "Test"),
        "train/happy/a.png": ("train", 1, "train"), "train/sad/b.png": ("train", 0, "train"),
        "valid/happy/a.png": ("val", 1, "valid"), "valid/sad/b.png": ("val", 0, "valid"),
    }
    assert {r["source"]: r["reason"] for r in result.rejects} == {
        str(root / "train/angry/c.png"): "class folder 'angry' is not in option 'classes' ['sad', 'happy']",
        str(root / "train/x.png"): "image directly in split folder 'train', not inside a class folder",
    }
    no_subjects = build_manifest("folder", {"root": str(root), "subject_pattern": None})
    assert no_subjects.classes == ["angry", "happy", "sad"]
    assert {r["subject"] for r in no_subjects.rows} == {""}


def test_folder_follows_symlinks_without_looping(tmp_path):
    outside = tmp_path / "outside"
    save(outside / "x.png", gray())
    root = tmp_path / "ds"
    save(root / "happy" / "a.png", gray())
    (root / "sad").symlink_to(outside, target_is_directory=True)
    (root / "happy" / "loop").symlink_to(root / "happy", target_is_directory=True)
    result = build_manifest("folder", {"root": str(root)})
    assert sorted(by_id(result)) == ["happy/a.png", "sad/x.png"]
    assert [(r["source"], r["reason"]) for r in result.dropped] == [
        (str(root / "happy" / "loop"), f"folder already read as {os.path.realpath(root / 'happy')}")]


def test_folder_errors(tmp_path):
    save(tmp_path / "mixed/train/happy/a.png", gray())
    save(tmp_path / "mixed/happy/b.png", gray())
    with pytest.raises(ManifestError, match=r"mix split names \['train'\] with other folders \['happy'\]"):
        build_manifest("folder", {"root": str(tmp_path / "mixed")})
    with pytest.raises(ManifestError, match="is not a directory"):
        build_manifest("folder", {"root": str(tmp_path / "nope")})
    with pytest.raises(ManifestError, match=r"option 'classes' must be a list of names, got 'happy'"):
        build_manifest("folder", {"root": str(tmp_path / "mixed"), "classes": "happy"})
    with pytest.raises(ManifestError, match=r"option 'classes' must be distinct, non-empty names"):
        build_manifest("npz", {"path": str(tmp_path / "x.npz"), "classes": ["a", "a"]})
    with pytest.raises(ManifestError, match=r"has no \(\?P<subject>...\) group"):
        build_manifest("folder", {"root": str(tmp_path / "mixed"), "subject_pattern": r"S\d+"})


def test_reject_budget_names_rejects_file(tmp_path):
    root = tmp_path / "ck"
    make_ckplus(root)
    result = build_manifest("folder", {"root": str(root)})
    rejects_path = tmp_path / "out" / "rejects.csv"
    kept = tmp_path / "logs" / "rejects.csv"
    with pytest.raises(ManifestError, match=rf"3 of 8 inputs rejected .*see {kept}\."):
        write_manifest(result, tmp_path / "out" / "manifest.csv", rejects_path, max_reject_fraction=0.1,
                       kept_rejects_path=kept)
    # Written before failing, for the user to inspect; the copy the message names outlives the job.
    for path in (rejects_path, kept):
        assert pd.read_csv(path)["counted"].sum() == 3
    with pytest.raises(ManifestError, match=rf"see {rejects_path}\."):
        write_manifest(result, tmp_path / "out" / "manifest.csv", rejects_path, max_reject_fraction=0.1)
    frame = write_manifest(result, tmp_path / "out" / "manifest.csv", rejects_path, max_reject_fraction=0.5)
    assert len(frame) == 5


def test_rejects_file_lists_dropped_inputs_outside_the_budget(tmp_path):
    """Files that are not images are left out by design: listed with their reason, not budgeted."""
    root = tmp_path / "ds"
    save(root / "happy" / "a.png", gray())
    save(root / "sad" / "b.png", gray())
    (root / "sad" / "notes.txt").write_text("taken on a Tuesday")
    (root / "happy" / "face.gif").write_bytes(b"GIF89a")
    result = build_manifest("folder", {"root": str(root)})
    rejects_path = tmp_path / "rejects.csv"
    frame = write_manifest(result, tmp_path / "manifest.csv", rejects_path, max_reject_fraction=0.0)
    assert sorted(frame["id"]) == ["happy/a.png", "sad/b.png"]
    listed = pd.read_csv(rejects_path, keep_default_na=False)
    assert list(listed.columns) == ["source", "row", "reason", "counted"]
    by_source = {r.source: (r.reason, r.counted) for r in listed.itertuples()}
    assert set(by_source) == {str(root / "sad" / "notes.txt"), str(root / "happy" / "face.gif")}
    for reason, counted in by_source.values():
        assert reason.startswith("not an image file (extension not in .png") and not counted


def test_ferplus_dropped_rows_are_listed_but_not_budgeted(tmp_path):
    fer, new = write_ferplus(tmp_path)
    result = build_manifest("ferplus", {"fer2013_csv": str(fer), "ferplus_csv": str(new)})
    rejects_path = tmp_path / "rejects.csv"
    # 1 reject (row 7) of 3 budgeted inputs; the 5 dropped rows would push it to 6 of 8.
    write_manifest(result, tmp_path / "manifest.csv", rejects_path, max_reject_fraction=0.34)
    listed = pd.read_csv(rejects_path)
    assert {int(r.row): bool(r.counted) for r in listed.itertuples()} == {
        7: True, 2: False, 3: False, 4: False, 5: False, 6: False}
    assert dict(zip(listed["row"], listed["reason"]))[4] == "unknown wins"
    with pytest.raises(ManifestError, match=r"1 of 3 inputs rejected \(33\.3% > max_reject_fraction 30\.0%\)"):
        write_manifest(result, tmp_path / "manifest.csv", rejects_path, max_reject_fraction=0.3)


# --------------------------------------------------------------------------- FER2013 CSV

FER_IMAGES = [RNG.integers(0, 256, 2304) for _ in range(9)]


def px(k: int) -> str:
    return " ".join(map(str, FER_IMAGES[k]))


def write_fer2013(path) -> None:
    bad_count = " ".join(px(0).split()[:2300])
    bad_int = " ".join(["3", "4.5"] + px(1).split()[2:])
    out_of_range = " ".join(["256"] + px(2).split()[1:])
    lines = [
        "emotion,pixels,Usage",
        f"3,{px(0)},Training",        # 1 good
        f"0,{px(1)},PublicTest",      # 2 good
        f"6,{px(2)},PrivateTest",     # 3 good
        f"1,{bad_count},Training",    # 4 wrong count
        f"2,{bad_int},Training",      # 5 non-integer pixel
        f"2,{out_of_range},Training", # 6 out of range
        f"7,{px(3)},Training",        # 7 unknown emotion
        f"4,{px(4)},Validation",      # 8 unknown Usage
        f"x,{bad_count},Training",    # 9 two problems
        f"5,{px(5)},Training",        # 10 good
    ]
    path.write_text("\n".join(lines) + "\n")


def test_fer2013_csv_rows_and_rejects(tmp_path):
    path = tmp_path / "fer2013.csv"
    write_fer2013(path)
    result = build_manifest("fer2013_csv", {"path": str(path)})
    assert result.classes == list(FER2013_CLASSES)
    got = [(r["id"], r["source"], r["label"], r["label_name"], r["source_split"]) for r in result.rows]
    assert got == [
        ("row01", f"{path}#row=1", 3, "happy", "train"),
        ("row02", f"{path}#row=2", 0, "angry", "val"),
        ("row03", f"{path}#row=3", 6, "neutral", "test"),
        ("row10", f"{path}#row=10", 5, "surprise", "train"),
    ]
    first = result.rows[0]
    assert (first["width"], first["height"], first["channels"], first["subject"]) == (48, 48, 1, "")
    assert first["content_hash"] == content_hash(FER_IMAGES[0].astype(np.uint8).reshape(48, 48))
    assert [(r["row"], r["reason"]) for r in result.rejects] == [
        (4, "expected 2304 pixel values, found 2300"),
        (5, "pixel 2 is '4.5', not an integer"),
        (6, "pixel 1 value 256 is outside 0-255"),
        (7, "emotion 7 is not a FER2013 class index (0-6)"),
        (8, "Usage 'Validation' is not one of Training, PublicTest, PrivateTest"),
        (9, "expected 2304 pixel values, found 2300; emotion 'x' is not an integer"),
    ]
    assert [r["source"] for r in result.rejects][0] == f"{path}#row=4"


def test_fer2013_csv_without_usage_and_missing_columns(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text(f"emotion,pixels\n3,{px(0)}\n")
    result = build_manifest("fer2013_csv", {"path": str(path)})
    assert [(r["label"], r["source_split"]) for r in result.rows] == [(3, "")]
    path.write_text(f"pixels\n{px(0)}\n")
    with pytest.raises(ManifestError, match=r"train\.csv: missing column\(s\) \['emotion'\]"):
        build_manifest("fer2013_csv", {"path": str(path)})
    with pytest.raises(ManifestError, match="absent.csv does not exist"):
        build_manifest("fer2013_csv", {"path": str(tmp_path / "absent.csv")})


# --------------------------------------------------------------------------- FER+

VOTE_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
VOTES = [  # neutral happiness surprise sadness anger disgust fear contempt unknown NF
    "Training,fer0000000.png,2,8,0,0,0,0,0,0,0,0",   # 1 clear majority: happiness
    "Training,fer0000001.png,4,3,3,0,0,0,0,0,0,0",   # 2 plurality only: neutral
    "Training,fer0000002.png,0,4,4,0,0,0,0,0,2,0",   # 3 tie happiness/surprise
    "Training,fer0000003.png,0,0,0,4,0,0,0,0,6,0",   # 4 unknown wins
    "PublicTest,,0,0,0,0,0,0,0,0,0,10",              # 5 NF wins (no emotion votes)
    "PublicTest,fer0000005.png,0,0,0,0,0,0,0,0,0,0", # 6 nobody voted
    "PrivateTest,fer0000006.png,0,x,0,0,0,0,0,0,0,0",# 7 bad vote
    "PrivateTest,fer0000007.png,0,0,0,0,4,0,0,6,0,0",# 8 contempt majority
]


def write_ferplus(tmp_path, votes=VOTES):
    fer = tmp_path / "fer2013.csv"
    usages = ["Training"] * 4 + ["PublicTest"] * 2 + ["PrivateTest"] * 2
    fer.write_text("emotion,pixels,Usage\n" + "".join(f"0,{px(k)},{u}\n" for k, u in enumerate(usages)))
    new = tmp_path / "fer2013new.csv"
    new.write_text(VOTE_HEADER + "\n" + "\n".join(votes) + "\n")
    return fer, new


@pytest.mark.parametrize("mode, expect_rows, expect_dropped", [
    ("majority", {1: "happiness", 8: "contempt"},
     {2: "no majority", 3: "no majority", 4: "unknown wins", 5: "NF wins", 6: "no votes"}),
    ("plurality", {1: "happiness", 2: "neutral", 3: "happiness", 8: "contempt"},
     {4: "unknown wins", 5: "NF wins", 6: "no votes"}),
    ("drop_ties", {1: "happiness", 2: "neutral", 8: "contempt"},
     {3: "tie", 4: "unknown wins", 5: "NF wins", 6: "no votes"}),
])
def test_ferplus_label_modes(tmp_path, mode, expect_rows, expect_dropped):
    fer, new = write_ferplus(tmp_path)
    result = build_manifest("ferplus", {"fer2013_csv": str(fer), "ferplus_csv": str(new), "label_mode": mode})
    assert result.classes == list(FERPLUS_CLASSES)
    assert {int(r["source"].split("=")[1]): r["label_name"] for r in result.rows} == expect_rows
    for r in result.rows:
        assert FERPLUS_CLASSES[r["label"]] == r["label_name"]
    assert {r["row"]: r["reason"] for r in result.dropped} == expect_dropped
    assert [(r["row"], r["reason"]) for r in result.rejects] == [
        (7, f"{new} vote 'happiness' is 'x', not a non-negative integer")]
    row8 = next(r for r in result.rows if r["id"] == "row8")
    assert (row8["source"], row8["source_split"]) == (f"{fer}#row=8", "test")


def test_ferplus_errors(tmp_path):
    fer, new = write_ferplus(tmp_path, VOTES[:-1])
    with pytest.raises(ManifestError, match=rf"{fer} has 8 data rows but {new} has 7"):
        build_manifest("ferplus", {"fer2013_csv": str(fer), "ferplus_csv": str(new)})
    with pytest.raises(ManifestError, match=r"'label_mode' must be one of"):
        build_manifest("ferplus", {"fer2013_csv": str(fer), "ferplus_csv": str(new), "label_mode": "mean"})
    new.write_text("Usage,neutral\nTraining,1\n")
    with pytest.raises(ManifestError, match=r"fer2013new\.csv: missing FER\+ column\(s\) \['happiness'"):
        build_manifest("ferplus", {"fer2013_csv": str(fer), "ferplus_csv": str(new)})


# --------------------------------------------------------------------------- npz


def test_npz_splits_labels_and_rejects(tmp_path):
    path = tmp_path / "medmnist.npz"
    train = RNG.integers(0, 256, (3, 4, 4, 3), dtype=np.uint8)
    val = RNG.integers(0, 256, (2, 4, 4), dtype=np.uint8)
    np.savez(path, train_images=train, train_labels=np.array([[0], [2], [1]]),
             val_images=val, val_labels=np.array([1, 5]),
             test_images=np.zeros((0, 4, 4), np.uint8), test_labels=np.zeros((0,), np.int64))
    result = build_manifest("npz", {"path": str(path), "classes": ["a", "b", "c", "d", "e", "f"]})
    assert result.classes == ["a", "b", "c", "d", "e", "f"]
    assert [(r["id"], r["source"], r["label"], r["label_name"], r["source_split"], r["channels"])
            for r in result.rows] == [
        ("train0", f"{path}#train_images[0]", 0, "a", "train", 3),
        ("train1", f"{path}#train_images[1]", 2, "c", "train", 3),
        ("train2", f"{path}#train_images[2]", 1, "b", "train", 3),
        ("val0", f"{path}#val_images[0]", 1, "b", "val", 1),
        ("val1", f"{path}#val_images[1]", 5, "f", "val", 1),
    ]
    assert result.rows[0]["content_hash"] == content_hash(train[0])
    assert not result.rejects
    default = build_manifest("npz", {"path": str(path)})
    assert default.classes == ["0", "1", "2", "3", "4", "5"] and not default.rejects
    np.savez(path, train_images=train, train_labels=np.array([0, -1, 1]))
    negative = build_manifest("npz", {"path": str(path), "classes": ["a", "b"]})
    assert [r["id"] for r in negative.rows] == ["train0", "train2"]
    assert negative.rejects == [{"source": f"{path}#train_images[1]", "row": "", "reason": "label -1 is negative"}]


@pytest.mark.parametrize("names", [8, 3])
def test_npz_class_list_must_match_the_labels(tmp_path, names):
    """A MedMNIST example's 8 names on a 4-class file would write 4 classes without images."""
    path = tmp_path / "retina.npz"
    labels = np.array([[0], [1], [2], [3], [1]])
    np.savez(path, train_images=RNG.integers(0, 256, (5, 4, 4, 3), dtype=np.uint8), train_labels=labels)
    classes = [f"c{k}" for k in range(names)]
    with pytest.raises(ManifestError, match=rf"npz dataset: option 'classes' has {names} names but the labels of "
                                            rf"{path} are 0-3 \(4 classes\)"):
        build_manifest("npz", {"path": str(path), "classes": classes})
    four = ["normal", "mild", "moderate", "severe"]
    result = build_manifest("npz", {"path": str(path), "classes": four})
    assert result.classes == four and [r["label_name"] for r in result.rows][-1] == "mild"


def test_npz_errors(tmp_path):
    path = tmp_path / "bad.npz"
    np.savez(path, train_images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ManifestError, match=r"bad\.npz: has array 'train_images' but no 'train_labels'"):
        build_manifest("npz", {"path": str(path)})
    np.savez(path, train_images=np.zeros((2, 4, 4), np.uint8), train_labels=np.zeros(3, np.int64))
    with pytest.raises(ManifestError, match=r"bad\.npz: array 'train_images' has 2 items but 'train_labels' has 3"):
        build_manifest("npz", {"path": str(path)})
    np.savez(path, images=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(ManifestError, match=r"bad\.npz: no <split>_images/<split>_labels arrays"):
        build_manifest("npz", {"path": str(path)})
    np.savez(path, test_images=np.zeros((2, 4, 4), np.uint8), test_labels=np.zeros((2, 3)))
    with pytest.raises(ManifestError, match=r"array 'test_labels': labels must have shape \(N,\) or \(N,1\)"):
        build_manifest("npz", {"path": str(path)})


# --------------------------------------------------------------------------- user CSV


def test_csv_manifest(tmp_path):
    meta = tmp_path / "meta"
    a = save(meta / "imgs" / "a.png", gray())
    save(meta / "imgs" / "b.jpg", rgb())
    elsewhere = save(tmp_path / "elsewhere" / "c.png", gray())
    (meta / "imgs" / "bad.png").write_bytes(b"nope")
    fer = tmp_path / "fer2013.csv"
    fer.write_text(f"emotion,pixels,Usage\n0,{px(0)},Training\n")
    lines = [
        "path,label,subject,split",
        "imgs/a.png,happy,S1,train",               # 1
        "imgs/b.jpg,sad,S2,Validation",            # 2
        f"{tmp_path / 'elsewhere' / 'c.png'},0,,", # 3 absolute path, integer label
        "imgs/missing.png,happy,S1,train",         # 4
        "imgs/a.png,sad,S1,test",                  # 5 repeated image
        "imgs/bad.png,sad,S3,test",                # 6 undecodable
        "imgs/b.jpg,contempt,S2,train",            # 7 unknown label
        ",happy,S1,train",                         # 8 empty path
        "imgs/a.png,happy,S1,holdout",             # 9 unknown split
        f"../{fer.name}#row=1,sad,,test",          # 10 reference into a pixel CSV
    ]
    path = meta / "labels.csv"
    path.write_text("\n".join(lines) + "\n")
    result = build_manifest("csv", {"path": str(path), "classes": ["happy", "sad"]})
    assert result.classes == ["happy", "sad"]
    assert [(r["id"], r["source"], r["label"], r["subject"], r["source_split"]) for r in result.rows] == [
        ("imgs/a.png", str(meta / "imgs/a.png"), 0, "S1", "train"),
        ("imgs/b.jpg", str(meta / "imgs/b.jpg"), 1, "S2", "val"),
        (str(tmp_path / "elsewhere/c.png"), str(tmp_path / "elsewhere/c.png"), 0, "", ""),
        (f"../{fer.name}#row=1", str(meta / f"../{fer.name}#row=1"), 1, "", "test"),
    ]
    assert result.rows[0]["content_hash"] == content_hash(a)
    assert result.rows[2]["content_hash"] == content_hash(elsewhere)
    assert (result.rows[3]["width"], result.rows[3]["channels"]) == (48, 1)
    got = [(r["row"], r["reason"]) for r in result.rejects]
    assert got[:3] == [(4, "file not found: imgs/missing.png"), (5, "same image as row 1"),
                       (6, got[2][1])]
    assert got[2][1].startswith("cannot load imgs/bad.png: ") and "cannot decode image" in got[2][1]
    assert got[3:] == [
        (7, "label 'contempt' is not in classes ['happy', 'sad']"),
        (8, "path is empty"),
        (9, "split 'holdout' is not one of train, training, val, valid, validation, test, testing (or empty)"),
    ]
    assert result.rejects[3]["source"] == str(meta / "imgs/b.jpg")


def test_csv_manifest_default_classes_and_missing_column(tmp_path):
    save(tmp_path / "a.png", gray())
    save(tmp_path / "b.png", gray())
    path = tmp_path / "m.csv"
    path.write_text("path,label\na.png,sad\nb.png,happy\n")
    result = build_manifest("csv", {"path": str(path)})
    assert result.classes == ["happy", "sad"] and [r["label"] for r in result.rows] == [1, 0]
    path.write_text("path,label\na.png,2\nb.png,0\n")
    result = build_manifest("csv", {"path": str(path)})
    assert result.classes == ["0", "1", "2"] and [r["label_name"] for r in result.rows] == ["2", "0"]
    path.write_text("file,label\na.png,2\n")
    with pytest.raises(ManifestError, match=r"m\.csv: missing required column 'path'"):
        build_manifest("csv", {"path": str(path)})


def test_folder_fingerprint_changes_when_an_image_is_added_or_rewritten(tmp_path):
    import os

    from ferxai.data.fingerprint import folder_fingerprint

    (tmp_path / "happy").mkdir()
    img = tmp_path / "happy" / "a.png"
    img.write_bytes(b"x")
    first = folder_fingerprint(tmp_path)
    assert first == folder_fingerprint(tmp_path) and len(first) == 16
    (tmp_path / "happy" / "b.png").write_bytes(b"y")
    second = folder_fingerprint(tmp_path)
    assert second != first
    os.utime(img, ns=(1, 1))
    assert folder_fingerprint(tmp_path) != second
    assert folder_fingerprint(tmp_path / "missing") == ""
