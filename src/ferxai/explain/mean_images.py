"""Mean images of a split: the "typical face" overall and per class.

Numpy only: the inputs job computes them for the explanation baselines and the store keeps them.
"""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


def mean_images(images: np.ndarray, labels: np.ndarray, num_classes: int,
                batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """(mean (C, H, W), class_means (K, C, H, W)), float32 in [0, 1].

    Meant for the TRAIN split (what the model saw; baselines and "typical face" references must
    not leak test images). uint8 images are divided by 255, float images are taken as [0, 1].
    Sums are accumulated in float64 per batch, so a large split is never copied as float. A
    class without images gets NaN (and a warning) rather than a made-up mean.
    """
    images = np.asarray(images)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must be in 0..{num_classes - 1}, got {labels.min()}..{labels.max()}")
    if len(images) == 0:
        raise ValueError("no images to average (empty train split)")
    scale = 255.0 if images.dtype == np.uint8 else 1.0
    c, h, w = images.shape[1:]
    sums = np.zeros((num_classes, c, h, w), np.float64)
    counts = np.bincount(labels, minlength=num_classes)
    for start in range(0, len(images), batch_size):
        batch = images[start:start + batch_size].astype(np.float64)
        np.add.at(sums, labels[start:start + batch_size], batch)
    mean = (sums.sum(0) / counts.sum() / scale).astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        class_means = (sums / counts[:, None, None, None] / scale).astype(np.float32)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        log.warning("classes %s have no images: their mean image is NaN", empty.tolist())
    return mean, class_means
