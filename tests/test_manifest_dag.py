"""The manifest rule under the real snakemake: what reruns it, and what a failure leaves behind."""

from __future__ import annotations

import re
import subprocess

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tinyflow import SNAKEMAKE, add_library, make_workdir, snakemake, write_config

pytestmark = pytest.mark.slow

MODEL = {"cnn": {"arch": "fer_cnn", "input_size": 32, "channels": 1}}
RNG = np.random.default_rng(4)


def png(path, size=8):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, (size, size), dtype=np.uint8)).save(path)


def config(datasets: dict) -> dict:
    first = sorted(datasets)[0]
    return {"datasets": datasets, "models": MODEL, "experiments": {"e": {"dataset": first, "model": "cnn"}}}


def data_targets(*datasets: str) -> list[str]:
    return [f"results/data/{d}/splits/summary.csv" for d in datasets]


def dry_run(workdir, *targets: str) -> subprocess.CompletedProcess:
    return subprocess.run([*SNAKEMAKE, "--cores", "1", "--dry-run", *targets], cwd=workdir,
                          capture_output=True, text=True)


def planned(workdir, *targets: str) -> list[tuple[str, str]]:
    """(rule, dataset) of every job a dry run for `targets` would execute."""
    proc = dry_run(workdir, *targets)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if "Nothing to be done" in proc.stdout:
        return []
    return sorted(re.findall(r"^rule (\w+):\n(?:    .*\n)*?    wildcards: dataset=(\S+)$", proc.stdout, flags=re.M))


def fer2013_rows(n: int) -> str:
    usage = ["Training", "PublicTest", "PrivateTest"]
    return "emotion,pixels,Usage\n" + "".join(
        f"{k % 7},{' '.join(map(str, RNG.integers(0, 256, 2304)))},{usage[k % 3]}\n" for k in range(n))


VOTE_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A folder, a FER+ and a csv dataset, built once (manifest + splits)."""
    workdir = add_library(make_workdir(tmp_path_factory.mktemp("manifest_dag"), {}))
    for cls in ("happy", "sad"):
        for i in range(6):
            png(workdir / "data" / "faces" / cls / f"{cls}{i}.png")
    (workdir / "data" / "fer").mkdir(parents=True)
    (workdir / "data" / "fer" / "fer2013.csv").write_text(fer2013_rows(12))
    usage = ["Training", "PublicTest", "PrivateTest"]
    # Rows alternate between a clear majority and a 4-3-3 split that only plurality labels.
    votes = [f"{usage[k % 3]},fer{k:07d}.png," + ("1,8,1,0,0,0,0,0,0,0" if k % 2 else "4,3,3,0,0,0,0,0,0,0")
             for k in range(12)]
    (workdir / "data" / "fer" / "fer2013new.csv").write_text(VOTE_HEADER + "\n" + "\n".join(votes) + "\n")
    listing = (["path,label"] + [f"imgs/{i}.png,{'happy' if i % 2 else 'sad'}" for i in range(10)]
               + ["imgs/late.png,sad"])  # late.png appears only later
    for i in range(10):
        png(workdir / "data" / "listed" / "imgs" / f"{i}.png")
    (workdir / "data" / "listed" / "labels.csv").write_text("\n".join(listing) + "\n")
    for cls in ("happy", "sad"):  # masks for some images only; happy0's appears later
        for i in range(6):
            png(workdir / "data" / "masked" / cls / f"{cls}{i}.png")
            if i % 2 and cls == "happy":
                png(workdir / "data" / "masked_masks" / cls / f"{cls}{i}.png")
    datasets = {
        "faces": {"format": "folder", "options": {"root": "data/faces", "classes": ["happy", "sad"]}},
        "fp": {"format": "ferplus", "options": {"fer2013_csv": "data/fer/fer2013.csv",
                                                "ferplus_csv": "data/fer/fer2013new.csv"}},
        "listed": {"format": "csv", "options": {"path": "data/listed/labels.csv"}, "max_reject_fraction": 0.2},
        "masked": {"format": "folder", "options": {"root": "data/masked", "masks": "data/masked_masks"}},
    }
    for ds in datasets.values():
        ds["splits"] = {"val_fraction": 0.2, "test_fraction": 0.2}
    cfg = config(datasets)
    write_config(workdir, cfg)
    snakemake(workdir, *data_targets(*datasets))
    assert planned(workdir, *data_targets(*datasets)) == []
    return workdir, cfg


def changed(cfg: dict, dataset: str, **options) -> dict:
    new = {**cfg, "datasets": {**cfg["datasets"]}}
    new["datasets"][dataset] = {**cfg["datasets"][dataset],
                                "options": {**cfg["datasets"][dataset]["options"], **options}}
    return new


def test_class_order_change_reruns_the_folder_manifest(built):
    workdir, cfg = built
    write_config(workdir, changed(cfg, "faces", classes=["sad", "happy"]))
    try:
        assert planned(workdir, *data_targets("faces", "fp", "listed")) == [("manifest", "faces"), ("splits", "faces")]
    finally:
        write_config(workdir, cfg)
    assert planned(workdir, *data_targets("faces")) == []


def test_label_mode_change_reruns_the_ferplus_manifest(built):
    workdir, cfg = built
    write_config(workdir, changed(cfg, "fp", label_mode="plurality"))
    try:
        assert planned(workdir, *data_targets("faces", "fp", "listed")) == [("manifest", "fp"), ("splits", "fp")]
        snakemake(workdir, *data_targets("fp"))
        # Plurality labels the 4-3-3 rows that majority dropped.
        assert len(pd.read_csv(workdir / "results" / "data" / "fp" / "manifest.csv")) == 12
    finally:
        write_config(workdir, cfg)
    assert planned(workdir, *data_targets("fp")) == [("manifest", "fp"), ("splits", "fp")]
    snakemake(workdir, *data_targets("fp"))


def test_misspelt_label_mode_fails_the_dry_run_naming_the_key(built):
    workdir, cfg = built
    write_config(workdir, changed(cfg, "fp", label_mode="majorty"))
    try:
        proc = dry_run(workdir, *data_targets("fp"))
    finally:
        write_config(workdir, cfg)
    assert proc.returncode != 0 and "Nothing to be done" not in proc.stdout
    out = proc.stdout + proc.stderr
    assert "datasets.fp.options.label_mode" in out
    assert all(choice in out for choice in ("majority", "plurality", "drop_ties"))


def test_adding_an_image_the_csv_lists_reruns_its_manifest(built):
    workdir, cfg = built
    rejects = pd.read_csv(workdir / "results" / "data" / "listed" / "rejects.csv")
    assert rejects["reason"].tolist() == ["file not found: imgs/late.png"]
    png(workdir / "data" / "listed" / "imgs" / "late.png")
    assert planned(workdir, *data_targets("faces", "fp", "listed")) == [("manifest", "listed"), ("splits", "listed")]
    snakemake(workdir, *data_targets("listed"))
    assert len(pd.read_csv(workdir / "results" / "data" / "listed" / "manifest.csv")) == 11
    assert planned(workdir, *data_targets("listed")) == []


def test_adding_a_mask_reruns_the_folder_manifest(built):
    workdir, cfg = built
    masks = pd.read_csv(workdir / "results" / "data" / "masked" / "manifest.csv", keep_default_na=False)
    assert dict(zip(masks["id"], masks["mask"]))["happy/happy1.png"] == "data/masked_masks/happy/happy1.png"
    assert (masks["mask"] == "").sum() == 9
    png(workdir / "data" / "masked_masks" / "happy" / "happy0.png")
    assert planned(workdir, *data_targets("faces", "listed", "masked")) == [("manifest", "masked"),
                                                                           ("splits", "masked")]
    snakemake(workdir, *data_targets("masked"))
    masks = pd.read_csv(workdir / "results" / "data" / "masked" / "manifest.csv", keep_default_na=False)
    assert (masks["mask"] == "").sum() == 8
    assert planned(workdir, *data_targets("masked")) == []


@pytest.mark.parametrize("dataset, key, wrong", [
    ("masked", "masks", "data/masked_mask"),
    ("listed", "path", "data/listed/label.csv"),
    ("fp", "ferplus_csv", "data/fer/fer2013nwe.csv"),
    ("faces", "root", "data/face"),
])
def test_misspelt_path_after_a_build_is_an_error_not_nothing_to_be_done(built, dataset, key, wrong):
    """As a missing input, Snakemake would drop the manifest job and keep the old manifest."""
    workdir, cfg = built
    write_config(workdir, changed(cfg, dataset, **{key: wrong}))
    try:
        proc = dry_run(workdir, *data_targets(dataset))
    finally:
        write_config(workdir, cfg)
    assert proc.returncode != 0 and "Nothing to be done" not in proc.stdout
    assert f"datasets.{dataset}.options.{key}: " in proc.stdout + proc.stderr
    assert f"{wrong} does not exist" in proc.stdout + proc.stderr


def test_failed_manifest_leaves_the_rejects_file_its_message_names(tmp_path):
    workdir = add_library(make_workdir(tmp_path, {}))
    for i in range(4):
        png(workdir / "data" / "faces" / "happy" / f"{i}.png")
    (workdir / "data" / "faces" / "happy" / "broken.png").write_bytes(b"\x89PNG not really")
    (workdir / "data" / "faces" / "sad").mkdir()
    (workdir / "data" / "faces" / "sad" / "empty.png").write_bytes(b"")
    write_config(workdir, config({"faces": {"format": "folder", "options": {"root": "data/faces"}}}))
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1", *data_targets("faces")], cwd=workdir,
                          capture_output=True, text=True)
    assert proc.returncode != 0
    log = (workdir / "logs" / "data" / "faces" / "manifest.log").read_text()
    named = re.search(r"2 of 6 inputs rejected .*; see (\S+)\. First:", log)
    assert named, log[-2000:]
    assert not (workdir / "results" / "data" / "faces" / "rejects.csv").exists()  # removed by Snakemake
    kept = pd.read_csv(workdir / named.group(1))
    assert sorted(kept["source"]) == ["data/faces/happy/broken.png", "data/faces/sad/empty.png"]
    assert kept["counted"].all()
