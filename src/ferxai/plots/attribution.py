"""Attribution maps drawn over the face: overlays, per-image method grids, per-method galleries.

Display pipeline of one map (`normalize_attribution`, used by every figure here):

1. optional patch pooling: the map is averaged in `patch` x `patch` blocks (edge blocks may be
   smaller) and each block shows its mean — coarse, readable maps for pixel-noisy methods;
2. contrast stretch by percentiles, so a few extreme pixels do not wash out the rest:
   unsigned maps: [P(p_low), P(p_high)] of the values -> [0, 1];
   signed maps: magnitudes [P(p_low), P(p_high)] of |a| -> [0, 1], sign kept, giving [-1, 1]
   symmetric around 0 (zero stays at the colormap's centre);
3. gamma on the (magnitude of the) stretched value (< 1 brightens weak evidence).

Colours, the same in every figure: unsigned maps use a perceptually uniform sequential colormap
("inferno": dark = no relevance, bright yellow = most), signed maps a diverging one ("RdBu_r":
positive evidence red, negative blue, zero white). Rainbow maps such as "jet" are avoided: their
bright bands read as edges that are not in the data. The heatmap is alpha-blended over the
grayscale/RGB image.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import colormaps

UNSIGNED_CMAP = "inferno"
SIGNED_CMAP = "RdBu_r"


def safe_name(text: str) -> str:
    """`text` usable as one file-name component: ids such as "test/happy/img 1.png" become
    "test_happy_img_1.png" (anything but letters, digits, '.', '_', '-' -> '_')."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("._")
    return name or "_"


def pool_patches(attribution: np.ndarray, patch: int | None) -> np.ndarray:
    """Average the map in patch x patch blocks, each pixel showing its block's mean (same shape)."""
    a = np.asarray(attribution, dtype=np.float64)
    if patch is None or patch <= 1:
        return a
    patch = int(patch)
    h, w = a.shape
    rows, cols = np.arange(0, h, patch), np.arange(0, w, patch)
    sums = np.add.reduceat(np.add.reduceat(a, rows, axis=0), cols, axis=1)
    heights = np.diff(np.append(rows, h))
    widths = np.diff(np.append(cols, w))
    means = sums / np.outer(heights, widths)
    return np.repeat(np.repeat(means, heights, axis=0), widths, axis=1)


def normalize_attribution(
    attribution: np.ndarray,
    signed: bool,
    p_low: float = 1.0,
    p_high: float = 99.0,
    gamma: float = 1.0,
    patch: int | None = None,
) -> np.ndarray:
    """Display values: [0, 1] for unsigned maps, [-1, 1] for signed ones (see module docstring)."""
    a = np.asarray(attribution, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"attribution must be (H, W), got shape {a.shape}")
    if not 0 <= p_low < p_high <= 100:
        raise ValueError(f"need 0 <= p_low < p_high <= 100, got p_low={p_low}, p_high={p_high}")
    if gamma <= 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    a = pool_patches(np.nan_to_num(a, nan=0.0, posinf=0.0, neginf=0.0), patch)
    values = np.abs(a) if signed else a
    lo, hi = np.percentile(values, [p_low, p_high])
    if hi > lo:
        v = np.clip((values - lo) / (hi - lo), 0.0, 1.0)
    else:  # constant map (or all mass in a few pixels): show what is above the floor as full
        v = (values > lo).astype(np.float64)
    v = v ** gamma
    return np.sign(a) * v if signed else v


def _image_rgb(image: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W), uint8 or float [0, 1] -> float (H, W, 3) in [0, 1]."""
    img = np.asarray(image)
    img = img.astype(np.float64) / 255.0 if img.dtype == np.uint8 else img.astype(np.float64)
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3 or img.shape[0] not in (1, 3):
        raise ValueError(f"image must be (C, H, W) with C in (1, 3), or (H, W); got shape {np.shape(image)}")
    img = np.clip(np.nan_to_num(img), 0.0, 1.0)
    if img.shape[0] == 1:
        img = np.repeat(img, 3, axis=0)
    return img.transpose(1, 2, 0)


def colorize(values: np.ndarray, signed: bool, cmap: str | None = None) -> np.ndarray:
    """Display values from `normalize_attribution` -> float RGB (H, W, 3)."""
    cm = colormaps[cmap or (SIGNED_CMAP if signed else UNSIGNED_CMAP)]
    v = (np.asarray(values) + 1.0) / 2.0 if signed else np.asarray(values)
    return cm(np.clip(v, 0.0, 1.0))[..., :3]


def overlay(
    image: np.ndarray,
    attribution: np.ndarray,
    signed: bool,
    p_low: float = 1.0,
    p_high: float = 99.0,
    gamma: float = 1.0,
    alpha: float = 0.5,
    patch: int | None = None,
    cmap: str | None = None,
) -> np.ndarray:
    """Heatmap of `attribution` (H, W) blended over `image` (C, H, W, float [0, 1] or uint8):
    RGB uint8 (H, W, 3). alpha 0 shows only the image, 1 only the heatmap."""
    base = _image_rgb(image)
    attribution = np.asarray(attribution)
    if attribution.shape != base.shape[:2]:
        raise ValueError(f"attribution shape {attribution.shape} does not match image {base.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    values = normalize_attribution(attribution, signed, p_low, p_high, gamma, patch)
    heat = colorize(values, signed, cmap)
    out = (1.0 - alpha) * base + alpha * heat
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def upscale(rgb: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscaling by an integer factor (keeps pixels crisp on 48 px faces)."""
    if int(scale) != scale or scale < 1:
        raise ValueError(f"scale must be an integer >= 1, got {scale!r}")
    scale = int(scale)
    rgb = np.asarray(rgb)
    if scale == 1:
        return rgb
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def _save_rgb(path: str | Path, rgb: np.ndarray, scale: int, **save_kw) -> Path:
    from PIL import Image

    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected RGB uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(upscale(rgb, scale)).save(path, **save_kw)
    return path


def save_overlay_png(path: str | Path, rgb: np.ndarray, scale: int = 4) -> Path:
    """Save an RGB uint8 overlay as PNG, `scale` times larger (nearest neighbour)."""
    return _save_rgb(path, rgb, scale, format="PNG")


def image_to_rgb8(image: np.ndarray) -> np.ndarray:
    """The plain input image (C, H, W) as RGB uint8 (H, W, 3)."""
    return np.clip(np.rint(_image_rgb(image) * 255.0), 0, 255).astype(np.uint8)


def sample_title(label_name: str | None, prediction_name: str, confidence: float) -> str:
    """"true happy, predicted sad (0.83)" — the title used by grids and galleries; without a
    true class (None) just "predicted sad (0.83)"."""
    predicted = f"predicted {prediction_name} ({confidence:.2f})"
    return predicted if label_name is None else f"true {label_name}, {predicted}"


# Pictures of many small overlays (grids, galleries) are one raster with the text drawn into it
# by Pillow: as matplotlib figures, their axes, layout and resampling cost about a second each.
TILE_SCALE = 3  # canvas pixels per image pixel
GAP_PX = 40  # between columns, so a long method name does not run into its neighbour's
TEXT_PX = 12  # font size; about matplotlib's 7 pt at 120 dpi
LINE_PX = 14


@lru_cache(maxsize=None)
def _font(size: int):
    from PIL import ImageFont

    # matplotlib's own copy of DejaVu Sans: always installed with it, so the pictures look the
    # same on every machine (and no system font lookup)
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"), size)


@dataclass
class Cell:
    """One cell of a `mosaic`: an RGB uint8 (H, W, 3) picture with a title above it, or (picture
    None) a text shown in the cell's middle, e.g. a row's label."""

    picture: np.ndarray | None = None
    title: str = ""
    text: str = ""


@dataclass
class Mosaic:
    """A drawn mosaic: `rgb` (H, W, 3) uint8, and where each picture went: (row, column) ->
    (top, left) of its enlarged copy in `rgb`."""

    rgb: np.ndarray
    scale: int
    where: dict[tuple[int, int], tuple[int, int]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        return _save_rgb(path, self.rgb, 1, format="PNG")


def mosaic(rows: Sequence[Sequence[Cell | None]], suptitle: str = "", title_lines: int = 1,
           scale: int = TILE_SCALE) -> Mosaic:
    """Cells in rows and columns (None: left blank), every picture `scale` times enlarged (nearest
    neighbour), each under `title_lines` lines of its title, `suptitle` above all."""
    from PIL import Image, ImageDraw

    pictures = [c.picture for row in rows for c in row if c is not None and c.picture is not None]
    h = max((p.shape[0] for p in pictures), default=48)
    w = max((p.shape[1] for p in pictures), default=48)
    cell_w, cell_h = w * scale + GAP_PX, h * scale + title_lines * LINE_PX + 8
    head_h = (suptitle.count("\n") + 1) * (LINE_PX + 3) + 8 if suptitle else 4
    ncols = max((len(r) for r in rows), default=1) or 1
    width, height = ncols * cell_w, head_h + max(1, len(rows)) * cell_h
    canvas = np.full((height, width, 3), 255, np.uint8)
    drawn = Mosaic(canvas, scale)
    texts: list[tuple[float, float, str, bool, int]] = []  # (x centre, y, text, y is its middle, size)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            if cell is None:
                continue
            left = c * cell_w + GAP_PX // 2
            top = head_h + r * cell_h + title_lines * LINE_PX + 4
            if cell.picture is not None:
                big = upscale(np.asarray(cell.picture, np.uint8), scale)
                canvas[top:top + big.shape[0], left:left + big.shape[1]] = big
                drawn.where[r, c] = (top, left)
                if cell.title:
                    lines = str(cell.title).count("\n") + 1
                    texts.append((left + big.shape[1] / 2, top - 2 - lines * LINE_PX, cell.title, False, TEXT_PX))
            if cell.text:
                texts.append((left + w * scale / 2, top + h * scale / 2, cell.text, True, TEXT_PX))
    image = Image.fromarray(canvas)
    pen = ImageDraw.Draw(image)
    if suptitle:
        texts.append((width / 2, 4, suptitle, False, TEXT_PX + 2))
    for x, y, text, middle, size in texts:
        font = _font(size)
        box = pen.multiline_textbbox((0, 0), text, font=font, spacing=2, align="center")
        top = y - (box[3] - box[1]) / 2 if middle else y
        pen.multiline_text((x - (box[2] - box[0]) / 2, top), text, fill=(0, 0, 0), font=font, spacing=2,
                           align="center")
        drawn.texts.append(text)
    drawn.rgb = np.asarray(image)
    return drawn


def plot_conditions(
    images: Mapping[str, np.ndarray],
    maps: Mapping[str, Mapping[str, np.ndarray]],
    signed: Mapping[str, bool],
    title: str,
    **overlay_kw,
) -> Mosaic:
    """One image under every noise condition side by side: a column per condition (`images`:
    condition -> the image as corrupted, in column order) after a column of method names, the
    input in the first row, then one row per method (`maps`: method -> condition -> its map; a
    condition without a map is left blank, e.g. where the method failed). `overlay_kw` go to
    `overlay`."""
    conditions = list(images)
    rows: list[list[Cell | None]] = [[Cell(text="input")] + [
        Cell(image_to_rgb8(images[c]), title=c) for c in conditions]]
    for method, by_condition in maps.items():
        rows.append([Cell(text=method)] + [
            Cell(overlay(images[c], by_condition[c], signed[method], **overlay_kw)) if c in by_condition else None
            for c in conditions])
    return mosaic(rows, title)


def plot_method_grid(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    signed: Mapping[str, bool],
    title: str,
    families: Mapping[str, str] | None = None,
    **overlay_kw,
) -> Mosaic:
    """The input image, then one overlay per method (in `maps` order), titled `title` (e.g.
    `sample_title(...)`): one row per method family (`families`: method -> family, first-seen
    order; methods without one share a row) after the input alone in the first row, each row
    led by its family's name, so 30-odd methods read on a screen; a signed
    method's title ends in "(±)". `overlay_kw` go to `overlay` (p_low, p_high, gamma, alpha, patch)."""
    missing = [m for m in maps if m not in signed]
    if missing:
        raise ValueError(f"no 'signed' flag for method(s) {missing}")
    families = families or {}
    grouped: dict[str, list[str]] = {}
    for method in maps:
        grouped.setdefault(families.get(method, ""), []).append(method)
    rows: list[list[Cell | None]] = [[Cell(image_to_rgb8(image), title="input")]]
    for family, methods in grouped.items():
        rows.append([Cell(text=family)] + [Cell(overlay(image, maps[m], bool(signed[m]), **overlay_kw),
                                                title=m + (" (±)" if signed[m] else "")) for m in methods])
    return mosaic(rows, title)


def plot_gallery(
    images: np.ndarray | Sequence[np.ndarray],
    maps: np.ndarray | Sequence[np.ndarray],
    signed: bool,
    titles: Sequence[str],
    ncols: int = 6,
    suptitle: str | None = None,
    **overlay_kw,
) -> Mosaic:
    """Overlays of one method on many images (e.g. one sample set), `ncols` per row, each under
    its title (which may have several lines); with no images one cell says so."""
    n = len(images)
    if len(maps) != n or len(titles) != n:
        raise ValueError(f"{n} images, {len(maps)} maps and {len(titles)} titles: need one of each per image")
    if ncols < 1:
        raise ValueError(f"ncols must be >= 1, got {ncols}")
    if n == 0:
        return mosaic([[Cell(text="no images")]], suptitle or "")
    cells = [Cell(overlay(images[j], maps[j], signed, **overlay_kw), title=titles[j]) for j in range(n)]
    ncols = min(ncols, n)
    rows = [cells[i:i + ncols] for i in range(0, n, ncols)]
    return mosaic(rows, suptitle or "", title_lines=max(str(t).count("\n") + 1 for t in titles))


def runner_results_text(
    label_name: str,
    prediction_name: str,
    probabilities: Mapping[str, float],
    image_id: str | None = None,
) -> str:
    """Plain-text summary for `results.txt`: ground truth, prediction, confidence, then one
    `class: probability` line per class (highest first)."""
    lines = []
    if image_id is not None:
        lines.append(f"image: {image_id}")
    confidence = float(probabilities.get(prediction_name, max(probabilities.values(), default=float("nan"))))
    lines += [
        f"ground truth: {label_name}",
        f"prediction: {prediction_name}",
        f"confidence: {confidence:.4f}",
        "probabilities:",
    ]
    for name, p in sorted(probabilities.items(), key=lambda kv: -float(kv[1])):
        lines.append(f"  {name}: {float(p):.4f}")
    return "\n".join(lines) + "\n"


def write_runner_layout(
    out_root: str | Path,
    stem: str,
    label_name: str,
    method: str,
    rgb: np.ndarray,
    results_text: str,
    scale: int = 4,
    image_rgb: np.ndarray | None = None,
) -> Path:
    """The per-image folder layout of the post-hoc-xai-fer runner scripts:

        <out_root>/<stem>_<label>/results.txt
        <out_root>/<stem>_<label>/images/<stem>_<method>.jpg
        <out_root>/<stem>_<label>/images/<stem>.jpg            (when `image_rgb` is given)

    `stem` (typically the image id, which may contain "/"), the label (lower-cased, as there)
    and `method` are made file-name safe with `safe_name`. `results.txt` is (re)written each
    call — it is the same for every method of an image. Returns the overlay's path.
    """
    stem_path = Path(str(stem))
    stem = safe_name(stem_path.with_suffix("").as_posix() if stem_path.suffix else str(stem))
    folder = Path(out_root) / f"{stem}_{safe_name(str(label_name).lower())}"
    images_dir = folder / "images"
    target = _save_rgb(images_dir / f"{stem}_{safe_name(method)}.jpg", rgb, scale, format="JPEG", quality=95)
    if image_rgb is not None:
        _save_rgb(images_dir / f"{stem}.jpg", image_rgb, scale, format="JPEG", quality=95)
    (folder / "results.txt").write_text(results_text)
    return target
