"""Shard files: the `.npz` outputs of one (condition, method, shard) attribution job.

`save_shard(path, maps, ids, meta)` writes a compressed `.npz` with `maps` (n, H, W) float32,
`ids` (n,) unicode and `meta` (one JSON string). `meta` must hold `start` (index in the
selection of the shard's first image) and `total` (images in the whole selection); `stop` is
added. Optional extra per-image arrays (e.g. targets) ride along (`arrays=`, stored under
`extra_<name>`). `gather_shards(paths)` puts shards back in selection order and refuses a set with a gap
(naming the missing shard), an overlap, or shards that disagree on condition, method,
parameters... The gathered result can be written with `save_shard` again (start 0).

Numpy only (no zarr, no torch): the gather job is a fresh process that needs nothing else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ferxai.atomic import write_atomic
from ferxai.explain.jsonable import jsonable
from ferxai.explain.shards import shard_ranges

SHARD_REQUIRED = ("start", "total")
PER_SHARD_KEYS = ("start", "stop", "shard")
EXTRA_PREFIX = "extra_"  # npz key prefix of save_shard's extra per-image arrays
# Keys that, when present, must agree between the shards of one gather.
CONSISTENT_KEYS = ("total", "condition", "method", "library", "signed", "params", "output",
                   "target", "target_class", "seed", "shard_count")


class ShardError(ValueError):
    """Shards that do not add up to the selection; the message names the shard(s)."""


def _strings(values: Iterable[Any]) -> list[str]:
    return [str(v) for v in values]


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
    meta = jsonable(dict(meta))
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
    # Into an open file: given a path without ".npz", np.savez_* would append the suffix.
    write_atomic(path, lambda fh: np.savez_compressed(
        fh, maps=maps, ids=np.array(ids, dtype=f"<U{max([1, *map(len, ids)])}"),
        meta=np.array(json.dumps(meta, sort_keys=True)), **extras))


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


def load_shard_meta(path: str | os.PathLike) -> dict[str, Any]:
    """The meta of a shard file alone (an npz member is read only when asked for: the maps stay
    on disk)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        if "meta" not in data.files:
            raise ShardError(f"{path}: not a shard file (missing ['meta'])")
        return json.loads(str(data["meta"]))


def load_shard_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The extra per-image arrays saved with a shard (`save_shard(..., arrays=...)`)."""
    with np.load(os.fspath(path), allow_pickle=False) as data:
        return {k[len(EXTRA_PREFIX):]: data[k] for k in data.files if k.startswith(EXTRA_PREFIX)}


def _shard_label(start: int, stop: int, meta: Mapping[str, Any]) -> str:
    count, total = meta.get("shard_count"), meta.get("total")
    if isinstance(count, int) and count > 0 and isinstance(total, int):
        names = ", ".join(f"shard-{k}" for k, (s, e) in enumerate(shard_ranges(total, count))
                          if s < stop and e > start)
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
    # a failed shard (ExplainSettings.on_error) records what was asked, not what a method ran
    described = [item for item in loaded if not item[4].get("failed")]
    for key in CONSISTENT_KEYS:
        values = {json.dumps(m.get(key), sort_keys=True) for *_, m in described if key in m}
        present = [p for _, p, _, _, m in described if key in m]
        if len(values) > 1 or (values and len(present) != len(described)):
            raise ShardError(f"shards disagree on {key!r}: " + "; ".join(
                f"{p}: {m.get(key, '<missing>')!r}" for _, p, _, _, m in described))
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
