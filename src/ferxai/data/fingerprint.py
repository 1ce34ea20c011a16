"""Cheap change detection for image folders that are too large to list as Snakemake inputs."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


def folder_fingerprint(root: str | Path) -> str:
    """Hash of every file's relative path, size and mtime under `root` ("" if it does not exist).

    Reading image bytes would be exact but costs minutes on FER-scale folders; a stat per file
    takes well under a second for tens of thousands of files.
    """
    root = Path(root)
    if not root.is_dir():
        return ""
    digest = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            st = os.stat(full)
            rel = os.path.relpath(full, root)
            digest.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]
