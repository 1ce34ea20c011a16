"""Where attributions live: per-shard `.npz` files, and one zarr v3 store per experiment.

Shard files (the Snakemake outputs of one (condition, method, shard) job)
-------------------------------------------------------------------------
`save_shard(path, maps, ids, meta)` writes a compressed `.npz` with `maps` (n, H, W) float32,
`ids` (n,) unicode and `meta` (one JSON string). `meta` must hold `start` (index in the
selection of the shard's first image) and `total` (images in the whole selection); `stop` is
added. Optional extra per-image arrays (e.g. targets) ride along (`arrays=`, stored under
`extra_<name>`). `gather_shards(paths)` puts shards back in selection order and refuses a set with a gap
(naming the missing shard), an overlap, or shards that disagree on condition, method,
parameters... The gathered result can be written with `save_shard` again (start 0).

The store (`results/<exp>/explain/store.zarr`)
---------------------------------------------
zarr format 3, readable with plain `zarr.open_group(path)` and with
`xarray.open_zarr(path)` / `xarray.open_zarr(path, group="attributions/<condition>")`
(every array carries zarr v3 `dimension_names`; metadata is consolidated)::

    store.zarr/                     attrs: class_names, num_samples, store_version, versions, ...
      images            (sample, channel, y, x)  uint8 (or float32 in [0, 1]) as explained (clean)
      labels            (sample,)                int64 true class
      predictions       (sample,)                int64 predicted class
      probabilities     (sample, class)          float32 softmax
      ids               (sample,)                str   image ids (may contain "/")
      sets              (sample,)                str   e.g. "high_confidence;misclassified"
      class_names       (class,)                 str
      mean_image        (channel, y, x)          float32 in [0, 1], mean of the TRAIN split
      class_mean_images (class, channel, y, x)   float32 in [0, 1], per-class TRAIN means (NaN: no image)
      attributions/
        <condition>/                e.g. clean, gaussian-0.1
          <method>      (sample, y, x)           float32   attrs: method, condition, signed,
                                                           library, params, versions, ...

Per-sample arrays are chunked one image per chunk and grouped into zarr shards of a few MiB
(one file per shard, so a 7k-image store is not 7k files per array, yet single images read
cheaply). Strings use zarr's variable-length UTF-8 dtype (falling back to fixed-width unicode on
a zarr without it).
"""

from __future__ import annotations

import io
import json
import logging
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

STORE_VERSION = 1
SHARD_TARGET_BYTES = 4 * 2**20  # zarr shard (file) size aimed at for per-sample arrays
SHARD_REQUIRED = ("start", "total")
PER_SHARD_KEYS = ("start", "stop", "shard")
EXTRA_PREFIX = "extra_"  # npz key prefix of save_shard's extra per-image arrays
# Keys that, when present, must agree between the shards of one gather.
CONSISTENT_KEYS = ("total", "condition", "method", "library", "signed", "params", "output",
                   "target", "target_class", "seed", "shard_size")


class ShardError(ValueError):
    """Shards that do not add up to the selection; the message names the shard(s)."""


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


def _jsonable(value: Any) -> Any:
    """Round-trip through JSON so attrs and meta hold only plain types (numpy scalars allowed in)."""
    def default(obj: Any) -> Any:
        if isinstance(obj, np.generic):
            return obj.item()
        if isinstance(obj, np.ndarray):
            return obj.tolist()
        if isinstance(obj, Path):
            return str(obj)
        if isinstance(obj, (set, frozenset)):
            return sorted(obj)
        raise TypeError(f"{type(obj).__name__} is not JSON serialisable: {obj!r}")
    return json.loads(json.dumps(value, default=default))


def _check_node_name(name: str, what: str) -> str:
    name = str(name)
    if not name or name in (".", "..") or "/" in name or name.startswith("__"):
        raise ValueError(f"{what} {name!r} cannot name a zarr node (empty, '/', '.', '..' or leading '__')")
    return name


def _strings(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values]


def _consolidate(path: str | os.PathLike) -> None:
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


def _create(group: Any, name: str, data: np.ndarray, dims: Sequence[str], per_sample: bool,
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
        arr.attrs.update(_jsonable(dict(attrs)))
    return arr


def _create_strings(group: Any, name: str, values: Sequence[str], dims: Sequence[str]) -> Any:
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


# -- mean images ------------------------------------------------------------------------------

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
) -> Any:
    """Write a new store at `path` (replacing one there) with everything but the attributions.

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
    if len(set(ids)) != len(ids):
        raise ValueError("ids must be unique")
    if images.dtype != np.uint8:
        images = images.astype(np.float32)

    root = zarr.open_group(os.fspath(path), mode="w", zarr_format=3)
    _create(root, "images", images, ("sample", "channel", "y", "x"), per_sample=True)
    _create(root, "labels", labels, ("sample",), per_sample=False)
    _create(root, "predictions", predictions, ("sample",), per_sample=False)
    _create(root, "probabilities", probabilities, ("sample", "class"), per_sample=False)
    _create_strings(root, "ids", ids, ("sample",))
    _create_strings(root, "sets", sets, ("sample",))
    _create_strings(root, "class_names", class_names, ("class",))
    _create(root, "mean_image", mean_image, ("channel", "y", "x"), per_sample=False,
            attrs={"description": "mean of the train split, [0, 1]"})
    _create(root, "class_mean_images", class_means, ("class", "channel", "y", "x"), per_sample=False,
            attrs={"description": "per-class means of the train split, [0, 1]; NaN for a class without images"})
    root.require_group("attributions")
    root.attrs.update(_jsonable({
        **dict(attrs or {}),
        "class_names": class_names,
        "num_samples": n,
        "image_dtype": str(images.dtype),
        "store_version": STORE_VERSION,
        "versions": _versions(),
        "layout": "attributions/<condition>/<method>: (sample, y, x) float32",
    }))
    _consolidate(path)
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
    _create(group, method, maps, ("sample", "y", "x"), per_sample=True, attrs=attrs)
    _consolidate(path)


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


# -- shard files --------------------------------------------------------------------------------

def save_shard(path: str | os.PathLike, maps: np.ndarray, ids: Sequence[str], meta: Mapping[str, Any],
               arrays: Mapping[str, np.ndarray] | None = None) -> None:
    """Write one shard `.npz` (compressed, atomically). See the module docstring for `meta`.

    `arrays` are optional extra per-image arrays (e.g. ``{"targets": ...}``), one row per map;
    `load_shard_arrays` reads them back and `gather_shards(..., with_arrays=True)` concatenates them.
    """
    maps = np.asarray(maps, dtype=np.float32)
    ids = _strings(ids)
    if maps.ndim != 3:
        raise ValueError(f"shard maps must be (n, H, W), got shape {maps.shape}")
    if len(ids) != len(maps):
        raise ValueError(f"shard has {len(maps)} maps but {len(ids)} ids")
    missing = [key for key in SHARD_REQUIRED if key not in meta]
    if missing:
        raise ValueError(f"shard meta misses {missing} (index of the first image in the selection, "
                         "and the selection's size)")
    meta = _jsonable(dict(meta))
    start, total = meta["start"], meta["total"]
    if not (isinstance(start, int) and isinstance(total, int) and 0 <= start and start + len(ids) <= total):
        raise ValueError(f"shard meta: start {start!r} + {len(ids)} images does not fit total {total!r}")
    meta["stop"] = start + len(ids)
    extras = {}
    for name, values in dict(arrays or {}).items():
        values = np.asarray(values)
        if values.dtype == object:
            raise ValueError(f"shard array {name!r}: object arrays cannot be stored without pickle")
        if values.ndim == 0 or len(values) != len(ids):
            raise ValueError(f"shard array {name!r}: shape {values.shape}, expected one row per image ({len(ids)})")
        extras[EXTRA_PREFIX + str(name)] = values
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # np.savez_* would append ".npz" to a path without it; write bytes instead
    np.savez_compressed(buffer, maps=maps, ids=np.array(ids, dtype=f"<U{max([1, *map(len, ids)])}"),
                        meta=np.array(json.dumps(meta, sort_keys=True)), **extras)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)


def load_shard(path: str | os.PathLike) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """(maps (n, H, W) float32, ids, meta) of a file written by `save_shard`."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        missing = [k for k in ("maps", "ids", "meta") if k not in data.files]
        if missing:
            raise ShardError(f"{path}: not a shard file (missing {missing})")
        maps = data["maps"].astype(np.float32, copy=False)
        ids = _strings(data["ids"].tolist())
        meta = json.loads(str(data["meta"]))
    return maps, ids, meta


def load_shard_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The extra per-image arrays saved with a shard (`save_shard(..., arrays=...)`)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return {k[len(EXTRA_PREFIX):]: data[k] for k in data.files if k.startswith(EXTRA_PREFIX)}


def _shard_label(start: int, stop: int, meta: Mapping[str, Any]) -> str:
    size = meta.get("shard_size")
    if isinstance(size, int) and size > 0:
        first, last = start // size, (stop - 1) // size
        names = ", ".join(f"shard-{k}" for k in range(first, last + 1))
        return f"{names} (images {start}..{stop - 1})"
    return f"the shard(s) with images {start}..{stop - 1}"


def gather_shards(
    paths: Sequence[str | os.PathLike],
    expected_ids: Sequence[str] | None = None,
    with_arrays: bool = False,
) -> tuple[np.ndarray, list[str], dict[str, Any]] | tuple[np.ndarray, list[str], dict[str, Any], dict[str, np.ndarray]]:
    """Concatenate shards in selection order: (maps (N, H, W), ids, meta), plus the
    concatenated extra arrays as a 4th item with `with_arrays=True`.

    Raises ShardError for a missing shard (named, with its image range), overlapping shards,
    shards that disagree on any of CONSISTENT_KEYS, or ids that differ from `expected_ids`.
    `meta` holds the keys equal in every shard, `num_shards`, and `shards` (each shard's own
    meta with its path) — per-shard values such as timings stay there.
    """
    if not paths:
        raise ShardError("no shard files to gather")
    loaded = []
    for p in paths:
        maps, ids, meta = load_shard(p)
        loaded.append((int(meta["start"]), str(p), maps, ids, meta))
    loaded.sort(key=lambda item: (item[0], item[1]))
    first_meta = loaded[0][4]
    for key in CONSISTENT_KEYS:
        values = {json.dumps(m.get(key), sort_keys=True) for *_, m in loaded if key in m}
        present = [p for _, p, _, _, m in loaded if key in m]
        if len(values) > 1 or (values and len(present) != len(loaded)):
            raise ShardError(f"shards disagree on {key!r}: " + "; ".join(
                f"{p}: {m.get(key, '<missing>')!r}" for _, p, _, _, m in loaded))
    total = int(first_meta["total"])
    shapes = {tuple(maps.shape[1:]) for _, _, maps, _, _ in loaded if len(maps)}
    if len(shapes) > 1:
        raise ShardError(f"shards have maps of different sizes {sorted(shapes)}")
    pos = 0
    previous = None
    for start, p, maps, ids, meta in loaded:
        stop = start + len(ids)
        if start > pos:
            raise ShardError(f"missing {_shard_label(pos, start, first_meta)} of {total}: "
                             f"no shard file among {len(paths)} covers them")
        if start < pos:
            raise ShardError(f"shards overlap: {previous} and {p} both hold image {start}")
        pos, previous = stop, p
    if pos < total:
        raise ShardError(f"missing {_shard_label(pos, total, first_meta)} of {total}: "
                         f"no shard file among {len(paths)} covers them")
    if pos > total:
        raise ShardError(f"shards hold {pos} images but the selection has {total}")

    ids = [i for *_, shard_ids, _ in loaded for i in shard_ids]
    nonempty = [maps for _, _, maps, _, _ in loaded if len(maps)]
    if nonempty:
        maps = np.concatenate(nonempty, axis=0)
    else:
        maps = loaded[0][2]
    if expected_ids is not None:
        expected = _strings(expected_ids)
        if len(expected) != len(ids):
            raise ShardError(f"shards hold {len(ids)} images but the selection has {len(expected)}")
        for j, (got, want) in enumerate(zip(ids, expected)):
            if got != want:
                raise ShardError(f"image {j}: shard id {got!r} but the selection has {want!r} "
                                 "(shards from an older selection?)")
    metas = [m for *_, m in loaded]
    common = {key: value for key, value in first_meta.items()
              if key not in PER_SHARD_KEYS and all(m.get(key) == value for m in metas)}
    common["num_shards"] = len(loaded)
    common["shards"] = [{"path": p, **m} for _, p, _, _, m in loaded]
    if not with_arrays:
        return maps, ids, common
    extras = [load_shard_arrays(p) for _, p, _, _, _ in loaded]
    names = set().union(*extras)
    arrays = {}
    for name in sorted(names):
        lacking = [p for (_, p, _, _, _), e in zip(loaded, extras) if name not in e]
        if lacking:
            raise ShardError(f"array {name!r} is missing from shard(s) {lacking}")
        arrays[name] = np.concatenate([e[name] for e in extras], axis=0)
    return maps, ids, common, arrays
