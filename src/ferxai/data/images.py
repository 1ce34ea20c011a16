"""Decode the images a manifest's ``source`` column points at.

A source is either an image file path or a reference into a container file:

* ``<file>#row=<n>``: row ``n`` of a CSV with a ``pixels`` column of space-separated gray
  levels (FER2013). ``n`` counts data rows from 1, header excluded, so row ``n`` sits on line
  ``n + 1`` of the file, as a spreadsheet shows it.
* ``<file>#<array>[<n>]``: item ``n`` (0-based, as numpy indexes it) of an array in an ``.npz``.

Containers are parsed once per process (cached by path and modification time), so loading all
35,887 FER2013 rows costs one parse of the CSV, not one per image.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from ferxai.data.manifest import ManifestError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
PIXELS_COLUMN = "pixels"

_CSV_REF = re.compile(r"^(?P<path>.+)#row=(?P<row>\d+)$")
_NPZ_REF = re.compile(r"^(?P<path>.+)#(?P<array>[A-Za-z_][A-Za-z0-9_]*)\[(?P<index>\d+)\]$")
# Rows are parsed this many at a time so the temporary byte strings stay small (~8 MB for FER).
_PARSE_CHUNK = 1024


# --------------------------------------------------------------------------- references


@dataclass(frozen=True)
class SourceRef:
    """A parsed ``source``: a plain file, a CSV row (1-based) or an npz array item (0-based)."""

    path: str
    kind: str  # "file" | "csv_row" | "npz_item"
    row: int | None = None
    array: str | None = None
    index: int | None = None


def csv_row_ref(path: str | os.PathLike, row: int) -> str:
    """Source string for data row ``row`` (1-based, header excluded) of a pixel CSV."""
    return f"{os.fspath(path)}#row={int(row)}"


def npz_item_ref(path: str | os.PathLike, array: str, index: int) -> str:
    """Source string for item ``index`` (0-based) of ``array`` in an npz file."""
    return f"{os.fspath(path)}#{array}[{int(index)}]"


def parse_source(source: str) -> SourceRef:
    """Split a source string into file and position; a path that exists as a file wins."""
    source = str(source)
    match = _CSV_REF.match(source)
    if match and not os.path.isfile(source):
        row = int(match["row"])
        if row < 1:
            raise ValueError(f"{source}: CSV rows are numbered from 1")
        return SourceRef(match["path"], "csv_row", row=row)
    match = _NPZ_REF.match(source)
    if match and not os.path.isfile(source):
        return SourceRef(match["path"], "npz_item", array=match["array"], index=int(match["index"]))
    return SourceRef(source, "file")


# --------------------------------------------------------------------------- pixel CSVs


@dataclass(frozen=True)
class PixelTable:
    """A parsed pixel CSV: its other columns, the decoded rows and why any row failed."""

    path: str
    columns: pd.DataFrame  # every column but `pixels`, as strings ("" when empty)
    pixels: np.ndarray     # (N, side, side) uint8; zeros where `reasons` is set
    reasons: list[str]     # per row: "" when the row parsed, else why not
    side: int


def parse_pixel_strings(
    values: Sequence[object], n_pixels: int | None = None,
) -> tuple[np.ndarray, list[str], int]:
    """Parse space-separated gray levels; return (N x n_pixels uint8, per-row reasons, n_pixels).

    ``n_pixels=None`` takes the most common value count. Rows of digits and spaces go through
    one vectorised ``np.fromstring`` per chunk; only the rest are re-read token by token, which
    still accepts other whitespace (tabs) and otherwise says exactly what is wrong.
    """
    n = len(values)
    encoded: list[bytes] = []
    counts = np.zeros(n, dtype=np.int64)
    clean = np.zeros(n, dtype=bool)
    for i, value in enumerate(values):
        raw = value.encode("ascii", "replace").strip() if isinstance(value, str) else b""
        encoded.append(raw)
        # Digits and spaces only: such rows can go straight to np.fromstring once counted.
        if raw and not raw.translate(None, b"0123456789 "):
            clean[i] = True
            counts[i] = raw.count(b" ") + 1 if b"  " not in raw else len(raw.split())
    if n_pixels is None:
        n_pixels = int(np.bincount(counts[clean]).argmax()) if clean.any() else 0
    good = clean & (counts == n_pixels)
    out = np.zeros((n, n_pixels), dtype=np.uint8)
    too_big = np.zeros(n, dtype=bool)
    good_idx = np.flatnonzero(good)
    for start in range(0, len(good_idx), _PARSE_CHUNK):
        idx = good_idx[start:start + _PARSE_CHUNK]
        # int64 saturates on absurdly long digit runs instead of wrapping, so the range check holds.
        parsed = np.fromstring(b" ".join(encoded[i] for i in idx), dtype=np.int64, sep=" ")
        parsed = parsed.reshape(len(idx), n_pixels)
        over = parsed.max(axis=1) > 255
        too_big[idx[over]] = True
        out[idx[~over]] = parsed[~over]
    reasons = [""] * n
    for i in np.flatnonzero(~good | too_big):
        values, reasons[i] = _parse_slow(encoded[i], n_pixels)
        out[i] = values if values is not None else 0
    return out, reasons, n_pixels


def _parse_slow(raw: bytes, n_pixels: int) -> tuple[list[int] | None, str]:
    """(values, "") for a usable pixel string, else (None, every problem found, "; "-joined)."""
    tokens = raw.split()
    if not tokens:
        return None, "pixels field is empty"
    problems = []
    if len(tokens) != n_pixels:
        problems.append(f"expected {n_pixels} pixel values, found {len(tokens)}")
    values = []
    for k, token in enumerate(tokens, start=1):
        text = token.decode("ascii", "replace")
        try:
            value = int(text)
        except ValueError:
            problems.append(f"pixel {k} is {text!r}, not an integer")
            break
        if not 0 <= value <= 255:
            problems.append(f"pixel {k} value {value} is outside 0-255")
            break
        values.append(value)
    return (None, "; ".join(problems)) if problems else (values, "")


def read_pixel_csv(path: str | os.PathLike) -> PixelTable:
    """Parse a CSV with a ``pixels`` column (FER2013 layout); cached per path and mtime."""
    path = os.fspath(path)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"pixel CSV {path} does not exist") from None
    return _read_pixel_csv_cached(os.path.abspath(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=2)
def _read_pixel_csv_cached(shown: str, mtime_ns: int, size: int) -> PixelTable:
    try:
        # Strings throughout, and blank lines kept as rows, so row n stays line n + 1.
        frame = pd.read_csv(shown, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ManifestError(f"{shown}: cannot parse as CSV: {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if PIXELS_COLUMN not in frame.columns:
        raise ManifestError(f"{shown}: no '{PIXELS_COLUMN}' column (columns: {list(frame.columns)})")
    values = frame.pop(PIXELS_COLUMN).tolist()
    flat, reasons, n_pixels = parse_pixel_strings(values)
    if n_pixels == 0:
        raise ManifestError(f"{shown}: no row has a well-formed pixels field")
    side = int(round(n_pixels ** 0.5))
    if side * side != n_pixels:
        raise ManifestError(f"{shown}: rows mostly have {n_pixels} pixel values, not a square image")
    return PixelTable(shown, frame, flat.reshape(len(values), side, side), reasons, side)


# --------------------------------------------------------------------------- npz arrays


def npz_array(path: str | os.PathLike, name: str) -> np.ndarray:
    """One array of an npz file, loaded once per process (cached by path and mtime)."""
    path = os.fspath(path)
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"npz file {path} does not exist") from None
    return _npz_array_cached(os.path.abspath(path), stat.st_mtime_ns, stat.st_size, name)


@lru_cache(maxsize=8)
def _npz_array_cached(shown: str, mtime_ns: int, size: int, name: str) -> np.ndarray:
    with np.load(shown, allow_pickle=False) as npz:
        if name not in npz.files:
            raise ManifestError(f"{shown}: no array {name!r} (arrays: {sorted(npz.files)})")
        return np.asarray(npz[name])


def npz_images_to_uint8(images: np.ndarray, where: str) -> np.ndarray:
    """Bring an (N,H,W[,C]) image array to uint8 (N,H,W) or (N,H,W,3), or say why not.

    uint8 passes through; integer arrays within 0-255 are cast; float arrays in [0, 1] are
    scaled by 255 (the usual normalised form); C=1 is squeezed, C=4 loses its alpha.
    """
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    elif images.ndim == 4 and images.shape[-1] == 4:
        images = images[..., :3]
    if images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
        raise ManifestError(f"{where}: images must be (N,H,W) or (N,H,W,C) with C in 1/3/4, got shape {images.shape}")
    if images.dtype == np.uint8:
        return images
    if images.size == 0:
        return images.astype(np.uint8)
    if images.dtype == bool:
        return images.astype(np.uint8) * 255
    lo, hi = images.min(), images.max()
    if np.issubdtype(images.dtype, np.integer) and lo >= 0 and hi <= 255:
        return images.astype(np.uint8)
    if np.issubdtype(images.dtype, np.floating) and lo >= 0 and hi <= 1:
        return np.rint(images * 255).astype(np.uint8)
    raise ManifestError(f"{where}: {images.dtype} images with values {lo}..{hi} are neither 0-255 "
                        "integers nor 0-1 floats")


# --------------------------------------------------------------------------- decoding


def decode_image_file(path: str | os.PathLike) -> np.ndarray:
    """Decode an image file to uint8 HxW (gray) or HxWx3 (colour).

    Raises FileNotFoundError for a missing file and ValueError for an empty or undecodable one.
    EXIF rotation is applied so phone photos come out upright; alpha is dropped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"image file {path} does not exist")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as img:
            img.load()  # decode now: truncated files fail here, not later in training
            img = ImageOps.exif_transpose(img)
            return _pil_to_array(img)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ValueError(f"{path}: cannot decode image ({err})") from None


def _pil_to_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode in ("L", "RGB"):
        return np.asarray(img, dtype=np.uint8)
    if mode in ("1", "LA"):
        return np.asarray(img.convert("L"), dtype=np.uint8)
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High-bit-depth gray: scale its own range to 0-255 rather than clip at 255.
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(arr.max()), 1.0)
        return np.clip(np.rint(arr / top * 255), 0, 255).astype(np.uint8)
    if mode == "P":
        # A palette image is gray when its palette is; keep it 1-channel then.
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all():
            return np.ascontiguousarray(rgb[..., 0])
        return rgb
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def load_image(source: str) -> np.ndarray:
    """Pixels of one manifest source: uint8 HxW (gray) or HxWxC (colour).

    Raises FileNotFoundError when the file is missing and ValueError when the image or row
    cannot be decoded or the reference is out of range; messages name the source.
    """
    ref = parse_source(source)
    if ref.kind == "file":
        return decode_image_file(ref.path)
    if ref.kind == "csv_row":
        table = read_pixel_csv(ref.path)
        if ref.row > len(table.reasons):
            raise ValueError(f"{source}: {ref.path} has only {len(table.reasons)} data rows")
        reason = table.reasons[ref.row - 1]
        if reason:
            raise ValueError(f"{source}: {reason}")
        return table.pixels[ref.row - 1].copy()  # a copy: the cached table must stay intact
    arr = npz_array(ref.path, ref.array)
    if ref.index >= len(arr):
        raise ValueError(f"{source}: {ref.path} array {ref.array!r} has only {len(arr)} items")
    item = npz_images_to_uint8(arr[ref.index:ref.index + 1], f"{ref.path} array {ref.array!r}")[0]
    return item.copy() if np.shares_memory(item, arr) else item


def to_chw(image: np.ndarray, size: int, channels: int) -> np.ndarray:
    """Resize to size x size and convert to ``channels`` (1 or 3); returns uint8 C x size x size.

    The image is stretched to a square, not cropped: face crops (FER2013, RAF-DB, AffectNet) are
    square already and cropping could cut off content. PIL's bilinear filter widens its support
    when shrinking, so downscaling averages like an area filter instead of aliasing. RGB becomes
    gray by PIL's ITU-R 601 luma; gray becomes RGB by repeating the channel (after resizing, so
    the resize runs on one channel).
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    pil = Image.fromarray(np.ascontiguousarray(image))
    if channels == 1 and pil.mode != "L":
        pil = pil.convert("L")
    if pil.size != (size, size):
        pil = pil.resize((size, size), Image.BILINEAR)
    arr = np.asarray(pil, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[None]
        return np.repeat(arr, 3, axis=0) if channels == 3 else arr
    return arr.transpose(2, 0, 1)


def load_images(sources: Sequence[str], size: int, channels: int) -> np.ndarray:
    """Load many sources into one uint8 N x C x size x size array, in the order given.

    References into one container are fetched with a single fancy index, and when the stored
    images already have the requested size and are gray, no per-image work is done at all.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    out = np.empty((len(sources), channels, size, size), dtype=np.uint8)
    groups: dict[tuple[str, str, str | None], list[tuple[int, int]]] = {}
    for i, source in enumerate(sources):
        ref = parse_source(source)
        if ref.kind == "file":
            out[i] = to_chw(decode_image_file(ref.path), size, channels)
        elif ref.kind == "csv_row":
            groups.setdefault((ref.path, "csv_row", None), []).append((i, ref.row - 1))
        else:
            groups.setdefault((ref.path, "npz_item", ref.array), []).append((i, ref.index))
    for (path, kind, array), items in groups.items():
        where = np.array([i for i, _ in items], dtype=np.int64)
        pos = np.array([p for _, p in items], dtype=np.int64)
        if kind == "csv_row":
            table = read_pixel_csv(path)
            bad = pos[pos >= len(table.reasons)]
            if len(bad):
                raise ValueError(f"{csv_row_ref(path, bad[0] + 1)}: {path} has only {len(table.reasons)} data rows")
            for p in pos:
                if table.reasons[p]:
                    raise ValueError(f"{csv_row_ref(path, p + 1)}: {table.reasons[p]}")
            images = table.pixels[pos]
        else:
            arr = npz_array(path, array)
            bad = pos[pos >= len(arr)]
            if len(bad):
                raise ValueError(f"{npz_item_ref(path, array, bad[0])}: array {array!r} has only {len(arr)} items")
            images = npz_images_to_uint8(arr[pos], f"{path} array {array!r}")
        _place(out, where, images, size, channels)
    return out


def _place(out: np.ndarray, where: np.ndarray, images: np.ndarray, size: int, channels: int) -> None:
    """Write a batch of same-shaped HxW or HxWx3 images into ``out`` at rows ``where``."""
    if images.ndim == 3 and images.shape[1:] == (size, size):
        # Gray and already the right size: no resize, only a channel repeat if RGB is wanted.
        out[where] = images[:, None]
        return
    for i, image in zip(where, images):
        out[i] = to_chw(image, size, channels)
