"""Split files to arrays, and arrays to a torch Dataset.

Images are decoded once into one uint8 N x C x H x W array held in memory. FER-scale data fits
easily (FER2013 at 48 px gray is 83 MB; 30k images at 112 px RGB about 1.1 GB), and it keeps
epochs free of file decoding, which would otherwise dominate on a 2-core CPU and makes worker
processes unnecessary. uint8 is four times smaller than float32; conversion happens per batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from ferxai.data.images import load_images


def load_split_arrays(
    split_csv_or_df: str | os.PathLike | pd.DataFrame, size: int, channels: int,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 N x channels x size x size images, int64 labels, ids) of a split, in file order.

    The split is a CSV/parquet file with the manifest columns (one row per image) or such a
    DataFrame; images are resized and channel-converted by :func:`ferxai.data.images.load_images`.
    `classes`: the class names of the model the labels will be compared with (index = label);
    a row whose `label_name` is another class is an error naming the row, before any image is read.
    """
    if isinstance(split_csv_or_df, pd.DataFrame):
        frame, where = split_csv_or_df, "split DataFrame"
    else:
        where = os.fspath(split_csv_or_df)
        if where.endswith(".parquet"):
            frame = pd.read_parquet(where)
        else:
            frame = pd.read_csv(where, dtype={"id": str, "source": str}, keep_default_na=False)
    # Only these are needed here, so split files may drop or add other manifest columns.
    missing = [c for c in ("id", "source", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing columns {missing}")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    if (labels.isna() | (labels % 1 != 0)).any():
        bad = frame.loc[labels.isna() | (labels % 1 != 0), "id"].iloc[0]
        raise ValueError(f"{where}: image {bad!r} has a non-integer label")
    if classes is not None and "label_name" in frame.columns:
        _check_class_names(frame, labels.to_numpy(dtype=np.int64), list(classes), where)
    # Errors from here name the failing source (file, row or array item) themselves.
    images = load_images(frame["source"].astype(str).tolist(), size, channels)
    return images, labels.to_numpy(dtype=np.int64), frame["id"].astype(str).tolist()


def _check_class_names(frame: pd.DataFrame, labels: np.ndarray, classes: list[str], where: str) -> None:
    """Label i must mean the model's class i (a model trained on another dataset, whose classes
    are in another order, would be scored against the wrong names)."""
    from ferxai.classes import UNLABELLED

    names = frame["label_name"].astype(str).to_numpy()
    known = (labels >= 0) & (labels < len(classes))
    model_names = np.array(list(classes) + ["none"], dtype=object)[np.where(known, labels, len(classes))]
    bad = np.flatnonzero((labels != UNLABELLED) & (model_names != names))
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"{where}: row {row + 1} (image {frame['id'].iloc[row]!r}) has label {labels[row]} = "
                         f"{names[row]!r}, but the model's class {labels[row]} is {model_names[row]!r}; the "
                         f"model's classes {classes} are not this dataset's (classes.json)")


class TensorImageDataset(Dataset):
    """In-memory images (uint8 N x C x H x W) served as float tensors in [0, 1] with int64 labels.

    No normalisation here: the model owns its input statistics, so checkpoints stay self-contained.
    ``transform``, if given, receives and returns the float C x H x W tensor (augmentation).
    """

    def __init__(
        self,
        images_uint8: np.ndarray | torch.Tensor,
        labels: np.ndarray | torch.Tensor,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        images = torch.as_tensor(images_uint8)  # shares memory with a numpy array: no copy
        labels = torch.as_tensor(labels, dtype=torch.int64)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 N x C x H x W, got {images.dtype} {tuple(images.shape)}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"labels must be 1-D with one per image: {tuple(labels.shape)} for {len(images)} images")
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.images[index].float().div_(255.0)
        if self.transform is not None:
            x = self.transform(x)
        return x, self.labels[index]
