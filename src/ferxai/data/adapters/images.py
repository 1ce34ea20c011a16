"""Adapter for a folder of unlabelled images: explain a bring-your-own model's predictions on them.

Every image under ``root`` (any depth, folder names carry no meaning) becomes one manifest row with
label UNLABELLED and source split ``test``, so the splits stage puts all of them in test and
training has nothing to train on: such a dataset is only usable with a model that brings its own
checkpoint. ``classes`` names the model's outputs in order (the checkpoint's classes must match).
Option ``masks`` gives ground-truth masks from a folder laid out like ``root``, as for the folder
format (ferxai.data.adapters.masks).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from ferxai.classes import UNLABELLED
from ferxai.data.adapters import class_option
from ferxai.data.adapters.folder import _short_reason, _walk
from ferxai.data.adapters.masks import MaskFolder
from ferxai.data.images import decode_image_file
from ferxai.data.manifest import AdapterResult, ManifestError, pixel_fields


def read_images(root: str | os.PathLike, classes: Sequence[str],
                masks: str | os.PathLike | None = None) -> AdapterResult:
    """Manifest rows (label UNLABELLED, split test) for every image under ``root``; ids are relative
    paths. With ``masks``, rows get a ``mask`` column (the mask's path, or "")."""
    class_list = class_option(classes, "images")
    root_path = Path(root)
    if not root_path.is_dir():
        raise ManifestError(f"images dataset: root {os.fspath(root)!r} is not a directory")
    result = AdapterResult(classes=class_list)
    mask_folder = MaskFolder(masks, root_path, "images", result) if masks is not None else None
    found = _walk(root_path, result)
    for rel in found:
        source = os.fspath(root_path / rel)
        try:
            pixels = decode_image_file(source)
        except (ValueError, OSError) as err:
            result.rejects.append({"source": source, "row": "", "reason": _short_reason(err, source)})
            continue
        row = {
            "id": rel, "source": source, "label": UNLABELLED, "label_name": "",
            "subject": "", "source_split": "test", **pixel_fields(pixels),
        }
        if mask_folder is not None:
            row["mask"] = mask_folder.mask_for(rel, pixels, result)
        result.rows.append(row)
    if mask_folder is not None:
        mask_folder.report_unmatched(found, result)
    return result
