"""How a selection of images is cut into shards (one attribution job each), and how long a shard
takes on a cluster.

Plain Python on purpose: the Snakefile calls these while it builds the DAG (shard counts for the
gather step's inputs, a shard job's `runtime` resource), and every `snakemake` command pays for
what that imports.
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


def _check_shard_args(n: int, shard_size: int) -> None:
    if int(n) != n or n < 0:
        raise ValueError(f"number of images must be an integer >= 0, got {n!r}")
    if int(shard_size) != shard_size or shard_size < 1:
        raise ValueError(f"shard_size must be an integer >= 1, got {shard_size!r}")


def shard_ranges(n: int, shard_size: int) -> list[tuple[int, int]]:
    """Contiguous [start, stop) ranges of at most `shard_size` images covering 0..n exactly.

    An empty selection still has one (empty) shard, (0, 0), so the workflow always has a file
    to gather (the Snakefile asks `num_shards` for the count).
    """
    _check_shard_args(n, shard_size)
    n, shard_size = int(n), int(shard_size)
    if n == 0:
        return [(0, 0)]
    return [(start, min(start + shard_size, n)) for start in range(0, n, shard_size)]


def num_shards(n: int, shard_size: int) -> int:
    """`len(shard_ranges(n, shard_size))`: ceil(n / shard_size), and 1 for n == 0."""
    _check_shard_args(n, shard_size)
    return max(1, -(-int(n) // int(shard_size)))


def shard_range(n: int, shard_size: int, shard: int) -> tuple[int, int]:
    """[start, stop) of shard number `shard` (0-based); an error names the valid range."""
    total = num_shards(n, shard_size)
    if int(shard) != shard or not 0 <= shard < total:
        raise ValueError(f"shard {shard!r} does not exist: {n} images in shards of {shard_size} "
                         f"give shards 0..{total - 1}")
    return shard_ranges(n, shard_size)[int(shard)]


__all__ = ["num_shards", "shard_range", "shard_ranges", "shard_runtime_minutes"]
