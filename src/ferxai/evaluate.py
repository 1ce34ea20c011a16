"""Test-split evaluation: predictions, summary metrics and the confusion matrix."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn as nn

from ferxai.classes import UNLABELLED, UNLABELLED_NAME, class_name
from ferxai.device import resolve_device
from ferxai.metrics import classification_summary, confusion_matrix
from ferxai.settings import EvaluateSettings
from ferxai.train import predict_logits

log = logging.getLogger(__name__)


def predictions_frame(ids: Sequence[str], labels: np.ndarray, probs: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """One row per image: id, label, prediction, confidence, then `prob_<class>` per class."""
    pred = probs.argmax(1)
    frame = pd.DataFrame({
        "id": list(ids),
        "label": labels.astype(int),
        "label_name": [class_name(classes, i) for i in labels],
        "prediction": pred.astype(int),
        "prediction_name": [classes[i] for i in pred],
        "confidence": probs.max(1),
        "correct": pred == labels,  # always False for images without a class
    })
    for k, name in enumerate(classes):
        frame[f"prob_{name}"] = probs[:, k]
    return frame


def evaluate_model(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    ids: Sequence[str],
    classes: Sequence[str],
    device: str = EvaluateSettings.device,
    batch_size: int = EvaluateSettings.batch_size,
) -> tuple[pd.DataFrame, dict[str, Any], np.ndarray]:
    """Predict uint8 images (N, C, H, W); returns (predictions, summary, confusion matrix).

    Images without a class (every label UNLABELLED) get predictions only: the summary then has
    the predicted-class counts instead of accuracy, and the "confusion matrix" is one row
    (`unlabelled`) of those counts.
    """
    dev = resolve_device(device)
    model.to(dev)
    logits = predict_logits(model, torch.from_numpy(images), dev, batch_size)
    probs = torch.softmax(logits, dim=1).numpy() if len(logits) else np.zeros((0, len(classes)))
    frame = predictions_frame(ids, labels, probs, classes)
    preds = frame["prediction"].to_numpy()
    unlabelled = labels == UNLABELLED
    if unlabelled.any():
        if not unlabelled.all():
            raise ValueError("evaluation: some test images have a class and some not; "
                             "a split is either labelled or not")
        counts = np.bincount(preds, minlength=len(classes))
        summary = {"labelled": False, "n": int(len(preds)),
                   "predicted_counts": {c: int(k) for c, k in zip(classes, counts)},
                   "mean_confidence": float(frame["confidence"].mean()) if len(frame) else float("nan")}
        return frame, summary, counts[None, :]
    summary = classification_summary(labels, preds, list(classes))
    cm = confusion_matrix(labels, preds, len(classes))
    return frame, summary, cm


def evaluate_checkpoint(
    checkpoint: str | Path,
    test_split: str | Path,
    settings: Mapping[str, Any] | EvaluateSettings,
    summary_path: str | Path,
    confusion_path: str | Path,
    predictions_path: str | Path,
) -> dict[str, Any]:
    from ferxai.data.dataset import load_split_arrays
    from ferxai.models import load_checkpoint

    model, meta = load_checkpoint(checkpoint)
    classes = list(meta["classes"])
    images, labels, ids = load_split_arrays(test_split, int(meta["input_size"]), int(meta["in_channels"]),
                                            classes=classes)
    if len(labels) == 0:
        raise ValueError(f"{test_split}: the test split is empty")
    settings = EvaluateSettings.from_dict(settings)
    frame, summary, cm = evaluate_model(
        model, images, labels, ids, classes, device=settings.device, batch_size=settings.batch_size,
    )
    summary = {
        **summary,
        "checkpoint": str(checkpoint),
        "epoch": meta.get("epoch"),
        "arch": meta.get("arch"),
        "config_hash": meta.get("config_hash"),
    }
    for path in (summary_path, confusion_path, predictions_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(predictions_path, index=False, float_format="%.6g")
    rows = classes if summary.get("labelled", True) else [UNLABELLED_NAME]
    pd.DataFrame(cm, index=pd.Index(rows, name="true"), columns=classes).to_csv(confusion_path)
    Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    if summary.get("labelled", True):
        log.info("test accuracy %.4f, macro-F1 %.4f on %d images", summary["accuracy"], summary["macro_f1"], len(labels))
    else:
        log.info("predicted %d images without a class: %s", len(labels), summary["predicted_counts"])
    return summary
