"""Adapter for a folder written by `ferxai.data.synthetic.generate` (images, masks, index.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

from ferxai.classes import FER2013_CLASSES
from ferxai.data.images import decode_image_file
from ferxai.data.manifest import AdapterResult, ManifestError, content_hash
from ferxai.data.synthetic import INDEX_COLUMNS


def read_synthetic(root: str | Path) -> AdapterResult:
    """Manifest rows (plus a `mask` path column) for every image listed in root/index.csv.

    Rows whose image is missing, undecodable or not grayscale, whose mask is missing, or whose
    label disagrees with its class name go to `rejects` instead of raising.
    """
    root = Path(root)
    index = root / "index.csv"
    if not index.is_file():
        raise ManifestError(f"{index}: no index.csv; is {root} a folder written by the synthetic generator?")
    with open(index, newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in INDEX_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{index}: missing columns {missing}")
        entries = list(reader)

    result = AdapterResult(classes=list(FER2013_CLASSES))
    for row_no, entry in enumerate(entries, start=1):  # 1-based data rows, like the csv adapter
        source = str(root / entry["image"])
        mask = str(root / entry["mask"])

        def reject(reason: str) -> None:
            result.rejects.append({"source": source, "row": row_no, "reason": reason})

        try:
            label = int(entry["label"])
        except ValueError:
            reject(f"label {entry['label']!r} is not an integer")
            continue
        if not 0 <= label < len(FER2013_CLASSES) or FER2013_CLASSES[label] != entry["label_name"]:
            reject(f"label {label} does not match class name {entry['label_name']!r}")
            continue
        try:
            # The decoder training uses, so content_hash matches the pixels later loaded.
            pixels = decode_image_file(source)
        except (FileNotFoundError, ValueError) as exc:
            reject(f"unreadable image: {exc}")
            continue
        if pixels.ndim != 2:
            reject(f"expected a grayscale image, got shape {pixels.shape}")
            continue
        if not Path(mask).is_file():
            reject(f"mask {mask} is missing")
            continue
        height, width = pixels.shape
        result.rows.append({
            "id": entry["id"],
            "source": source,
            "label": label,
            "label_name": entry["label_name"],
            "subject": "",
            "source_split": "",
            "width": width,
            "height": height,
            "channels": 1,
            "content_hash": content_hash(pixels),
            "mask": mask,
        })
    return result
