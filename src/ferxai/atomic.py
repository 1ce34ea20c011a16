"""Atomic file writes: a reader (or a resumed job) sees the previous file or the new one, never a
truncated one.

The data goes to a temporary sibling ``.<name>.<random>.tmp`` in the same folder (so the final
``os.replace`` is a rename within one file system), is fsynced, and is renamed over `path`. A
failed write removes its temporary file; a SIGKILL cannot, so the next successful write of the
same path removes such leftovers (`remove_leftovers`). That assumes one writer per path at a time,
which holds for Snakemake outputs (one job per output); callers with concurrent writers pass
``clean_leftovers=False``.

Standard library only: the light workflow steps (shard gathering, config validation) use it.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["remove_leftovers", "write_atomic", "write_bytes_atomic", "write_text_atomic"]

_ATTEMPTS = 100  # random names tried before giving up; with 48 random bits one clash is already rare


def _temporary_name(path: Path) -> str:
    return f".{path.name}.{os.urandom(6).hex()}.tmp"


def _open_temporary(path: Path) -> tuple[int, Path]:
    for _ in range(_ATTEMPTS):
        tmp = path.with_name(_temporary_name(path))
        try:
            # 0o666 filtered by the umask, as a plain open() would create it (mkstemp's 0o600
            # would make results unreadable to the rest of a group sharing a project folder).
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        return fd, tmp
    raise FileExistsError(f"no free temporary name beside {path} after {_ATTEMPTS} tries")


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself survive a power loss, where the platform allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems (and Windows) cannot fsync a folder; the data is synced anyway
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *,
                 clean_leftovers: bool = True) -> Path:
    """Call ``write(fh)`` on a binary file that becomes `path` only once `write` has returned.

    Creates the parent folders. On any exception (KeyboardInterrupt included) the temporary file
    is removed and `path` is left as it was. Returns `path`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _open_temporary(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    if clean_leftovers:
        remove_leftovers(path)
    return path


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes, *, clean_leftovers: bool = True) -> Path:
    """`data` to `path` atomically (see `write_atomic`)."""
    return write_atomic(path, lambda fh: fh.write(data), clean_leftovers=clean_leftovers)


def write_text_atomic(path: str | os.PathLike[str], text: str, encoding: str = "utf-8", *,
                      clean_leftovers: bool = True) -> Path:
    """`text` to `path` atomically (see `write_atomic`)."""
    return write_bytes_atomic(path, text.encode(encoding), clean_leftovers=clean_leftovers)


def remove_leftovers(path: str | os.PathLike[str]) -> None:
    """Delete the temporary siblings (``.<name>.*.tmp``) that killed writes of `path` left."""
    path = Path(path)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
