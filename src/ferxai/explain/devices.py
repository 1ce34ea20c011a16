"""One GPU per job on a multi-GPU machine, by file locks.

Snakemake's `--resources gpu=N` limits how many GPU jobs run at once but does not say *which* GPU
each gets. Each job takes the first free per-device lock and sets CUDA_VISIBLE_DEVICES to it, so
`snakemake --resources gpu=4 -j 8` keeps four GPUs busy with one job each. Locks are advisory
`fcntl` locks: the kernel releases them when a job dies, so a killed job never holds a GPU.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

DEFAULT_LOCK_DIR = Path(tempfile.gettempdir()) / "ferxai-gpu-locks"


def visible_devices(device_count: int | None = None) -> list[str]:
    """Device ids this process may use: CUDA_VISIBLE_DEVICES if a scheduler set it, else 0..n-1."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [d.strip() for d in env.split(",") if d.strip() and d.strip() != "-1"]
    if device_count is None:
        try:
            import torch

            device_count = torch.cuda.device_count()
        except ImportError:
            device_count = 0
    return [str(i) for i in range(device_count)]


@contextlib.contextmanager
def gpu_slot(
    device_count: int | None = None,
    lock_dir: str | Path = DEFAULT_LOCK_DIR,
    timeout: float = 3600.0,
    poll: float = 0.5,
) -> Iterator[str | None]:
    """Hold one free GPU for the duration; yields its id (None when there is no GPU).

    With one visible device or none there is nothing to choose and no lock is taken (a SLURM job
    that was given one GPU already owns it).
    """
    devices = visible_devices(device_count)
    if len(devices) <= 1:
        yield devices[0] if devices else None
        return
    lock_dir = Path(lock_dir)
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout
    while True:
        for dev in devices:
            handle = open(lock_dir / f"gpu{dev}.lock", "w")
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            previous = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = dev
            log.info("using GPU %s (lock %s)", dev, handle.name)
            try:
                yield dev
            finally:
                if previous is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = previous
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {devices} after {timeout:.0f} s (locks in {lock_dir})")
        time.sleep(poll)
