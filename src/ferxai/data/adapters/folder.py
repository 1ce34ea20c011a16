"""Adapter for an image folder tree: one sub-folder per class, optionally under split folders.

Layouts handled::

    root/<class>/.../<image>              (CK+ Kaggle pack, RAF-DB-like)
    root/<split>/<class>/.../<image>      (FER2013 Kaggle folders: train/ and test/)

The layout is split-organised when every top-level folder is a split name (train, val, valid,
validation, test; any case). Images may sit any depth below their class folder.

Option ``masks`` gives ground-truth masks from a folder laid out like ``root``
(``<masks>/<rel>/<stem>.png`` for ``<root>/<rel>/<stem>.<ext>``); see ferxai.data.adapters.masks.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from ferxai.data.adapters import class_option, normalise_split
from ferxai.data.adapters.masks import MaskFolder
from ferxai.data.images import IMAGE_EXTENSIONS, decode_image_file
from ferxai.data.manifest import AdapterResult, ManifestError, pixel_fields
from ferxai.data.options import CKPLUS_SUBJECT_PATTERN, OptionError, compile_regex, option

# Folders that archivers add and that hold no real images (macOS resource forks).
_JUNK_DIRS = {"__MACOSX"}


def read_folder(
    root: str | os.PathLike,
    classes: Sequence[str] | None = None,
    subject_pattern: str | None = CKPLUS_SUBJECT_PATTERN,
    masks: str | os.PathLike | None = None,
) -> AdapterResult:
    """Manifest rows for every image under ``root``, labelled by its class folder.

    ``classes`` fixes the label order (default: sorted folder names); images in other folders are
    then rejected. ``subject_pattern`` is a regex with a ``subject`` group searched in the path
    relative to root ("/"-separated); None or "" leaves subjects empty. Ids are those relative
    paths. Undecodable or empty images, and images outside any class folder, are rejected; files
    that are not images by extension, hidden files and ``__MACOSX`` folders are listed in
    ``dropped``. With ``masks``, rows get a ``mask`` column: the path of the image's mask, or ""
    (see ferxai.data.adapters.masks for the layout and what a bad mask does).
    """
    class_list = class_option(classes, "folder")
    pattern = _compile_subject_pattern(subject_pattern)
    root_path = Path(root)
    if not root_path.is_dir():
        raise ManifestError(f"folder dataset: root {os.fspath(root)!r} is not a directory")
    split_dirs = _split_layout(root_path)
    result = AdapterResult()
    mask_folder = MaskFolder(masks, root_path, "folder", result) if masks is not None else None

    # (relative posix path, split, class folder or None when the file is not inside one)
    files: list[tuple[str, str, str | None]] = []
    for rel in _walk(root_path, result):
        parts = rel.split("/")
        split = ""
        if split_dirs and len(parts) > 1:
            split, parts = split_dirs[parts[0]], parts[1:]
        files.append((rel, split, parts[0] if len(parts) > 1 else None))

    if class_list is None:
        class_list = sorted({c for _, _, c in files if c is not None})
    index = {name: i for i, name in enumerate(class_list)}
    result.classes = class_list

    for rel, split, cls in files:
        source = os.fspath(root_path / rel)
        if cls is None:
            where = f"split folder {rel.split('/')[0]!r}" if split else "root"
            result.rejects.append({"source": source, "row": "",
                                   "reason": f"image directly in {where}, not inside a class folder"})
            continue
        if cls not in index:
            result.rejects.append({"source": source, "row": "",
                                   "reason": f"class folder {cls!r} is not in option 'classes' {class_list}"})
            continue
        try:
            pixels = decode_image_file(source)
        except (ValueError, OSError) as err:
            result.rejects.append({"source": source, "row": "", "reason": _short_reason(err, source)})
            continue
        match = pattern.search(rel) if pattern else None
        row = {
            "id": rel,
            "source": source,
            "label": index[cls],
            "label_name": cls,
            "subject": match["subject"] if match else "",
            "source_split": split,
            **pixel_fields(pixels),
        }
        if mask_folder is not None:
            row["mask"] = mask_folder.mask_for(rel, pixels, result)
        result.rows.append(row)
    if mask_folder is not None:
        mask_folder.report_unmatched([rel for rel, _, _ in files], result)
    return result


def _compile_subject_pattern(subject_pattern: str | None) -> re.Pattern[str] | None:
    try:
        return compile_regex(subject_pattern, option("folder", "subject_pattern"))
    except OptionError as err:
        raise ManifestError(f"folder dataset: {err}") from None


def _split_layout(root: Path) -> dict[str, str]:
    """{top folder: split} when every top-level folder is a split name; {} for a class layout."""
    tops = sorted(p.name for p in root.iterdir() if p.is_dir() and not _ignored_dir(p.name))
    splits = {name: normalise_split(name) for name in tops}
    named = {name: split for name, split in splits.items() if split}
    if not named:
        return {}
    others = [name for name, split in splits.items() if not split]
    if others:
        raise ManifestError(f"folder dataset {root}: top-level folders mix split names {sorted(named)} with "
                            f"other folders {others}; use either <split>/<class>/ or <class>/ throughout")
    if len(set(named.values())) != len(named):
        raise ManifestError(f"folder dataset {root}: several top-level folders name the same split: {sorted(named)}")
    return named


def _ignored_dir(name: str) -> bool:
    return name.startswith(".") or name in _JUNK_DIRS


def _walk(root: Path, result: AdapterResult) -> list[str]:
    """Paths of image files relative to root ("/"-joined), sorted; other files go to dropped."""
    found: list[str] = []
    seen = {os.path.realpath(root)}
    # Symlinked folders are followed (datasets are often assembled from links); `seen` stops loops.
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        keep = []
        for name in sorted(dirnames):
            full = os.path.join(dirpath, name)
            real = os.path.realpath(full)
            if _ignored_dir(name):
                result.dropped.append({"source": full, "row": "", "reason": "hidden or archiver folder"})
            elif real in seen:
                result.dropped.append({"source": full, "row": "", "reason": f"folder already read as {real}"})
            else:
                seen.add(real)
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            rel = rel_dir + name
            if name.startswith("."):
                reason = "hidden file"
            elif os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
                reason = f"not an image file (extension not in {', '.join(IMAGE_EXTENSIONS)})"
            else:
                found.append(rel)
                continue
            result.dropped.append({"source": os.fspath(Path(dirpath) / name), "row": "", "reason": reason})
    return sorted(found)


def _short_reason(err: Exception, source: str) -> str:
    """The error text without the path prefix (the rejects file has the path in its own column)."""
    text = str(err)
    for prefix in (f"{source}: ", f"image file {source} "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text
