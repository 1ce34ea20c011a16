"""Ground-truth masks of a user's images, for the adapters that take them (not an adapter itself).

Option ``masks`` (formats ``folder`` and ``images``): a folder laid out like ``root``; the mask of
``<root>/<rel>/<stem>.<ext>`` is ``<masks>/<rel>/<stem>.<png|jpg|jpeg|bmp>`` (any case). Option
``mask_column`` (format ``csv``): a column holding a mask path per row, relative to the CSV's
folder as the image paths are; an empty cell means no mask.

A mask is an image the size of its image; any nonzero pixel is foreground. It is decoded here with
``ferxai.data.synthetic.load_mask``, the reader the explanation stage uses, so a mask that passes
here reads the same there. The manifest's ``mask`` column holds its path, or "" for an image
without one: masks may cover only some images.

A mask that is named (a csv cell) but missing, that cannot be decoded, whose size differs from its
image's, or that is ambiguous (two files ``a.png`` and ``a.jpg`` for image ``a``) is a reject: it
is listed in rejects.csv under its own path with the reason, and counts against
``max_reject_fraction`` like any other reject; its image stays in the manifest, without a mask (a
broken mask says nothing against the image, and explanations not scored against masks still use
it). Mask files that match no image are listed as dropped (not counted), so a masks folder laid
out differently from the images is visible rather than silently unused.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ferxai.data.manifest import AdapterResult, ManifestError

KEPT = "the image is kept without a mask"
UNMATCHED = "mask file matches no image (its path below the masks folder, extension aside, is no image's below root)"


def mask_problem(path: str, shape: tuple[int, ...]) -> str | None:
    """Why the mask file ``path`` cannot serve an image of pixel shape ``shape`` (None: it can)."""
    from PIL import Image

    from ferxai.data.synthetic import load_mask

    if not os.path.isfile(path):
        return "file not found"
    if os.path.getsize(path) == 0:
        return "empty file (0 bytes)"
    try:
        mask = load_mask(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        return f"cannot decode image ({err})"
    height, width = shape[:2]
    if mask.shape != (height, width):
        return f"is {mask.shape[1]}x{mask.shape[0]} pixels but its image is {width}x{height}"
    return None


def checked_mask(path: str, shape: tuple[int, ...], what: str, row: int | str, result: AdapterResult) -> str:
    """``path`` when it is a usable mask for an image of ``shape``; else "" and a reject naming it."""
    problem = mask_problem(path, shape)
    if problem is None:
        return path
    result.rejects.append({"source": path, "row": row, "reason": f"mask of {what}: {problem}; {KEPT}"})
    return ""


class MaskFolder:
    """The mask files of a ``masks`` folder, by image path below root without its extension."""

    def __init__(self, masks: str | os.PathLike, root: Path, fmt: str, result: AdapterResult) -> None:
        from ferxai.data.adapters.folder import _walk

        self.path = Path(masks)
        if not self.path.is_dir():
            raise ManifestError(f"{fmt} dataset: masks {os.fspath(masks)!r} is not a directory")
        real_masks, real_root = Path(os.path.realpath(self.path)), Path(os.path.realpath(root))
        if real_masks == real_root or real_masks.is_relative_to(real_root) or real_root.is_relative_to(real_masks):
            raise ManifestError(f"{fmt} dataset: masks {os.fspath(masks)!r} and root {os.fspath(root)!r} must be "
                                "separate folders, neither inside the other (masks under root would be read as "
                                "images)")
        self.by_image: dict[str, list[str]] = {}
        # Non-image and hidden files here are listed in dropped, as under root: a folder of .tif
        # masks then shows up in rejects.csv instead of silently giving no image a mask.
        for rel in _walk(self.path, result):
            self.by_image.setdefault(os.path.splitext(rel)[0], []).append(rel)

    def mask_for(self, rel: str, pixels: np.ndarray, result: AdapterResult) -> str:
        """The mask path of image ``rel`` (relative to root), or "" (none, or a reject recorded)."""
        found = self.by_image.get(os.path.splitext(rel)[0], [])
        if not found:
            return ""
        if len(found) > 1:
            result.rejects.append({"source": os.fspath(self.path / found[0]), "row": "",
                                   "reason": f"several masks for image {rel!r}: {found}; {KEPT}"})
            return ""
        return checked_mask(os.fspath(self.path / found[0]), pixels.shape, f"image {rel!r}", "", result)

    def report_unmatched(self, image_rels: list[str], result: AdapterResult) -> None:
        """List (as dropped) the mask files whose image is none of ``image_rels``."""
        images = {os.path.splitext(rel)[0] for rel in image_rels}
        for key, found in sorted(self.by_image.items()):
            if key not in images:
                result.dropped.extend({"source": os.fspath(self.path / rel), "row": "", "reason": UNMATCHED}
                                      for rel in found)
