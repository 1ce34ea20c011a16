"""make_splits / write_splits on small synthetic manifests shaped like FER2013, CK+ and friends."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from ferxai.data.manifest import MANIFEST_COLUMNS, read_manifest
from ferxai.data.splits import SplitError, SplitResult, SplitWarning, make_splits, write_splits

SPLIT_NAMES = ("train", "val", "test")


def manifest(labels, subjects=None, source_split=None, hashes=None) -> pd.DataFrame:
    n = len(labels)
    return pd.DataFrame({
        "id": [f"img{i:05d}" for i in range(n)],
        "source": [f"/data/{i}.png" for i in range(n)],
        "label": np.asarray(labels, dtype=int),
        "label_name": [f"class{int(x)}" for x in labels],
        "subject": subjects if subjects is not None else [""] * n,
        "source_split": source_split if source_split is not None else [""] * n,
        "width": 48, "height": 48, "channels": 1,
        "content_hash": hashes if hashes is not None else [f"hash{i}" for i in range(n)],
    })


def ids(frame: pd.DataFrame) -> set[str]:
    return set(frame["id"])


def counts(result: SplitResult) -> pd.DataFrame:
    return result.summary.set_index("label_name").drop("total")


def ck_like(n_subjects: int = 30, seed: int = 7) -> pd.DataFrame:
    """Each subject posed 1-3 of 7 expressions, 2-7 frames each: labels are clustered by subject."""
    rng = np.random.default_rng(seed)
    labels, subjects = [], []
    for s in range(n_subjects):
        for c in rng.choice(7, size=rng.integers(1, 4), replace=False):
            k = int(rng.integers(2, 8))
            labels += [int(c)] * k
            subjects += [f"S{s:03d}"] * k
    return manifest(labels, subjects=subjects)


def quiet(*args, **kwargs) -> SplitResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SplitWarning)
        return make_splits(*args, **kwargs)


# --- proportions, partition, determinism -------------------------------------------------------

def test_stratified_counts_per_class_within_one_of_target() -> None:
    sizes = [500, 60, 300, 900, 41, 17, 250]
    df = manifest(np.repeat(np.arange(7), sizes))
    r = make_splits(df, val_fraction=0.1, test_fraction=0.2, seed=3)
    # A partition of the manifest, original order kept, same columns.
    assert sorted(ids(r.train) | ids(r.val) | ids(r.test)) == sorted(df["id"])
    assert len(r.train) + len(r.val) + len(r.test) == len(df)
    for part in (r.train, r.val, r.test):
        assert list(part.columns) == list(df.columns)
        assert part["id"].is_monotonic_increasing
    table = counts(r)
    for name, n in zip(table.index, sizes):
        for split, frac in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
            assert abs(table.loc[name, split] - n * frac) <= 1, (name, split)
    total = r.summary.set_index("label_name").loc["total"]
    assert (total["train"], total["val"], total["test"], total["total"]) == (
        len(r.train), len(r.val), len(r.test), len(df))


def test_same_seed_same_split_other_seed_different() -> None:
    df = manifest(np.arange(400) % 4)
    a, b, c = make_splits(df, seed=1), make_splits(df, seed=1), make_splits(df, seed=2)
    for split in SPLIT_NAMES:
        assert list(getattr(a, split)["id"]) == list(getattr(b, split)["id"])
    assert ids(a.val) != ids(c.val)
    assert counts(a).equals(counts(c))  # the seed picks rows, not how many


# --- source splits ------------------------------------------------------------------------------

def test_fer2013_like_source_split_kept_exactly() -> None:
    rng = np.random.default_rng(0)
    n = 600
    source = rng.choice(["train", "val", "test"], size=n, p=[0.8, 0.1, 0.1])
    df = manifest(rng.integers(0, 7, n), source_split=list(source))
    r = make_splits(df, val_fraction=0.3, test_fraction=0.3, seed=5)  # fractions must not matter
    for split in SPLIT_NAMES:
        assert ids(getattr(r, split)) == set(df.loc[source == split, "id"])


def test_train_test_source_gets_val_carved_from_train_and_test_untouched() -> None:
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(5), [400, 200, 120, 80, 40])
    source = np.where(rng.random(len(labels)) < 0.25, "test", "train")
    df = manifest(labels, source_split=list(source))
    r = make_splits(df, val_fraction=0.15, test_fraction=0.15, seed=0)
    assert ids(r.test) == set(df.loc[source == "test", "id"])
    assert ids(r.val) <= set(df.loc[source == "train", "id"])
    # val : train keeps 0.15 : 0.70 within the source-train rows, per class.
    src_train = df[source == "train"].groupby("label_name").size()
    share = 0.15 / 0.85
    table = counts(r)
    for name, n in src_train.items():
        assert abs(table.loc[name, "val"] - n * share) <= 1, name


def test_carved_val_is_subject_disjoint_from_train() -> None:
    df = ck_like(40, seed=2)
    first_subjects = sorted(df["subject"].unique())[:10]
    df["source_split"] = np.where(df["subject"].isin(first_subjects), "test", "train")
    r = make_splits(df, seed=0)
    assert set(r.test["subject"]) == set(first_subjects)
    assert len(r.val) > 0
    assert not set(r.val["subject"]) & set(r.train["subject"])


def test_use_source_split_false_resplits_everything() -> None:
    df = manifest(np.arange(300) % 3, source_split=["test"] * 300)
    r = make_splits(df, use_source_split=False)
    assert (len(r.train), len(r.val), len(r.test)) == (210, 45, 45)
    with pytest.raises(SplitError, match="no rows ended in train"):
        make_splits(df)


def test_unlabelled_rows_stratified_and_follow_their_subject() -> None:
    # A mixed manifest: a labelled part (train/val/test) and an unlabelled one. Subject "P" has a
    # source test row, so its unlabelled rows must join test rather than open a leak.
    labels = list(np.arange(300) % 3) + [0] * 10 + list(np.arange(200) % 2)
    source = ["train"] * 200 + ["val"] * 50 + ["test"] * 50 + ["test"] + [""] * 9 + [""] * 200
    subjects = [""] * 300 + ["P"] * 10 + [""] * 200
    df = manifest(labels, subjects=subjects, source_split=source)
    r = make_splits(df, seed=4)
    assert set(df.loc[df["subject"] == "P", "id"]) <= ids(r.test)
    labelled = df[df["source_split"] != ""]
    for split in SPLIT_NAMES:
        assert set(labelled.loc[labelled["source_split"] == split, "id"]) <= ids(getattr(r, split))
    # The unlabelled rows (P's included: they count towards test) are split by the fractions.
    free = df[df["source_split"] == ""]
    for split, frac in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        got = getattr(r, split)
        got_free = got[got["id"].isin(free["id"])]
        for c, n in ((0, 109), (1, 100)):
            assert abs((got_free["label"] == c).sum() - n * frac) <= 1, (split, c)
    assert r.subject_leaks.empty


# --- subjects -----------------------------------------------------------------------------------

def test_ck_like_subject_disjoint_with_reasonable_proportions() -> None:
    df = ck_like(30)
    r = make_splits(df, seed=0)
    subjects = [set(getattr(r, s)["subject"]) for s in SPLIT_NAMES]
    assert not (subjects[0] & subjects[1] or subjects[0] & subjects[2] or subjects[1] & subjects[2])
    assert r.subject_leaks.empty
    table = counts(r)
    assert (table[list(SPLIT_NAMES)] > 0).all().all(), table  # every class in every split
    frac = table[list(SPLIT_NAMES)].div(table["total"], axis=0)
    assert (frac - [0.7, 0.15, 0.15]).abs().to_numpy().max() < 0.2, frac
    overall = np.array([len(r.train), len(r.val), len(r.test)]) / len(df)
    np.testing.assert_allclose(overall, [0.7, 0.15, 0.15], atol=0.03)
    # Without grouping, the same manifest does spread subjects over splits (so the above is earned).
    loose = make_splits(df, seed=0, group_by_subject=False)
    assert len(loose.subject_leaks) > 10


def test_subject_leak_in_source_split_reported_not_moved() -> None:
    subjects = ["A"] * 6 + ["B"] * 6 + ["C"] * 6
    source = ["train"] * 6 + ["train"] * 4 + ["test"] * 2 + ["val"] * 6
    df = manifest(np.arange(18) % 2, subjects=subjects, source_split=source)
    with pytest.warns(SplitWarning, match="1 subject"):
        r = make_splits(df)
    assert ids(r.test) == set(df["id"][10:12])  # the leaking rows stay where the source put them
    leaks = r.subject_leaks
    assert list(leaks["subject"]) == ["B"]
    assert leaks.iloc[0][["splits", "n_train", "n_val", "n_test"]].tolist() == ["train;test", 4, 0, 2]


# --- duplicates ---------------------------------------------------------------------------------

def test_cross_split_duplicates_reported_and_optionally_dropped() -> None:
    hashes = [f"h{i}" for i in range(30)]
    hashes[25] = hashes[3]    # a test image that is also in train
    hashes[23] = hashes[21]   # a duplicate inside val: not a cross-split duplicate
    source = ["train"] * 20 + ["val"] * 4 + ["test"] * 6
    df = manifest(np.arange(30) % 2, source_split=source, hashes=hashes)
    with pytest.warns(SplitWarning, match="more than one split"):
        r = make_splits(df)
    assert r.duplicates[["content_hash", "ids", "splits"]].values.tolist() == [
        ["h3", "img00003;img00025", "train;test"]]
    assert "img00025" in ids(r.test)
    with pytest.warns(SplitWarning):
        dropped = make_splits(df, drop_cross_split_duplicates=True)
    assert "img00025" not in ids(dropped.test) and "img00003" in ids(dropped.train)
    assert dropped.duplicates["dropped"].tolist() == ["img00025"]
    assert dropped.summary.iloc[-1]["total"] == 29


def test_allocation_keeps_identical_images_together() -> None:
    hashes = [f"h{i // 2}" for i in range(400)]  # every image twice
    df = manifest(np.arange(400) // 2 % 4, hashes=hashes)
    r = make_splits(df, seed=9)
    assert r.duplicates.empty
    assert len(r.val) > 40 and len(r.test) > 40


def test_same_image_under_two_classes_is_a_label_conflict_not_a_duplicate(tmp_path) -> None:
    hashes = [f"h{i}" for i in range(40)]
    hashes[7] = hashes[2]    # labels 1 and 0 (np.arange % 2): one face, two classes
    hashes[12] = hashes[10]  # labels 0 and 0: a plain duplicate, no conflict
    hashes[30] = hashes[31] = hashes[5]  # labels 1, 0, 1
    df = manifest(np.arange(40) % 2, hashes=hashes)
    with pytest.warns(SplitWarning, match=r"2 image\(s\) occur under more than one class") as caught:
        r = make_splits(df, seed=1)
    assert not [w for w in caught if "more than one split" in str(w.message)]
    conflicts = r.label_conflicts.sort_values("content_hash")
    assert conflicts[["content_hash", "ids", "label_names"]].values.tolist() == [
        ["h2", "img00002;img00007", "class0;class1"],
        ["h5", "img00005;img00030;img00031", "class1;class0"],
    ]
    # Grouping keeps each image's copies in one split: label noise, not a leak.
    assert all(";" not in splits for splits in conflicts["splits"]) and r.duplicates.empty
    write_splits(r, tmp_path)
    written = pd.read_csv(tmp_path / "label_conflicts.csv")
    assert written.sort_values("content_hash")["ids"].tolist() == conflicts["ids"].tolist()


# --- errors and tiny inputs ---------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"val_fraction": 1.2}, "splits.val_fraction must be in [0,1): got 1.2"),
    ({"test_fraction": -0.1}, "splits.test_fraction must be in [0,1): got -0.1"),
    ({"val_fraction": math.nan}, "splits.val_fraction must be in [0,1)"),
    ({"test_fraction": "a lot"}, "splits.test_fraction must be a number"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "splits.val_fraction + splits.test_fraction must be < 1"),
])
def test_invalid_fractions_name_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(SplitError) as err:
        make_splits(manifest([0, 1, 0, 1]), **kwargs)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


def test_invalid_manifests_raise() -> None:
    with pytest.raises(SplitError, match="empty"):
        make_splits(manifest([]))
    with pytest.raises(SplitError, match="at least 3"):
        make_splits(manifest([0, 1]))
    with pytest.raises(SplitError, match="'Training'"):
        make_splits(manifest([0, 1, 0], source_split=["Training", "", ""]))
    dup = manifest([0, 1, 0])
    dup.loc[2, "id"] = dup.loc[0, "id"]
    with pytest.raises(SplitError, match="duplicate image id"):
        make_splits(dup)


def test_tiny_classes_do_not_crash_and_val_is_filled_when_possible() -> None:
    # Sizes 1, 2, 3, 4 and a normal class.
    df = manifest(np.repeat(np.arange(5), [1, 2, 3, 4, 40]))
    table = counts(make_splits(df))
    assert table.loc["class0", list(SPLIT_NAMES)].tolist() == [1, 0, 0]
    assert table.loc["class1", "train"] == 1 and table.loc["class1", ["val", "test"]].sum() == 1
    for name in ("class2", "class3", "class4"):
        assert (table.loc[name, list(SPLIT_NAMES)] >= 1).all(), name
    # Only 2-image classes: each spreads over two splits, and the split totals still give val one.
    table = counts(make_splits(manifest(np.repeat(np.arange(4), 2))))
    assert (table["train"] == 1).all()
    assert table["val"].sum() >= 1 and table["test"].sum() >= 1


def test_too_few_subjects_warns_instead_of_failing() -> None:
    df = manifest([0, 1, 0, 1], subjects=["a", "a", "b", "b"])
    with pytest.warns(SplitWarning, match="val split is empty"):
        r = make_splits(df)
    assert len(r.train) == 2 and not r.subject_leaks.shape[0]


# --- output -------------------------------------------------------------------------------------

def test_write_splits_round_trips_through_read_manifest(tmp_path) -> None:
    df = ck_like(12, seed=3)
    df.loc[0, "source_split"] = "test"
    df.loc[1, "source_split"] = "train"  # same subject as row 0 -> a reported leak
    r = quiet(df, seed=0)
    write_splits(r, tmp_path / "splits")
    out = tmp_path / "splits"
    assert {p.name for p in out.iterdir()} == {
        "train.csv", "val.csv", "test.csv", "summary.csv", "duplicates.csv", "subject_leaks.csv",
        "label_conflicts.csv"}
    for split in SPLIT_NAMES:
        back = read_manifest(out / f"{split}.csv")
        assert list(back.columns) == list(MANIFEST_COLUMNS)
        assert back["id"].tolist() == getattr(r, split)["id"].tolist()
    summary = pd.read_csv(out / "summary.csv")
    assert summary["label_name"].iloc[-1] == "total" and summary["total"].iloc[-1] == len(df)
    assert pd.read_csv(out / "subject_leaks.csv")["subject"].tolist() == [df.loc[0, "subject"]]
    assert pd.read_csv(out / "duplicates.csv").empty
    assert pd.read_csv(out / "label_conflicts.csv").empty
