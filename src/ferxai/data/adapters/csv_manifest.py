"""Adapter for a user-written CSV listing images (format name ``csv``; AffectNet-like metadata).

Columns: ``path``, ``label`` and optionally ``subject`` and ``split``. Relative paths are taken
from the CSV's own folder, so the CSV and its images can move together. A path may also be a
container reference (``file.csv#row=3``, ``file.npz#train_images[0]``). Rejects give the row
number counted from 1, header excluded (row ``n`` is line ``n + 1``), as the FER2013 adapter does.
Option ``mask_column`` names a column of ground-truth mask paths, taken from the CSV's folder too
(empty cell: no mask); see ferxai.data.adapters.masks.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ferxai.data.adapters import SPLIT_ALIASES, class_option, normalise_split
from ferxai.data.adapters.masks import checked_mask
from ferxai.data.images import load_image
from ferxai.data.manifest import AdapterResult, ManifestError, pixel_fields

REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label")


def read_csv(path: str | os.PathLike, classes: Sequence[str] | None = None,
             mask_column: str | None = None) -> AdapterResult:
    """Manifest rows for the images a user CSV lists.

    Labels are class names or integer indices. With ``classes``, a label equal to a class name
    takes that index, otherwise an integer label is an index into ``classes``; anything else is
    rejected. Without ``classes``, all-integer labels give classes "0".."K-1", otherwise the
    sorted distinct labels are the classes. Missing or undecodable images, empty paths, unknown
    splits and repeated images are rejected with their row number; ids are the paths as written.
    With ``mask_column`` (a column the CSV must have), rows get a ``mask`` column: the mask's path,
    or "" for an empty cell or a mask that is missing, undecodable or of another size than its
    image (those are rejects with the row number; the image is kept).
    """
    given = class_option(classes, "csv")
    csv_path = Path(path)
    mask_column = mask_column.strip() if mask_column is not None else None
    frame = _read(csv_path, (mask_column,) if mask_column else ())
    labels = [str(v).strip() for v in frame["label"]]
    class_list, index = _classes(labels, given, csv_path)
    result = AdapterResult(classes=class_list)
    base = csv_path.parent
    seen: dict[str, int] = {}
    subjects = frame["subject"].tolist() if "subject" in frame.columns else None
    splits = frame["split"].tolist() if "split" in frame.columns else None
    masks = frame[mask_column].tolist() if mask_column else None
    for i, raw_path in enumerate(frame["path"].tolist()):
        row = i + 1
        written = raw_path.strip()
        source = _resolve(written, base) if written else ""

        def reject(reason: str) -> None:
            result.rejects.append({"source": source or os.fspath(csv_path), "row": row, "reason": reason})

        if not written:
            reject("path is empty")
            continue
        label = _label_index(labels[i], index, class_list)
        if isinstance(label, str):
            reject(label)
            continue
        split = normalise_split(splits[i]) if splits is not None else ""
        if split is None:
            reject(f"split {splits[i]!r} is not one of {', '.join(SPLIT_ALIASES)} (or empty)")
            continue
        if source in seen:
            reject(f"same image as row {seen[source]}")
            continue
        seen[source] = row
        try:
            pixels = load_image(source)
        except FileNotFoundError:
            reject(f"file not found: {written}")
            continue
        except (ValueError, OSError) as err:
            reject(f"cannot load {written}: {err}")
            continue
        entry = {
            "id": written,
            "source": source,
            "label": label,
            "label_name": class_list[label],
            "subject": subjects[i].strip() if subjects is not None else "",
            "source_split": split,
            **pixel_fields(pixels),
        }
        if masks is not None:
            mask = masks[i].strip()
            entry["mask"] = checked_mask(_resolve(mask, base), pixels.shape, f"image {written!r}", row,
                                         result) if mask else ""
        result.rows.append(entry)
    return result


def _read(csv_path: Path, extra_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        frame = pd.read_csv(csv_path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise ManifestError(f"csv dataset: {csv_path} does not exist") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ManifestError(f"{csv_path}: cannot parse as CSV: {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    for column in REQUIRED_COLUMNS:
        if column not in frame.columns:
            raise ManifestError(f"{csv_path}: missing required column {column!r} (columns: {list(frame.columns)})")
    for column in extra_columns:
        if column not in frame.columns:
            raise ManifestError(f"{csv_path}: has no column {column!r}, which option 'mask_column' names "
                                f"(columns: {list(frame.columns)})")
    return frame


def _resolve(written: str, base: Path) -> str:
    """Source string for a path cell; a reference's "#..." suffix simply rides along."""
    return written if os.path.isabs(written) else os.fspath(base / written)


def _classes(labels: list[str], class_list: list[str] | None, csv_path: Path) -> tuple[list[str], dict[str, int]]:
    """Class list and name -> index; see read_csv for the rules."""
    if class_list is None:
        present = sorted({label for label in labels if label})
        if present and all(_is_int(label) for label in present):
            top = max(int(label) for label in present)
            if min(int(label) for label in present) < 0:
                raise ManifestError(f"{csv_path}: integer labels must be >= 0 (or give option 'classes')")
            class_list = [str(k) for k in range(top + 1)]
        else:
            class_list = present
    return class_list, {name: k for k, name in enumerate(class_list)}


def _label_index(label: str, index: dict[str, int], class_list: list[str]) -> int | str:
    """Class index of a label cell, or the reason it has none."""
    if not label:
        return "label is empty"
    if label in index:
        return index[label]
    if _is_int(label) and 0 <= int(label) < len(class_list):
        return int(label)
    return f"label {label!r} is not in classes {class_list}"


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
