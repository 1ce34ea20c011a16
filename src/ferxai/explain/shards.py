"""How a selection of images is cut into shards (one attribution job each), and how long a shard
takes on a cluster.

The number of shards is a setting (`explain.shards`), not derived from the selection's size: the
Snakefile then knows every job from the config alone, before any image is selected, so a dry run
lists the whole DAG and no step has to wait for Snakemake to re-evaluate it mid-run (a checkpoint).
The selection is split into that many contiguous shards whose sizes differ by at most one, the
larger first: shard 0, on which the preflight measures a method, is never smaller than another.

Plain Python on purpose: the Snakefile calls `shard_runtime_minutes` while it schedules, and every
`snakemake` command pays for what that imports.
"""

from __future__ import annotations

import math


def shard_runtime_minutes(sec_per_image: float, images: int, safety: float = 3.0, minimum: int = 2) -> int:
    """Cluster `runtime` (minutes) of a job explaining `images` images at the preflight's measured
    seconds per image, with `safety` x headroom for slower or busier nodes. Torch-free, so the
    Snakefile can compute it without importing the method libraries. A method recorded as failed
    has no measured time (NaN): its remaining jobs only write the record, so the minimum."""
    if not math.isfinite(float(sec_per_image)):
        return minimum
    return max(minimum, math.ceil(float(sec_per_image) * int(images) * safety / 60))


def _check_shard_args(n: int, shards: int) -> None:
    if int(n) != n or n < 0:
        raise ValueError(f"number of images must be an integer >= 0, got {n!r}")
    if int(shards) != shards or shards < 1:
        raise ValueError(f"shards must be an integer >= 1, got {shards!r}")


def shard_ranges(n: int, shards: int) -> list[tuple[int, int]]:
    """`shards` contiguous [start, stop) ranges covering 0..n exactly, sizes n // shards or one
    more (the larger first). With fewer images than shards the last ones are empty (start == stop)."""
    _check_shard_args(n, shards)
    n, shards = int(n), int(shards)
    base, extra = divmod(n, shards)
    ranges, start = [], 0
    for k in range(shards):
        stop = start + base + (1 if k < extra else 0)
        ranges.append((start, stop))
        start = stop
    return ranges


def shard_range(n: int, shards: int, shard: int) -> tuple[int, int]:
    """[start, stop) of shard number `shard` (0-based); an error names the valid range."""
    _check_shard_args(n, shards)
    if int(shard) != shard or not 0 <= shard < shards:
        raise ValueError(f"shard {shard!r} does not exist: explain.shards is {shards}, so shards 0..{shards - 1}")
    return shard_ranges(n, shards)[int(shard)]


def largest_shard(n: int, shards: int) -> int:
    """Images in the largest shard (shard 0): what one shard job's runtime is sized for."""
    start, stop = shard_range(n, shards, 0)
    return stop - start


__all__ = ["largest_shard", "shard_range", "shard_ranges", "shard_runtime_minutes"]
