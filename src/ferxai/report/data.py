"""Report items of a dataset: class counts per split, a sample grid per class (ground-truth masks
outlined where the dataset has them) and the findings of the manifest and split stages."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence
import numpy as np
from matplotlib.figure import Figure

from ferxai.classes import UNLABELLED_NAME
from ferxai.report.html import badge, para, section, table, write_page

SPLITS = ("train", "val", "test")
SPLIT_COLOURS = {"train": "#4c72b0", "val": "#dd8452", "test": "#55a868"}
SHOWN_ROWS = 20  # rows of each finding listed on the page (the csv has them all)


def read_rows(path: str | os.PathLike, required: Sequence[str] = ()) -> list[dict[str, str]]:
    """Rows of a csv file; a missing column is an error naming the file and the column."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in required if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing column(s) {missing} (has {reader.fieldnames})")
        return list(reader)


def class_counts(summary_csv: str | os.PathLike) -> dict[str, dict[str, int]]:
    """class -> split -> images, from splits/summary.csv (its `total` row left out)."""
    counts = {}
    for i, row in enumerate(read_rows(summary_csv, ("label_name", *SPLITS)), start=2):
        if row["label_name"] == "total":
            continue
        try:
            counts[row["label_name"]] = {s: int(row[s]) for s in SPLITS}
        except ValueError as err:
            raise ValueError(f"{summary_csv}: line {i}: {err}") from None
    return counts


def plot_class_counts(counts: Mapping[str, Mapping[str, int]], dataset: str) -> Figure:
    """Grouped bars: per class, its images in train, val and test (counts over the bars)."""
    names = list(counts)
    fig = Figure(figsize=(max(5.0, 1.0 + 0.9 * len(names)), 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(names))
    width = 0.8 / len(SPLITS)
    for k, split in enumerate(SPLITS):
        values = [counts[n][split] for n in names]
        bars = ax.bar(x + (k - 1) * width, values, width, label=f"{split} ({sum(values)})",
                      color=SPLIT_COLOURS[split])
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, names, rotation=30 if len(names) > 8 else 0)
    ax.set_xlabel("class")
    ax.set_ylabel("images")
    ax.set_title(f"dataset {dataset}: images per class and split")
    ax.legend(title="split (total)", fontsize=8, title_fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.margins(y=0.12)
    return fig


def sample_grid(manifest_csv: str | os.PathLike, class_names: Sequence[str], dataset: str,
                per_class: int) -> Figure:
    """The first `per_class` images of each class in the manifest, masks outlined in red."""
    from ferxai.data.images import load_image
    from ferxai.data.synthetic import load_mask
    from ferxai.plots.samples import plot_sample_grid

    rows = read_rows(manifest_csv, ("id", "source", "label"))
    if not class_names:  # a user's images without classes: one row of them
        class_names = [UNLABELLED_NAME]
        rows = [{**r, "label": "0"} for r in rows]
    with_mask = bool(rows) and "mask" in rows[0]
    picked, totals = [], {}
    for row in rows:
        label = int(row["label"])
        totals[label] = totals.get(label, 0) + 1
        if totals[label] <= per_class:
            picked.append(row)
    images = [load_image(r["source"]) for r in picked]
    masks = None
    if with_mask:
        masks = [load_mask(r["mask"]) if r["mask"] else np.zeros(img.shape[:2], bool) for r, img in zip(picked, images)]
    fig = plot_sample_grid(images, [int(r["label"]) for r in picked], class_names, masks=masks, per_class=per_class)
    for row, _ in enumerate(class_names):  # the dataset's count, not the grid's
        fig.axes[row * per_class].set_ylabel(f"{class_names[row]}\n(n={totals.get(row, 0)})", fontsize=9)
    note = " (red: ground-truth mask)" if with_mask else ""
    fig.suptitle(f"dataset {dataset}: first {per_class} images per class{note}", fontsize=10)
    return fig


def findings_page(path: str | os.PathLike, dataset: str, files: Mapping[str, str | os.PathLike]) -> None:
    """One page with what the data stages found: rejects, cross-split duplicates, images with
    two labels and subjects in more than one split, each with its count and first rows."""
    rejects = read_rows(files["rejects"], ("source", "row", "reason", "counted"))
    duplicates = read_rows(files["duplicates"], ("content_hash", "ids", "splits", "dropped"))
    conflicts = read_rows(files["label_conflicts"], ("content_hash", "ids", "label_names", "splits"))
    leaks = read_rows(files["subject_leaks"], ("subject", "splits"))
    counted = [r for r in rejects if r["counted"].strip().lower() == "true"]

    def block(title, rows, header, keys, explain, ok_text):
        shown = rows[:SHOWN_ROWS]
        more = f" (first {SHOWN_ROWS} of {len(rows)}; all in {files[keys[0]]})" if len(rows) > SHOWN_ROWS else ""
        status = badge(not rows, ok_text if not rows else f"{len(rows)} found{more}")
        return section(title, f"<p>{status} — {explain}</p>",
                       table(header, ([r[c] for c in keys[1]] for r in shown), empty=""))

    parts = [
        para(f"What the manifest and split stages of dataset {dataset} left out or flagged. "
             "Empty sections are good news; every table is also a csv under results/data/" f"{dataset}/."),
        block("Rejected inputs", rejects, ["source", "row", "reason", "counted"],
              ("rejects", ["source", "row", "reason", "counted"]),
              f"inputs left out of the manifest ({len(counted)} unreadable or malformed, counted against "
              "max_reject_fraction; the others dropped by design).", "no input rejected"),
        block("Duplicates across splits", duplicates, ["content_hash", "ids", "splits", "dropped"],
              ("duplicates", ["content_hash", "ids", "splits", "dropped"]),
              "identical decoded pixels in more than one split: test images the model may have seen "
              "in training.", "no duplicate across splits"),
        block("Conflicting labels", conflicts, ["content_hash", "ids", "label_names", "splits"],
              ("label_conflicts", ["content_hash", "ids", "label_names", "splits"]),
              "one image under two classes: label noise.", "no image with two labels"),
        block("Subjects in more than one split", leaks, ["subject", "splits"],
              ("subject_leaks", ["subject", "splits"]),
              "the same person in train and test lets a model recognise people instead of expressions "
              "(only where subjects are known).", "no subject leak"),
    ]
    write_page(path, f"Dataset {dataset}: data findings", *parts)


def write_dataset_report(files: Mapping[str, str | os.PathLike], dataset: str, per_class: int,
                         counts_png: str | os.PathLike, samples_png: str | os.PathLike,
                         findings_html: str | os.PathLike) -> None:
    """The dataset's three report items from the manifest and split stages' files (`files`:
    manifest, classes, summary, rejects, duplicates, label_conflicts, subject_leaks)."""
    from ferxai.plots.evaluation import save_figure

    with open(files["classes"], encoding="utf-8") as handle:
        class_names = json.load(handle)
    if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
        raise ValueError(f"{files['classes']}: expected a JSON list of class names")
    save_figure(plot_class_counts(class_counts(files["summary"]), dataset), counts_png)
    save_figure(sample_grid(files["manifest"], class_names, dataset, per_class), samples_png)
    findings_page(findings_html, dataset, files)
