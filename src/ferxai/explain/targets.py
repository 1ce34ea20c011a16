"""The class each image is explained for.

predicted   the model's prediction (what made it decide this?) — the default
true        the ground-truth label (what in the image speaks for the right class?)
class       one fixed class for every image, named by `class_name` (e.g. "happy")
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ferxai.classes import UNLABELLED

TARGET_KINDS = ("predicted", "true", "class")


def _as_indices(values: Sequence[int] | np.ndarray, what: str, num_classes: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.mod(arr, 1) == 0):
            raise ValueError(f"{what} must be integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        raise ValueError(f"{what}: class index {int(arr[bad][0])} out of range for "
                         f"{num_classes} classes (0..{num_classes - 1})")
    return arr


def resolve_targets(
    kind: str,
    labels: Sequence[int] | np.ndarray,
    predictions: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    class_name: str | None = None,
) -> np.ndarray:
    """int64 target class per image (N,), for `kind` in "predicted" | "true" | "class".

    `class_name` is required for kind "class" and must be None otherwise (a class name given
    with another kind would be silently ignored, which hides a configuration mistake).
    """
    if kind not in TARGET_KINDS:
        raise ValueError(f"unknown explanation target {kind!r}; valid: {', '.join(TARGET_KINDS)}")
    class_names = [str(c) for c in class_names]
    k = len(class_names)
    if k == 0:
        raise ValueError("class_names is empty")
    labels = np.asarray(labels)
    unlabelled = labels.size > 0 and bool(np.all(labels == UNLABELLED))
    if unlabelled and kind == "true":
        raise ValueError("explanation target 'true' needs images with a class; these have none "
                         "(use target 'predicted' or 'class')")
    labels = labels.astype(np.int64) if unlabelled else _as_indices(labels, "labels", k)
    predictions = _as_indices(predictions, "predictions", k)
    if len(labels) != len(predictions):
        raise ValueError(f"{len(labels)} labels but {len(predictions)} predictions")
    if kind != "class" and class_name is not None:
        raise ValueError(f"target class {class_name!r} given, but it is only used with target 'class' "
                         f"(target is {kind!r})")
    if kind == "predicted":
        return predictions.copy()
    if kind == "true":
        return labels.copy()
    if class_name is None:
        raise ValueError(f"target 'class' needs a class name; valid: {', '.join(class_names)}")
    if str(class_name) not in class_names:
        raise ValueError(f"unknown target class {class_name!r}; valid: {', '.join(class_names)}")
    return np.full(len(labels), class_names.index(str(class_name)), dtype=np.int64)
