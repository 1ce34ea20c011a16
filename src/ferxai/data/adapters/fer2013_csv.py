"""Adapter for FER2013's single CSV: ``emotion,pixels,Usage``, one 48x48 gray face per row.

Sources are ``<csv>#row=<n>`` with ``n`` the 1-based data row (header excluded): row ``n`` is
line ``n + 1`` of the file. Rejects carry the same ``n`` in their ``row`` column.
"""

from __future__ import annotations

import os

from ferxai.classes import FER2013_CLASSES
from ferxai.data.images import PixelTable, csv_row_ref, read_pixel_csv
from ferxai.data.manifest import AdapterResult, ManifestError, content_hash

FER2013_SIDE = 48
USAGE_SPLITS: dict[str, str] = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}


def read_fer2013_csv(path: str | os.PathLike) -> AdapterResult:
    """Manifest rows for every well-formed row of fer2013.csv; malformed rows become rejects.

    A row is rejected (with every problem found, "; "-joined) for a wrong pixel count, a
    non-integer or out-of-range pixel, an emotion that is not 0-6, or a Usage other than
    Training/PublicTest/PrivateTest. Without a Usage column, source_split is left empty.
    """
    table = load_fer2013_table(path, required=("emotion",))
    result = AdapterResult(classes=list(FER2013_CLASSES))
    usage = table.columns["Usage"].tolist() if "Usage" in table.columns else None
    emotions = table.columns["emotion"].tolist()
    width = len(str(len(emotions)))
    for i, emotion in enumerate(emotions):
        row = i + 1
        problems = []
        if table.reasons[i]:
            problems.append(table.reasons[i])
        label = parse_emotion(emotion)
        if isinstance(label, str):
            problems.append(label)
        split = ""
        if usage is not None:
            split = USAGE_SPLITS.get(usage[i].strip(), None)
            if split is None:
                problems.append(usage_problem(usage[i]))
        source = csv_row_ref(path, row)
        if problems:
            result.rejects.append({"source": source, "row": row, "reason": "; ".join(problems)})
            continue
        result.rows.append(fer_row(table, i, width, source, label, FER2013_CLASSES[label], split))
    return result


def load_fer2013_table(path: str | os.PathLike, required: tuple[str, ...] = ()) -> PixelTable:
    """Parse fer2013.csv (cached) and check it has 48x48 rows and the ``required`` columns."""
    try:
        table = read_pixel_csv(path)
    except FileNotFoundError as err:
        raise ManifestError(str(err)) from None
    missing = [c for c in required if c not in table.columns.columns]
    if missing:
        raise ManifestError(f"{os.fspath(path)}: missing column(s) {missing} (columns: "
                            f"{['pixels', *table.columns.columns]})")
    if table.side != FER2013_SIDE:
        raise ManifestError(f"{os.fspath(path)}: rows hold {table.side}x{table.side} images; FER2013 rows "
                            f"hold {FER2013_SIDE}x{FER2013_SIDE} = {FER2013_SIDE ** 2} values")
    return table


def parse_emotion(value: str) -> int | str:
    """The FER2013 class index of an ``emotion`` cell, or the reason it is not one."""
    try:
        label = int(value.strip())
    except ValueError:
        return f"emotion {value!r} is not an integer"
    if not 0 <= label < len(FER2013_CLASSES):
        return f"emotion {label} is not a FER2013 class index (0-{len(FER2013_CLASSES) - 1})"
    return label


def usage_problem(value: str) -> str:
    return f"Usage {value!r} is not one of {', '.join(USAGE_SPLITS)}"


def fer_row(table: PixelTable, i: int, width: int, source: str, label: int, name: str, split: str) -> dict:
    """The manifest row of data row ``i`` (0-based) of a parsed FER2013 table."""
    pixels = table.pixels[i]
    return {
        # Ids are zero-padded row numbers, shared by the FER2013 and FER+ manifests of one file.
        "id": f"row{i + 1:0{width}d}",
        "source": source,
        "label": label,
        "label_name": name,
        "subject": "",
        "source_split": split,
        "width": table.side,
        "height": table.side,
        "channels": 1,
        "content_hash": content_hash(pixels),
    }
