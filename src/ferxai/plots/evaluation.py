"""Confusion-matrix and training-curve figures, plus reading ``train_log.jsonl``.

Figures are built on :class:`matplotlib.figure.Figure` directly rather than through
``pyplot``: pyplot keeps global state (current figure, a backend chosen at first use,
figures that leak unless closed), which bites in Snakemake jobs without a display and
in callers that use pyplot themselves. A bare ``Figure`` renders to files through
``savefig`` with no backend selection at all.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike

__all__ = ["plot_confusion_matrix", "plot_training_curves", "read_train_log", "save_figure"]

# Metric that selects the best epoch; the trainer's early stopping uses the same one.
BEST_EPOCH_KEY = "val_macro_f1"


def plot_confusion_matrix(cm: ArrayLike, class_names: Sequence[str], normalize: bool) -> Figure:
    """Heat map of a confusion matrix (rows true, columns predicted) with one label per cell.

    With ``normalize`` each row is divided by its total, so a cell reads as the
    fraction of that true class given each prediction (2 decimals); a row with no
    samples stays all 0.00 instead of dividing by zero. Otherwise cells show counts.
    """
    counts = np.asarray(cm)
    names = [str(n) for n in class_names]
    k = len(names)
    if counts.ndim != 2 or counts.shape != (k, k) or k == 0:
        raise ValueError(f"confusion matrix shape {counts.shape} does not match {k} class names")
    if normalize:
        totals = counts.sum(axis=1, keepdims=True).astype(np.float64)
        values = np.zeros(counts.shape, dtype=np.float64)
        np.divide(counts, totals, out=values, where=totals != 0)
        labels = [[f"{v:.2f}" for v in row] for row in values]
        vmax = 1.0  # fixed scale so normalised matrices from different runs compare by colour
    else:
        values = counts.astype(np.float64)
        labels = [[str(int(v)) for v in row] for row in counts]
        vmax = max(float(values.max()), 1.0)

    # Grow with the class count so labels stay legible for 7-8 classes and beyond.
    side = max(4.0, 0.6 * k + 2.5)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    image = ax.imshow(values, cmap="Blues", vmin=0.0, vmax=vmax)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)

    # Dark text on light cells and light text on dark ones keeps every label readable.
    threshold = vmax / 2.0
    for i in range(k):
        for j in range(k):
            ax.text(
                j, i, labels[i][j], ha="center", va="center", fontsize=8,
                color="white" if values[i, j] > threshold else "black",
            )

    ax.set_xticks(range(k))
    ax.set_yticks(range(k))
    # Anchored rotation keeps the end of each long name under its column.
    ax.set_xticklabels(names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_yticklabels(names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix (row-normalised)" if normalize else "confusion matrix (counts)")
    fig.tight_layout()
    return fig


def _as_float(value: Any) -> float:
    # JSON has no NaN literal in strict writers, so a diverged loss may arrive as null.
    return math.nan if value is None else float(value)


def plot_training_curves(
    log_records: list[dict[str, Any]], key: str, ylabel: str | None = None
) -> Figure:
    """Plot ``key`` per epoch from ``train_log.jsonl`` records, marking the best epoch.

    The best epoch is the first one with the highest ``val_macro_f1`` (NaN ignored);
    it is drawn as a dashed vertical line and a marker on the curve. If any record
    lacks ``val_macro_f1`` no best epoch is marked. Raises ValueError when there are
    no records or a record lacks ``epoch`` or ``key``.
    """
    if not log_records:
        raise ValueError("no training log records to plot")
    for i, record in enumerate(log_records):
        for required in ("epoch", key):
            if required not in record:
                raise ValueError(f"training log record {i} has no key {required!r}")

    # A resumed run may append epochs out of order; plot them along the epoch axis.
    records = sorted(log_records, key=lambda r: r["epoch"])
    epochs = np.array([r["epoch"] for r in records], dtype=np.float64)
    ys = np.array([_as_float(r[key]) for r in records], dtype=np.float64)

    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    ax.plot(epochs, ys, marker="o", markersize=3, label=key)

    if all(BEST_EPOCH_KEY in r for r in records):
        scores = np.array([_as_float(r[BEST_EPOCH_KEY]) for r in records], dtype=np.float64)
        if np.isfinite(scores).any():
            best = int(np.nanargmax(scores))  # first maximum, as strict-improvement early stopping keeps
            ax.axvline(epochs[best], color="grey", linestyle="--", linewidth=1,
                       label=f"best epoch {records[best]['epoch']} ({BEST_EPOCH_KEY}={scores[best]:.3f})")
            ax.plot([epochs[best]], [ys[best]], marker="*", markersize=12, color="tab:red", linestyle="none")

    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel if ylabel is not None else key)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def read_train_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSON-lines training log into a list of dicts; blank lines are skipped.

    Raises ValueError naming the file and 1-based line number of a line that is not
    a JSON object.
    """
    path = Path(path)
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: line {lineno} is not valid JSON: {exc.msg}") from exc
            if not isinstance(record, dict):
                raise ValueError(
                    f"{path}: line {lineno} is a JSON {type(record).__name__}, expected an object"
                )
            records.append(record)
    return records


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) at 120 dpi, creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    return path
