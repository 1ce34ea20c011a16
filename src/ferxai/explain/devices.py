"""One GPU per job on a multi-GPU machine, by file locks.

Snakemake's `--resources gpu=N` limits how many GPU jobs run at once but does not say *which* GPU
each gets. Each job takes the first free per-device lock and sets CUDA_VISIBLE_DEVICES to it, so
`snakemake --resources gpu=4 -j 8` keeps four GPUs busy with one job each. Locks are advisory
`fcntl` locks: the kernel releases them when a job dies, so a killed job never holds a GPU.

The locks live in a folder of the user's own (`default_lock_dir`): a machine-wide folder in /tmp
would belong to whoever ran first, and another user's jobs could not open its locks. Users who
share GPUs and want to coordinate can point FERXAI_GPU_LOCK_DIR at one folder they all can write.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

LOCK_DIR_ENV = "FERXAI_GPU_LOCK_DIR"


class LockDirError(PermissionError):
    """The GPU lock folder cannot be used; the message names it and how to choose another."""


def default_lock_dir() -> Path:
    """$FERXAI_GPU_LOCK_DIR if set; else `$XDG_RUNTIME_DIR/ferxai/gpu-locks` when that runtime
    folder exists and is writable; else `<temp dir>/ferxai-<uid>/gpu-locks`. Never in the home
    folder, which may be on a network file system where `flock` is not reliable."""
    explicit = os.environ.get(LOCK_DIR_ENV)
    if explicit:
        return Path(explicit)
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime) and os.access(runtime, os.W_OK | os.X_OK):
        return Path(runtime) / "ferxai" / "gpu-locks"
    return _private_temp_root() / "gpu-locks"


def _private_temp_root() -> Path:
    return Path(tempfile.gettempdir()) / f"ferxai-{os.getuid()}"


def _unusable(folder: Path, why: str) -> LockDirError:
    return LockDirError(f"cannot use {folder} for the GPU locks: {why}. Set {LOCK_DIR_ENV} to a folder "
                        "of your own (or pass gpu_slot(lock_dir=...))")


def _prepare_lock_dir(lock_dir: Path) -> None:
    """Create `lock_dir`; for the per-user temp folder (mode 0o700) make sure it is really ours.

    A folder given explicitly is created with the umask's mode, since users point
    FERXAI_GPU_LOCK_DIR at one folder to share a machine's GPUs."""
    private = _private_temp_root()
    try:
        if lock_dir.parent != private:
            lock_dir.mkdir(parents=True, exist_ok=True)
            return
        # Anyone can create names in /tmp: a folder or link put there by another user first
        # would hand them our locks (or let them make us wait forever).
        with contextlib.suppress(FileExistsError):
            private.mkdir(mode=0o700)
        info = os.lstat(private)
        if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
            raise _unusable(private, "it is not a folder but a link or a file")
        if info.st_uid != os.getuid():
            raise _unusable(private, f"it belongs to uid {info.st_uid}, not to you (uid {os.getuid()})")
        lock_dir.mkdir(mode=0o700, exist_ok=True)
    except LockDirError:
        raise
    except OSError as exc:
        raise _unusable(lock_dir, exc.strerror or str(exc)) from exc


def _open_lock(path: Path) -> int:
    try:
        # Read-only is enough for flock, so a lock file created by another user in a folder shared
        # on purpose still opens; the mode lets them open ours.
        return os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as exc:
        raise _unusable(path.parent, f"{path.name}: {exc.strerror or exc}") from exc


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
    lock_dir: str | Path | None = None,
    timeout: float = 3600.0,
    poll: float = 0.5,
) -> Iterator[str | None]:
    """Hold one free GPU for the duration; yields its id (None when there is no GPU).

    With one visible device or none there is nothing to choose and no lock is taken (a SLURM job
    that was given one GPU already owns it). `lock_dir` defaults to `default_lock_dir()`; jobs
    that should share GPUs must use the same folder. Raises LockDirError when it cannot be used.
    """
    devices = visible_devices(device_count)
    if len(devices) <= 1:
        yield devices[0] if devices else None
        return
    lock_dir = default_lock_dir() if lock_dir is None else Path(lock_dir)
    _prepare_lock_dir(lock_dir)
    deadline = time.monotonic() + timeout
    while True:
        for dev in devices:
            lock = lock_dir / f"gpu{dev}.lock"
            fd = _open_lock(lock)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            previous = os.environ.get("CUDA_VISIBLE_DEVICES")
            os.environ["CUDA_VISIBLE_DEVICES"] = dev
            log.info("using GPU %s (lock %s)", dev, lock)
            try:
                yield dev
            finally:
                if previous is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = previous
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"no free GPU among {devices} after {timeout:.0f} s (locks in {lock_dir})")
        time.sleep(poll)
