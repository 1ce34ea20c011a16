"""The experiment's zarr v3 store of images, predictions and attributions
(`results/<exp>/explain/store.zarr`); the per-job `.npz` files are `ferxai.explain.shard_files`.

zarr format 3, readable with plain `zarr.open_group(path)` and with
`xarray.open_zarr(path)` / `xarray.open_zarr(path, group="attributions/<condition>")`
(every array carries zarr v3 `dimension_names`; metadata is consolidated)::

    store.zarr/                     attrs: class_names, num_samples, store_version, versions, ...
      images            (sample, channel, y, x)  uint8 (or float32 in [0, 1]) as explained (clean)
      labels            (sample,)                int64 true class
      predictions       (sample,)                int64 predicted class
      probabilities     (sample, class)          float32 softmax
      ids               (sample,)                str   image ids (may contain "/")
      masks, has_mask   (sample, y, x), (sample,) bool ground-truth masks, where the data has them
      sets              (sample,)                str   e.g. "high_confidence;misclassified"
      class_names       (class,)                 str
      mean_image        (channel, y, x)          float32 in [0, 1], mean of the TRAIN split
      class_mean_images (class, channel, y, x)   float32 in [0, 1], per-class TRAIN means (NaN: no image)
      attributions/
        <condition>/                e.g. clean, gaussian-0.1
          <method>      (sample, y, x)           float32   attrs: method, condition, signed,
                                                           library, params, model (the checkpoint
                                                           that made the maps), versions, ...

Per-sample arrays are chunked one image per chunk and grouped into zarr shards of a few MiB
(one file per shard, so a 7k-image store is not 7k files per array, yet single images read
cheaply). Strings use zarr's variable-length UTF-8 dtype (falling back to fixed-width unicode on
a zarr without it).

zarr is imported inside the functions: `ferxai.explain.collect` imports this module, and its
gather step (a fresh process per method) never opens a store.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ferxai.explain.jsonable import jsonable

log = logging.getLogger(__name__)

STORE_VERSION = 1
SHARD_TARGET_BYTES = 4 * 2**20  # zarr shard (file) size aimed at for per-sample arrays


# -- helpers ----------------------------------------------------------------------------------

def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for pkg in ("ferxai", "zarr", "numpy"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            continue
    return out


def _check_node_name(name: str, what: str) -> str:
    name = str(name)
    if not name or name in (".", "..") or "/" in name or name.startswith("__"):
        raise ValueError(f"{what} {name!r} cannot name a zarr node (empty, '/', '.', '..' or leading '__')")
    return name


def _strings(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values]


def consolidate(path: str | os.PathLike) -> None:
    import zarr

    with warnings.catch_warnings():
        # zarr-python warns that consolidated metadata is not (yet) in the v3 spec; xarray
        # prefers it and warns without it, so the store has it and is re-consolidated per write.
        warnings.filterwarnings("ignore", message=".*[Cc]onsolidated metadata.*")
        zarr.consolidate_metadata(os.fspath(path))


def _per_sample_layout(shape: tuple[int, ...], itemsize: int) -> dict[str, Any]:
    """One sample per chunk; chunks grouped into shards of about SHARD_TARGET_BYTES."""
    n, rest = shape[0], tuple(int(s) for s in shape[1:])
    chunks = (1, *[max(1, s) for s in rest])
    per_sample = max(1, int(np.prod(rest, dtype=np.int64)) * itemsize)
    k = int(min(max(n, 1), max(1, SHARD_TARGET_BYTES // per_sample)))
    layout: dict[str, Any] = {"chunks": chunks}
    if k > 1:
        layout["shards"] = (k, *chunks[1:])
    return layout


def create_array(group: Any, name: str, data: np.ndarray, dims: Sequence[str], per_sample: bool,
            attrs: Mapping[str, Any] | None = None) -> Any:
    data = np.ascontiguousarray(data)
    if per_sample and data.ndim >= 2:
        layout = _per_sample_layout(data.shape, data.dtype.itemsize)
    else:
        layout = {"chunks": tuple(max(1, s) for s in data.shape) or ()}
    arr = group.create_array(name, shape=data.shape, dtype=data.dtype, dimension_names=tuple(dims),
                             overwrite=True, **layout)
    if data.size:
        arr[...] = data
    if attrs:
        arr.attrs.update(jsonable(dict(attrs)))
    return arr


def create_strings(group: Any, name: str, values: Sequence[str], dims: Sequence[str]) -> Any:
    values = _strings(values)
    chunks = (max(1, len(values)),)
    arr = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zarr < 3.1 flags vlen strings as not yet specified
            arr = group.create_array(name, shape=(len(values),), dtype=str, chunks=chunks,
                                     dimension_names=tuple(dims), overwrite=True)
            if values:
                arr[...] = np.array(values, dtype=object)
    except Exception as exc:  # no variable-length strings in this zarr: fixed-width unicode
        log.debug("variable-length strings unavailable for %s (%s); using fixed width", name, exc)
        width = max([1, *(len(v) for v in values)])
        arr = group.create_array(name, shape=(len(values),), dtype=f"<U{width}", chunks=chunks,
                                 dimension_names=tuple(dims), overwrite=True)
        if values:
            arr[...] = np.array(values, dtype=f"<U{width}")
    return arr


# -- the store ----------------------------------------------------------------------------------

def create_store(
    path: str | os.PathLike,
    images: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    probabilities: np.ndarray,
    ids: Sequence[str],
    sets: Sequence[str],
    class_names: Sequence[str],
    mean_image: np.ndarray,
    class_means: np.ndarray,
    attrs: Mapping[str, Any] | None = None,
    masks: np.ndarray | None = None,
    has_mask: np.ndarray | None = None,
) -> Any:
    """Write a new store at `path` (replacing one there) with everything but the attributions.

    `masks` (N, H, W) bool with `has_mask` (N,) bool: each image's ground-truth mask at the
    explained size, the one the localisation scores use (ferxai.explain.pipeline.ground_truth_masks).

    `images` (N, C, H, W) uint8 are kept as uint8, any other dtype is stored as float32 in [0, 1].
    `attrs` (JSON-serialisable: experiment, model, target...) go into the root attributes.
    Returns the zarr group (read-write).
    """
    import zarr

    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    n, c, h, w = images.shape
    class_names = _strings(class_names)
    k = len(class_names)
    labels = np.asarray(labels).reshape(-1).astype(np.int64)
    predictions = np.asarray(predictions).reshape(-1).astype(np.int64)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    ids, sets = _strings(ids), _strings(sets)
    mean_image = np.asarray(mean_image, dtype=np.float32)
    class_means = np.asarray(class_means, dtype=np.float32)
    checks = {
        "labels": (labels.shape, (n,)),
        "predictions": (predictions.shape, (n,)),
        "probabilities": (probabilities.shape, (n, k)),
        "ids": ((len(ids),), (n,)),
        "sets": ((len(sets),), (n,)),
        "mean_image": (mean_image.shape, (c, h, w)),
        "class_means": (class_means.shape, (k, c, h, w)),
    }
    for name, (got, want) in checks.items():
        if tuple(got) != want:
            raise ValueError(f"{name}: shape {tuple(got)}, expected {want} "
                             f"({n} images of {c}x{h}x{w}, {k} classes)")
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        has_mask = np.ones(n, dtype=bool) if has_mask is None else np.asarray(has_mask, dtype=bool).reshape(-1)
        if masks.shape != (n, h, w) or has_mask.shape != (n,):
            raise ValueError(f"masks: shape {masks.shape} (has_mask {has_mask.shape}), expected {(n, h, w)} "
                             f"(and ({n},))")
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    if images.dtype != np.uint8:
        images = images.astype(np.float32)

    root = zarr.open_group(os.fspath(path), mode="w", zarr_format=3)
    create_array(root, "images", images, ("sample", "channel", "y", "x"), per_sample=True)
    create_array(root, "labels", labels, ("sample",), per_sample=False)
    create_array(root, "predictions", predictions, ("sample",), per_sample=False)
    create_array(root, "probabilities", probabilities, ("sample", "class"), per_sample=False)
    create_strings(root, "ids", ids, ("sample",))
    create_strings(root, "sets", sets, ("sample",))
    create_strings(root, "class_names", class_names, ("class",))
    create_array(root, "mean_image", mean_image, ("channel", "y", "x"), per_sample=False,
            attrs={"description": "mean of the train split, [0, 1]"})
    create_array(root, "class_mean_images", class_means, ("class", "channel", "y", "x"), per_sample=False,
            attrs={"description": "per-class means of the train split, [0, 1]; NaN for a class without images"})
    if masks is not None:
        create_array(root, "masks", masks, ("sample", "y", "x"), per_sample=True,
                attrs={"description": "ground-truth mask at the explained size; all False where has_mask is False"})
        create_array(root, "has_mask", has_mask, ("sample",), per_sample=False)
    root.require_group("attributions")
    root.attrs.update(jsonable({
        **dict(attrs or {}),
        "class_names": class_names,
        "num_samples": n,
        "image_dtype": str(images.dtype),
        "store_version": STORE_VERSION,
        "versions": _versions(),
        "layout": "attributions/<condition>/<method>: (sample, y, x) float32",
    }))
    consolidate(path)
    return root


def open_store(path: str | os.PathLike, mode: str = "r") -> Any:
    """The store's root zarr group (read-only by default)."""
    import zarr

    if not (Path(path) / "zarr.json").is_file():
        raise FileNotFoundError(f"{path}: no zarr v3 store here (missing zarr.json)")
    # Not the consolidated view: it is only as fresh as the last `_consolidate`.
    return zarr.open_group(os.fspath(path), mode=mode, use_consolidated=False)


def write_attributions(
    path: str | os.PathLike,
    condition: str,
    method: str,
    maps: np.ndarray,
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write (or replace) `attributions/<condition>/<method>`: maps (N, H, W) as float32.

    `attrs` (method params, library, signed, ... — JSON-serialisable) are stored on the array,
    with `method`, `condition` and `versions` (ferxai, zarr, numpy; entries given win) added.
    """
    condition = _check_node_name(condition, "condition")
    method = _check_node_name(method, "method")
    root = open_store(path, mode="r+")
    n, _, h, w = root["images"].shape
    maps = np.asarray(maps, dtype=np.float32)
    if maps.shape != (n, h, w):
        raise ValueError(f"attributions {condition}/{method}: shape {maps.shape}, expected {(n, h, w)} "
                         f"(one {h}x{w} map per stored image)")
    attrs = dict(attrs or {})
    attrs["versions"] = {**_versions(), **dict(attrs.get("versions") or {})}
    attrs.update(method=method, condition=condition)
    group = root.require_group("attributions").require_group(condition)
    create_array(group, method, maps, ("sample", "y", "x"), per_sample=True, attrs=attrs)
    consolidate(path)


def list_attributions(path: str | os.PathLike) -> list[tuple[str, str]]:
    """(condition, method) pairs in the store, sorted."""
    root = open_store(path)
    if "attributions" not in root:
        return []
    attributions = root["attributions"]
    return sorted((cond, meth) for cond, group in attributions.groups() for meth, _ in group.arrays())


def read_attributions(path: str | os.PathLike, condition: str, method: str) -> np.ndarray:
    """attributions/<condition>/<method> as a float32 (N, H, W) array."""
    root = open_store(path)
    key = f"attributions/{condition}/{method}"
    if key not in root:
        have = ", ".join(f"{c}/{m}" for c, m in list_attributions(path)) or "none"
        raise KeyError(f"{path}: no attributions for condition {condition!r}, method {method!r} (have: {have})")
    return np.asarray(root[key][...], dtype=np.float32)


def read_strings(path: str | os.PathLike, name: str) -> list[str]:
    """A string array of the store (ids, sets, class_names) as a list of str."""
    return _strings(open_store(path)[name][...].tolist())


def read_samples(path: str | os.PathLike):
    """The store's per-sample table: id, label, prediction, confidence, set, prob_<class>..."""
    import pandas as pd

    root = open_store(path)
    classes = read_strings(path, "class_names")
    probs = np.asarray(root["probabilities"][...])
    frame = pd.DataFrame({
        "id": read_strings(path, "ids"),
        "label": np.asarray(root["labels"][...]),
        "prediction": np.asarray(root["predictions"][...]),
        "confidence": probs.max(1) if probs.size else np.zeros(len(probs), np.float32),
        "set": read_strings(path, "sets"),
    })
    for j, name in enumerate(classes):
        frame[f"prob_{name}"] = probs[:, j]
    return frame
