"""Evaluation figures: structure of the returned Figures, PNG output, train-log parsing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from PIL import Image

from ferxai.plots.evaluation import (
    plot_confusion_matrix,
    plot_training_curves,
    read_train_log,
    save_figure,
)

NAMES = ["angry", "disgust", "fear"]
CM = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 6]])


def _records() -> list[dict[str, float]]:
    f1s = [0.2, 0.5, 0.7, 0.65]
    return [
        {"epoch": e, "train_loss": 1.0 / (e + 1), "val_loss": 1.2 / (e + 1), "val_accuracy": f,
         "val_macro_f1": f, "lr": 1e-3, "seconds": 1.5}
        for e, f in enumerate(f1s)
    ]


def _cell_texts(fig: Figure) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_confusion_counts() -> None:
    fig = plot_confusion_matrix(CM, NAMES, normalize=False)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # heat map + colour bar
    texts = _cell_texts(fig)
    assert len(texts) == len(NAMES) ** 2
    assert texts == [str(v) for v in CM.ravel()]
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == NAMES


def test_confusion_normalised_handles_empty_row() -> None:
    fig = plot_confusion_matrix(CM, NAMES, normalize=True)
    texts = _cell_texts(fig)
    assert len(texts) == 9
    assert texts[:3] == ["0.75", "0.25", "0.00"]
    assert texts[3:6] == ["0.00", "0.00", "0.00"]  # class with no samples, no division by zero
    assert texts[6:] == ["0.25", "0.00", "0.75"]


def test_confusion_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="does not match 2 class names"):
        plot_confusion_matrix(CM, NAMES[:2], normalize=False)


def test_training_curves_marks_best_epoch() -> None:
    fig = plot_training_curves(_records(), "val_loss", ylabel="loss")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert ax.get_ylabel() == "loss"
    # The vertical best-epoch line sits at epoch 2, where val_macro_f1 peaks.
    vlines = [line for line in ax.get_lines() if np.ptp(line.get_xdata()) == 0 and len(line.get_xdata()) == 2]
    assert any(line.get_xdata()[0] == 2 for line in vlines)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("best epoch 2" in t for t in legend)


def test_training_curves_default_ylabel_and_missing_best_key() -> None:
    records = [{k: v for k, v in r.items() if k != "val_macro_f1"} for r in _records()]
    fig = plot_training_curves(records, "train_loss")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "train_loss"
    assert len(ax.get_lines()) == 1  # no best-epoch marker without val_macro_f1


def test_training_curves_missing_key() -> None:
    with pytest.raises(ValueError, match="'val_auc'"):
        plot_training_curves(_records(), "val_auc")
    with pytest.raises(ValueError, match="no training log records"):
        plot_training_curves([], "val_loss")


def test_save_figure_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "nested" / "dir" / "cm.png"
    path = save_figure(plot_confusion_matrix(CM, NAMES, normalize=True), out)
    assert path == out and out.stat().st_size > 1000
    with Image.open(out) as img:
        img.load()
        width, height = img.size
    # figsize is a few inches at 120 dpi; a tight bbox trims but stays in the hundreds.
    assert 200 < width < 2000 and 200 < height < 2000


def test_read_train_log_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "train_log.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _records()) + "\n\n")
    assert read_train_log(path) == _records()


@pytest.mark.parametrize(
    ("bad_line", "pattern"),
    [('{"epoch": 1, "train_loss":', "line 3 is not valid JSON"), ("[1, 2]", "line 3 is a JSON list")],
)
def test_read_train_log_names_bad_line(tmp_path: Path, bad_line: str, pattern: str) -> None:
    path = tmp_path / "train_log.jsonl"
    good = [json.dumps(r) for r in _records()[:2]]
    path.write_text("\n".join([*good, bad_line]) + "\n")
    with pytest.raises(ValueError, match=pattern) as info:
        read_train_log(path)
    assert str(path) in str(info.value)
