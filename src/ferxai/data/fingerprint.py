"""What the manifest rule depends on, worked out at DAG time: its input files and a fingerprint of
what cannot be an input (image folders, the images a user CSV lists).

Snakemake evaluates these for every call that has the manifest job in its DAG, dry runs included,
so they use only the standard library (no pandas) and stat files instead of reading them.
"""

from __future__ import annotations

import csv
import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ferxai.data.options import DIR, FILE, OptionError, path_options


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


def listed_files_fingerprint(csv_path: str | Path, column: str = "path") -> str:
    """Hash of whether each file a CSV's ``column`` lists exists, and its size and mtime.

    Relative paths are taken from the CSV's folder, as the csv adapter does; for a container
    reference (``file.csv#row=3``, ``file.npz#arr[0]``) the container is what is stat'ed. ""
    when the CSV is missing or has no such column (the adapter reports those).
    """
    csv_path = Path(csv_path)
    try:
        fh = open(csv_path, newline="", encoding="utf-8-sig", errors="replace")
    except OSError:
        return ""
    digest = hashlib.sha256()
    seen: dict[str, str] = {}
    with fh:
        reader = csv.reader(fh)
        header = [name.strip() for name in next(reader, [])]
        if column not in header:
            return ""
        at = header.index(column)
        for cells in reader:
            written = cells[at].strip() if at < len(cells) else ""
            if not written:
                continue
            if written not in seen:
                seen[written] = _stat_line(written if os.path.isabs(written) else os.fspath(csv_path.parent / written))
            digest.update(seen[written].encode())
    return digest.hexdigest()[:16]


def _stat_line(path: str) -> str:
    if not os.path.exists(path) and "#" in path:
        path = path.rsplit("#", 1)[0]  # a reference into a container file
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}\0missing\n"
    return f"{path}\0{st.st_size}\0{st.st_mtime_ns}\n"


def input_files(fmt: str, options: Mapping[str, Any]) -> dict[str, str]:
    """The file-valued options of a dataset (Snakemake inputs of its manifest), by option name.

    OptionError (with the option as ``key``) for a file or folder option that names nothing on
    disk: as a missing input, Snakemake would drop the manifest job and call a manifest built
    from the old path up to date.
    """
    files = {}
    for kind in (FILE, DIR):
        for name in path_options(fmt, kind):
            value = options.get(name)
            if not isinstance(value, str):
                continue
            exists = os.path.isfile(value) if kind == FILE else os.path.isdir(value)
            if not exists:
                noun = "file" if kind == FILE else "folder"
                raise OptionError(f"{noun} {value} does not exist (relative paths are taken from {os.getcwd()})",
                                  key=name)
            if kind == FILE:
                files[name] = value
    return files


def source_fingerprint(fmt: str, options: Mapping[str, Any]) -> str:
    """Fingerprint of what a dataset's adapter reads beyond its input files ("" for nothing).

    Folder options (image roots, mask folders): every file's name, size and mtime. The csv
    format: the same for every file its CSV lists, and for every mask its ``mask_column`` lists,
    so adding a missing image or mask, or replacing one, reruns the manifest.
    """
    parts = []
    for name in path_options(fmt, DIR):
        if isinstance(options.get(name), str):
            parts.append(f"{name}={folder_fingerprint(options[name])}")
    if fmt == "csv" and isinstance(options.get("path"), str):
        parts.append(f"listed={listed_files_fingerprint(options['path'])}")
        column = options.get("mask_column")
        if isinstance(column, str) and column.strip():
            parts.append(f"masks={listed_files_fingerprint(options['path'], column.strip())}")
    return ";".join(parts)
