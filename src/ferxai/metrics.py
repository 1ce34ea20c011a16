"""Classification metrics computed from integer labels with numpy alone.

Conventions (chosen to match scikit-learn's ``zero_division=0``):

* A score whose denominator is zero is 0.0: precision of a class that is never
  predicted, recall of a class that never occurs, F1 of a class that neither occurs
  nor is predicted, and accuracy of an empty input.
* F1 is ``2·tp / (2·tp + fp + fn)``, which equals the harmonic mean of precision
  and recall whenever both are defined and is 0.0 when either is 0.
* Macro averages are unweighted means over *all* ``num_classes`` classes, including
  classes that have zero support and are never predicted (they contribute 0.0), as
  scikit-learn does when ``labels`` lists every class. A class missing from a split
  therefore lowers macro scores; that keeps numbers comparable across splits and runs
  that share a class list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["confusion_matrix", "classification_summary", "macro_f1", "summary_from_confusion"]


def _as_labels(values: ArrayLike, name: str, num_classes: int) -> np.ndarray:
    """Return ``values`` as a 1-D int64 array, rejecting non-integers and out-of-range labels."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        return arr.astype(np.int64)
    if arr.dtype.kind == "b" or arr.dtype.kind not in "iuf":
        raise ValueError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    if arr.dtype.kind == "f":
        # Float labels are accepted only when integral (e.g. loaded from a CSV column
        # that pandas widened); silently truncating 2.7 to 2 would hide a bug.
        bad = ~np.isfinite(arr) | (arr != np.round(arr))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{name} must hold integer class indices, got {arr[index].item()!r} at index {index}"
            )
    arr = arr.astype(np.int64)
    out_of_range = (arr < 0) | (arr >= num_classes)
    if out_of_range.any():
        value = int(arr[out_of_range][0])
        index = int(np.flatnonzero(out_of_range)[0])
        raise ValueError(
            f"{name} has label {value} at index {index}, outside [0, {num_classes - 1}]"
        )
    return arr


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)):
        raise ValueError(f"num_classes must be an int, got {num_classes!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return int(num_classes)


def confusion_matrix(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> np.ndarray:
    """Count matrix of shape ``(num_classes, num_classes)``: rows are true labels, columns predicted.

    Raises ValueError when the inputs differ in length, are not 1-D integer labels, or
    hold a label outside ``[0, num_classes)``.
    """
    k = _check_num_classes(num_classes)
    t = _as_labels(y_true, "y_true", k)
    p = _as_labels(y_pred, "y_pred", k)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    # One bincount over the flattened (true, pred) pair index is O(n) and avoids a
    # Python loop; this runs every epoch on the whole validation set.
    counts = np.bincount(t * k + p, minlength=k * k)
    return counts.reshape(k, k).astype(np.int64)


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Elementwise ``num / den`` with 0.0 wherever ``den`` is 0."""
    num = num.astype(np.float64)
    den = den.astype(np.float64)
    out = np.zeros_like(num)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _per_class_scores(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    tp = np.diag(cm)
    support = cm.sum(axis=1)  # how often each class is the true label
    predicted = cm.sum(axis=0)  # how often each class is predicted
    precision = _safe_divide(tp, predicted)
    recall = _safe_divide(tp, support)
    # 2tp / (support + predicted) == 2tp / (2tp + fp + fn); it is 0.0, not undefined,
    # when only one of precision/recall is undefined, matching sklearn.
    f1 = _safe_divide(2 * tp, support + predicted)
    return precision, recall, f1, support


def _check_confusion(cm: ArrayLike) -> np.ndarray:
    arr = np.asarray(cm)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"confusion matrix must be square and non-empty, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"confusion matrix must hold integer counts, got dtype {arr.dtype}")
    if (arr < 0).any():
        raise ValueError("confusion matrix has negative counts")
    return arr.astype(np.int64)


def _check_class_names(class_names: Sequence[str]) -> list[str]:
    if isinstance(class_names, str):
        # A bare string would otherwise be read as one class per character.
        raise ValueError("class_names must be a sequence of names, not a single string")
    names = [str(n) for n in class_names]
    if not names:
        raise ValueError("class_names is empty")
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"class_names has duplicate name {name!r}")
        seen.add(name)
    return names


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike, num_classes: int) -> float:
    """Unweighted mean F1 over all ``num_classes`` classes (absent classes count as 0.0)."""
    _, _, f1, _ = _per_class_scores(confusion_matrix(y_true, y_pred, num_classes))
    return float(f1.mean())


def summary_from_confusion(cm: ArrayLike, class_names: Sequence[str]) -> dict[str, Any]:
    """Same result as :func:`classification_summary`, from an existing confusion matrix."""
    names = _check_class_names(class_names)
    arr = _check_confusion(cm)
    if arr.shape[0] != len(names):
        raise ValueError(
            f"confusion matrix has {arr.shape[0]} classes but {len(names)} class names were given"
        )
    precision, recall, f1, support = _per_class_scores(arr)
    n = int(arr.sum())
    weighted_f1 = float((f1 * support).sum() / n) if n else 0.0
    return {
        "accuracy": float(np.trace(arr) / n) if n else 0.0,
        "macro_f1": float(f1.mean()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "weighted_f1": weighted_f1,
        "num_samples": n,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
    }


def classification_summary(
    y_true: ArrayLike, y_pred: ArrayLike, class_names: Sequence[str]
) -> dict[str, Any]:
    """JSON-serialisable summary of a classifier's predictions.

    Returns ``accuracy``, ``macro_f1``, ``macro_precision``, ``macro_recall``,
    ``weighted_f1`` (F1 weighted by true support), ``num_samples`` and ``per_class``
    mapping each name to ``precision``, ``recall``, ``f1`` and ``support``. Label ``i``
    is ``class_names[i]``; every listed class enters the macro averages (see module
    docstring). All values are plain Python ``float``/``int``.
    """
    names = _check_class_names(class_names)
    return summary_from_confusion(confusion_matrix(y_true, y_pred, len(names)), names)
