"""Adapter for MedMNIST-style ``.npz`` files: ``<split>_images`` / ``<split>_labels`` pairs.

Splits are train, val and test; a file may hold any of them, but each split needs both arrays.
Images are (N,H,W) or (N,H,W,C); labels (N,) or (N,1) integers. Sources are
``<file>#<split>_images[<i>]`` with ``i`` 0-based, as numpy indexes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ferxai.data.adapters import class_option
from ferxai.data.images import npz_array, npz_images_to_uint8, npz_item_ref
from ferxai.data.manifest import AdapterResult, ManifestError, pixel_fields

NPZ_SPLITS: tuple[str, ...] = ("train", "val", "test")


def read_npz(path: str | os.PathLike, classes: Sequence[str] | None = None) -> AdapterResult:
    """Manifest rows for every item of every split in the npz file.

    ``classes`` names label indices 0..K-1 with K = largest label + 1 (default "0".."K-1"); a list
    of another length raises ManifestError naming the option. Items with a negative label are
    rejected. Missing or half-present splits, length mismatches and non-integer labels raise
    ManifestError naming the file and array.
    """
    class_list = class_option(classes, "npz")
    shown = os.fspath(path)
    if not os.path.isfile(shown):
        raise ManifestError(f"npz dataset: {shown} does not exist")
    with np.load(shown, allow_pickle=False) as npz:
        names = set(npz.files)
    present = []
    for split in NPZ_SPLITS:
        pair = (f"{split}_images", f"{split}_labels")
        have = [name for name in pair if name in names]
        if len(have) == 1:
            lacking = pair[1] if have[0] == pair[0] else pair[0]
            raise ManifestError(f"{shown}: has array {have[0]!r} but no {lacking!r}")
        if have:
            present.append(split)
    if not present:
        raise ManifestError(f"{shown}: no <split>_images/<split>_labels arrays for any of {list(NPZ_SPLITS)} "
                            f"(arrays: {sorted(names)})")

    data = {}
    for split in present:
        images = npz_images_to_uint8(npz_array(shown, f"{split}_images"), f"{shown} array '{split}_images'")
        labels = _labels(npz_array(shown, f"{split}_labels"), f"{shown} array '{split}_labels'")
        if len(images) != len(labels):
            raise ManifestError(f"{shown}: array '{split}_images' has {len(images)} items but "
                                f"'{split}_labels' has {len(labels)}")
        data[split] = (images, labels)

    top = max((int(labels.max()) for _, labels in data.values() if len(labels)), default=-1)
    if class_list is None:
        class_list = [str(k) for k in range(top + 1)]
    elif len(class_list) != top + 1:
        # A wrong-length list would either leave trailing classes without images or reject whole
        # classes; either way the names do not describe this file (e.g. another MedMNIST subset).
        raise ManifestError(f"npz dataset: option 'classes' has {len(class_list)} names but the labels of {shown} "
                            f"are 0-{top} ({top + 1} classes); give one name per label, in label order, "
                            "or leave 'classes' out for names 0..K-1")
    result = AdapterResult(classes=class_list)
    for split in present:
        images, labels = data[split]
        width = len(str(max(len(labels) - 1, 0)))
        for i, (image, label) in enumerate(zip(images, labels)):
            source = npz_item_ref(shown, f"{split}_images", i)
            if label < 0:
                result.rejects.append({"source": source, "row": "", "reason": f"label {int(label)} is negative"})
                continue
            result.rows.append({
                "id": f"{split}{i:0{width}d}",
                "source": source,
                "label": int(label),
                "label_name": class_list[label],
                "subject": "",
                "source_split": split,
                **pixel_fields(image),
            })
    return result


def _labels(labels: np.ndarray, where: str) -> np.ndarray:
    """Labels as a 1-D int64 array; (N,1) is squeezed, multi-column or fractional labels refused."""
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ManifestError(f"{where}: labels must have shape (N,) or (N,1), got {labels.shape} "
                            "(multi-label data is not supported)")
    if labels.dtype == bool or not np.issubdtype(labels.dtype, np.number):
        raise ManifestError(f"{where}: labels must be integers, got dtype {labels.dtype}")
    as_int = labels.astype(np.int64)
    if np.issubdtype(labels.dtype, np.floating) and not np.array_equal(as_int, labels):
        raise ManifestError(f"{where}: labels must be whole numbers")
    return as_int
