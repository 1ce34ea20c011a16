"""The embedded default dataset: deterministic synthetic grayscale faces with ground-truth masks.

Each image is a cartoon face in one of the seven FER2013 classes. Classes differ only in local
features (brows, eyes, mouth, nose wrinkle); everything else (pose, face shape and shade,
lighting, background, noise, occluders) is nuisance, scaled by one `nuisance` strength. Every
image comes with a binary mask of its visible class-defining pixels, against which explanation
maps can be scored.

Image ``i`` of class ``label`` is drawn from ``np.random.default_rng([seed, label, i])`` alone,
so the same config gives byte-identical files and growing ``n_per_class`` keeps earlier images.
"""

from __future__ import annotations

import csv
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ferxai.classes import FER2013_CLASSES

INDEX_COLUMNS: tuple[str, ...] = ("id", "image", "mask", "label", "label_name")
KINDS: tuple[str, ...] = ("faces", "center_patch")
MIN_SIZE, MAX_SIZE = 24, 256


@dataclass(frozen=True)
class SyntheticConfig:
    """Generator settings; `from_dict` builds one from the config file's `options`."""

    n_per_class: int | dict[str, int] = 300
    size: int = 48
    seed: int = 0
    nuisance: float = 1.0
    occluder_prob: float = 0.1
    noise_sigma: float = 8.0  # gray levels at nuisance 1
    # "faces", or "center_patch": the known-answer images of ferxai.data.center_patch (the class
    # is a glyph of patch_size px in the centre), for testing explanations
    kind: str = "faces"
    patch_size: int = 8
    # a planted shortcut on the faces (ferxai.data.shortcut): "none", "matched" (the class's own
    # mark) or "shuffled" (another class's), on a share `cue_probability` of the images
    cue: str = "none"
    cue_probability: float = 1.0
    cue_size: int = 6
    # what the written masks show: "features" (the class-defining facial features) or "cue" (the mark)
    mask: str = "features"
    _counts: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        counts = _parse_counts(self.n_per_class)
        object.__setattr__(self, "_counts", counts)
        if isinstance(self.n_per_class, Mapping):
            # Store a plain dict in class order so equal configs compare and print alike.
            object.__setattr__(self, "n_per_class", dict(counts))
        for name in ("size", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"synthetic option {name!r} must be an integer, got {value!r}")
        if not MIN_SIZE <= self.size <= MAX_SIZE:
            raise ValueError(f"synthetic option 'size' must be in [{MIN_SIZE}, {MAX_SIZE}], got {self.size}")
        if self.seed < 0:
            raise ValueError(f"synthetic option 'seed' must be >= 0, got {self.seed}")
        for name in ("nuisance", "occluder_prob", "noise_sigma"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"synthetic option {name!r} must be a number, got {value!r}")
            if value < 0:
                raise ValueError(f"synthetic option {name!r} must be >= 0, got {value}")
        if self.occluder_prob > 1:
            raise ValueError(f"synthetic option 'occluder_prob' must be <= 1, got {self.occluder_prob}")
        if self.kind not in KINDS:
            raise ValueError(f"synthetic option 'kind' must be one of {list(KINDS)}, got {self.kind!r}")
        if isinstance(self.patch_size, bool) or not isinstance(self.patch_size, (int, np.integer)) \
                or not 4 <= self.patch_size <= self.size // 3:
            raise ValueError(f"synthetic option 'patch_size' must be an integer in [4, {self.size // 3}] "
                             f"(a third of size {self.size}), got {self.patch_size!r}")

        from ferxai.data.shortcut import CUES

        if self.cue not in CUES:
            raise ValueError(f"synthetic option 'cue' must be one of {list(CUES)}, got {self.cue!r}")
        if self.cue != "none" and self.kind != "faces":
            raise ValueError(f"synthetic option 'cue' plants a mark beside the faces; kind {self.kind!r} has none")
        value = self.cue_probability
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f"synthetic option 'cue_probability' must be a number in [0, 1], got {value!r}")
        if self.cue != "none" and (isinstance(self.cue_size, bool) or not isinstance(self.cue_size, (int, np.integer))
                                   or not 4 <= self.cue_size <= self.size // 8):
            raise ValueError(f"synthetic option 'cue_size' must be an integer in [4, {self.size // 8}] "
                             f"(an eighth of size {self.size}: a corner away from the facial features), got {self.cue_size!r}")
        if self.mask not in ("features", "cue"):
            raise ValueError(f"synthetic option 'mask' must be 'features' or 'cue', got {self.mask!r}")
        if self.mask == "cue" and self.cue == "none":
            raise ValueError("synthetic option 'mask: cue' needs a cue (option 'cue': matched or shuffled)")

    @classmethod
    def from_dict(cls, options: Mapping[str, Any] | None) -> SyntheticConfig:
        """Build from a mapping; unknown keys are an error naming the key."""
        options = dict(options or {})
        allowed = [f.name for f in fields(cls) if f.init]
        unknown = sorted(k for k in options if k not in allowed)
        if unknown:
            raise ValueError(
                f"unknown synthetic option {unknown[0]!r}"
                + (f" (and {unknown[1:]})" if len(unknown) > 1 else "")
                + f"; allowed: {', '.join(allowed)}"
            )
        return cls(**options)

    def counts(self) -> dict[str, int]:
        """Images per class name, in FER2013 class order."""
        return dict(self._counts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_counts", None)
        return d


def _parse_counts(n_per_class: Any) -> dict[str, int]:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(
                f"synthetic option 'n_per_class' for {name!r} must be an integer >= 0, got {value!r}")
        return int(value)

    if isinstance(n_per_class, Mapping):
        unknown = [k for k in n_per_class if k not in FER2013_CLASSES]
        if unknown:
            raise ValueError(
                f"synthetic option 'n_per_class' names unknown class {unknown[0]!r}; "
                f"classes: {', '.join(FER2013_CLASSES)}"
            )
        missing = [c for c in FER2013_CLASSES if c not in n_per_class]
        if missing:
            raise ValueError(f"synthetic option 'n_per_class' lacks a count for classes {missing}")
        return {c: check(c, n_per_class[c]) for c in FER2013_CLASSES}
    count = check("every class", n_per_class)
    return {c: count for c in FER2013_CLASSES}


# Expression geometry in face units (face half-width = 1, v grows downwards, eyes at v = -0.16).
# brow_y: brow height; brow_tilt > 0 lowers the inner ends (frown), < 0 raises them (worry);
# eye_h: eye opening half-height; mouth_curve > 0 lifts the corners; mouth_open_*: how far the
# upper / lower lip leave the mouth line; wrinkle: nose-bridge wrinkles drawn when > 0.5.
# All features are mirror-symmetric, so horizontal flips preserve the label.
_NEUTRAL = dict(brow_y=-0.44, brow_tilt=0.0, brow_arch=0.03, eye_h=0.075, mouth_w=0.30,
                mouth_curve=0.0, mouth_open_up=0.0, mouth_open_lo=0.0, wrinkle=0.0)
EXPRESSIONS: dict[str, dict[str, float]] = {
    "angry": dict(_NEUTRAL, brow_y=-0.35, brow_tilt=0.16, brow_arch=0.0, eye_h=0.055,
                  mouth_w=0.21, mouth_curve=-0.03),
    "disgust": dict(_NEUTRAL, brow_y=-0.38, brow_tilt=0.06, brow_arch=0.0, eye_h=0.045,
                    mouth_w=0.27, mouth_curve=-0.07, mouth_open_up=0.09, wrinkle=1.0),
    "fear": dict(_NEUTRAL, brow_y=-0.54, brow_tilt=-0.10, brow_arch=0.02, eye_h=0.12,
                 mouth_w=0.40, mouth_curve=-0.03, mouth_open_up=0.03, mouth_open_lo=0.07),
    "happy": dict(_NEUTRAL, brow_y=-0.46, brow_arch=0.05, eye_h=0.045, mouth_w=0.38,
                  mouth_curve=0.14, mouth_open_lo=0.08),
    "sad": dict(_NEUTRAL, brow_tilt=-0.16, brow_arch=0.0, eye_h=0.06, mouth_w=0.28,
                mouth_curve=-0.12),
    "surprise": dict(_NEUTRAL, brow_y=-0.60, brow_arch=0.10, eye_h=0.13, mouth_w=0.14,
                     mouth_open_up=0.14, mouth_open_lo=0.16),
    "neutral": dict(_NEUTRAL),
}
_EYE_Y, _EYE_X, _EYE_W, _MOUTH_Y = -0.16, 0.36, 0.17, 0.52
_BROW_HALF, _LIP_HALF, _WRINKLE_HALF = 0.055, 0.045, 0.03
# Darkening (fraction of the local shade removed) per feature.
_C_BROW, _C_EYE, _C_PUPIL, _C_LIP, _C_MOUTH, _C_WRINKLE, _C_NOSTRIL = 0.7, 0.5, 0.85, 0.55, 0.8, 0.5, 0.45
_OCCLUDER_MAX_COVER = 0.4  # an occluder hiding more of the features than this is redrawn
# Nuisance ranges at nuisance 1: shift (fraction of the side), scale (fraction), rotation.
_SHIFT, _SCALE, _ROTATION_DEG = 0.10, 0.12, 15.0
# Expressions are drawn at 60-100 % of full strength, so neighbouring classes come closer.
_MIN_INTENSITY = 0.6


@lru_cache(maxsize=16)
def _pixel_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = np.arange(size, dtype=np.float64) + 0.5 - size / 2
    y, x = np.meshgrid(c, c, indexing="ij")
    return x, y


@lru_cache(maxsize=32)
def _upsample_matrix(size: int, k: int) -> np.ndarray:
    """(size, k) bilinear weights, so M @ g @ M.T smoothly upsamples a k×k grid."""
    t = (np.arange(size) + 0.5) / size * (k - 1)
    lo = np.clip(np.floor(t).astype(int), 0, k - 2)
    frac = t - lo
    m = np.zeros((size, k))
    m[np.arange(size), lo] = 1 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def _soft(d: np.ndarray, px: float) -> np.ndarray:
    """Coverage from a signed distance (negative inside), with a one-pixel anti-aliased edge."""
    return np.clip(0.5 - d / px, 0.0, 1.0)


def _ellipse_dist(u: np.ndarray, v: np.ndarray, cu: float, cv: float, a: float, b: float) -> np.ndarray:
    # First-order distance f/|grad f|: exact enough near the edge, which is all _soft looks at.
    du, dv = u - cu, v - cv
    f = (du / a) ** 2 + (dv / b) ** 2 - 1
    grad = 2 * np.sqrt((du / a**2) ** 2 + (dv / b**2) ** 2)
    return f / np.maximum(grad, 1e-9)


def _stroke_dist(u: np.ndarray, v: np.ndarray, pts: np.ndarray, half: float, px: float) -> np.ndarray:
    """Distance to a thick polyline given by densely sampled points (a chain of discs)."""
    # Only pixels near the stroke's bounding box can be covered; skipping the rest makes
    # rendering several times faster. Far pixels get a distance that _soft maps to 0.
    reach = half + 2 * px
    near = ((u >= pts[:, 0].min() - reach) & (u <= pts[:, 0].max() + reach)
            & (v >= pts[:, 1].min() - reach) & (v <= pts[:, 1].max() + reach))
    d = np.full(u.shape, reach)
    un, vn = u[near], v[near]
    d2 = (un[:, None] - pts[:, 0]) ** 2 + (vn[:, None] - pts[:, 1]) ** 2
    d[near] = np.sqrt(d2.min(axis=1)) - half
    return d


def _mirror(pts: np.ndarray) -> np.ndarray:
    return np.concatenate([pts, pts * np.array([-1.0, 1.0])])


def _features(u: np.ndarray, v: np.ndarray, px: float, p: dict[str, float],
              eye_x: float, eye_y: float, mouth_y: float) -> tuple[np.ndarray, np.ndarray]:
    """Darkening map and class-feature coverage for expression parameters `p`."""
    # Brows: inner end (t=0) near the midline, outer end (t=1) beyond the eye.
    t = np.linspace(0.0, 1.0, 16)
    brow_v = eye_y + (p["brow_y"] - _EYE_Y) + p["brow_tilt"] * (0.5 - t) - p["brow_arch"] * 4 * t * (1 - t)
    brow_pts = _mirror(np.stack([eye_x - 0.26 + 0.46 * t, brow_v], axis=1))
    a_brow = _soft(_stroke_dist(u, v, brow_pts, _BROW_HALF, px), px)

    a_eye = np.zeros_like(u)
    a_pupil = np.zeros_like(u)
    for side in (-1.0, 1.0):
        opening = _soft(_ellipse_dist(u, v, side * eye_x, eye_y, _EYE_W, p["eye_h"]), px)
        pupil = _soft(_ellipse_dist(u, v, side * eye_x, eye_y, 0.075, 0.075), px)
        a_eye = np.maximum(a_eye, opening)
        a_pupil = np.maximum(a_pupil, np.minimum(opening, pupil))

    # Mouth: two lip curves around a midline with lifted/lowered corners; the opening between
    # them follows an elliptic profile so a small wide-open mouth comes out round.
    w, curve = p["mouth_w"], p["mouth_curve"]
    s = np.linspace(-1.0, 1.0, 32)
    prof = np.sqrt(1 - s**2)
    mid = mouth_y - curve * s**2
    upper, lower = mid - p["mouth_open_up"] * prof, mid + p["mouth_open_lo"] * prof
    lip_pts = np.concatenate([np.stack([w * s, upper], 1), np.stack([w * s, lower], 1)])
    a_lip = _soft(_stroke_dist(u, v, lip_pts, _LIP_HALF, px), px)
    su = np.clip(u / w, -1.0, 1.0)
    sprof = np.sqrt(1 - su**2)
    smid = mouth_y - curve * su**2
    inside = np.maximum.reduce([smid - p["mouth_open_up"] * sprof - v,
                                v - smid - p["mouth_open_lo"] * sprof, np.abs(u) - w])
    a_mouth = _soft(inside, px)

    a_wrinkle = np.zeros_like(u)
    if p["wrinkle"] > 0.5:
        tw = np.linspace(-1.0, 1.0, 10)
        rows = [np.stack([0.09 * tw, eye_y + dv + 0.02 * tw**2], 1) for dv in (0.10, 0.17)]
        a_wrinkle = _soft(_stroke_dist(u, v, np.concatenate(rows), _WRINKLE_HALF, px), px)

    nostrils = np.array([[0.075, mouth_y - 0.25], [-0.075, mouth_y - 0.25]])
    # Nostrils look the same in every class, so they stay out of the mask.
    a_nose = _soft(_stroke_dist(u, v, nostrils, 0.035, px), px)

    dark = np.maximum.reduce([_C_BROW * a_brow, _C_EYE * a_eye, _C_PUPIL * a_pupil, _C_LIP * a_lip,
                              _C_MOUTH * a_mouth, _C_WRINKLE * a_wrinkle, _C_NOSTRIL * a_nose])
    coverage = np.maximum.reduce([a_brow, a_eye, a_lip, a_mouth, a_wrinkle])
    return dark, coverage


def render_face(
    rng: np.random.Generator,
    label: int,
    size: int = 48,
    nuisance: float = 1.0,
    occluder_prob: float = 0.1,
    noise_sigma: float = 8.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Render one face of class index `label`: (uint8 image HxW, bool mask of class features).

    The mask holds the visible pixels of brows, eyes, mouth and nose wrinkles; pixels hidden by
    an occluder are left out because no classifier can use them.
    """
    if not 0 <= label < len(FER2013_CLASSES):
        raise ValueError(f"label must be in [0, {len(FER2013_CLASSES)}), got {label}")
    n = float(nuisance)
    # Every draw is made whatever the nuisance strength, in a fixed order, so `nuisance` only
    # rescales them: the same rng gives the same expression at nuisance 0 and 1.
    intensity = rng.uniform(_MIN_INTENSITY, 1.0)
    j_eye_x, j_eye_y, j_mouth, j_brow = rng.uniform(-1, 1, 4)
    shift = rng.uniform(-1, 1, 2)
    z_scale, z_rot, z_aspect, z_face, z_bg = rng.uniform(-1, 1, 5)
    light_amp, light_dir = rng.uniform(0, 1), rng.uniform(0, 2 * np.pi)
    tex_coarse, tex_fine = rng.standard_normal((5, 5)), rng.standard_normal((12, 12))
    noise = rng.standard_normal((size, size))
    occlude = rng.uniform() < min(1.0, occluder_prob * n)

    x, y = _pixel_grid(size)
    half_w = 0.38 * size * (1 + _SCALE * z_scale * n)  # face half-width in pixels
    cx, cy = shift * _SHIFT * size * n
    theta = np.deg2rad(_ROTATION_DEG) * z_rot * n
    cos, sin = np.cos(theta), np.sin(theta)
    u = (cos * (x - cx) + sin * (y - cy)) / half_w
    v = (-sin * (x - cx) + cos * (y - cy)) / half_w
    px = 1.0 / half_w

    name = FER2013_CLASSES[label]
    p = {k: _NEUTRAL[k] + intensity * (EXPRESSIONS[name][k] - _NEUTRAL[k]) for k in _NEUTRAL}
    p["brow_y"] += 0.02 * j_brow * n
    eye_x, eye_y = _EYE_X + 0.03 * j_eye_x * n, _EYE_Y + 0.03 * j_eye_y * n
    mouth_y = _MOUTH_Y + 0.04 * j_mouth * n
    dark, coverage = _features(u, v, px, p, eye_x, eye_y, mouth_y)

    aspect = 1.22 + 0.10 * z_aspect * n
    face_r2 = u**2 + (v / aspect) ** 2
    a_face = _soft(_ellipse_dist(u, v, 0.0, 0.0, 1.0, aspect), px)
    face_shade = (170.0 + 45.0 * z_face * n) * (1 - 0.15 * np.minimum(face_r2, 1.0))  # rounded look
    m5, m12 = _upsample_matrix(size, 5), _upsample_matrix(size, 12)
    background = (100.0 + 80.0 * z_bg * n + 18.0 * n * (m5 @ tex_coarse @ m5.T)
                  + 8.0 * n * (m12 @ tex_fine @ m12.T))
    img = background * (1 - a_face) + face_shade * a_face
    img = img * (1 - dark)

    mask = coverage > 0.5
    if occlude:
        a_occ = _draw_occluder(rng, x, y, cx, cy, half_w, size, mask)
        if a_occ is not None:
            img = img * (1 - a_occ) + rng.uniform(40.0, 230.0) * a_occ
            mask &= a_occ < 0.5

    xn, yn = x / (size / 2), y / (size / 2)
    img = img * (1 + 0.35 * light_amp * n * (np.cos(light_dir) * xn + np.sin(light_dir) * yn))
    img = img + noise_sigma * n * noise
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), mask


def _draw_occluder(rng: np.random.Generator, x: np.ndarray, y: np.ndarray, cx: float, cy: float,
                   half_w: float, size: int, features: np.ndarray) -> np.ndarray | None:
    """Coverage of a bar or hand-like blob near the face edge, or None if every try hid too much."""
    n_feat = max(int(features.sum()), 1)
    px = 1.0  # x, y are in pixels here
    for _ in range(4):
        direction = rng.uniform(0, 2 * np.pi)
        radius = rng.uniform(0.6, 1.3) * half_w
        ox, oy = cx + radius * np.cos(direction), cy + radius * np.sin(direction)
        angle = rng.uniform(0, np.pi)
        ca, sa = np.cos(angle), np.sin(angle)
        along, across = ca * (x - ox) + sa * (y - oy), -sa * (x - ox) + ca * (y - oy)
        if rng.uniform() < 0.5:
            a = _soft(np.abs(across) - rng.uniform(0.05, 0.10) * size, px)  # a bar across the image
        else:
            a_len, b_len = rng.uniform(0.15, 0.30, 2) * size  # a hand-like blob
            a = _soft(_ellipse_dist(along, across, 0.0, 0.0, a_len, b_len), px)
        if (features & (a >= 0.5)).sum() / n_feat <= _OCCLUDER_MAX_COVER:
            return a
    return None


def render_sample(config: SyntheticConfig, label: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Image `index` of class `label` under `config`, exactly as `generate` writes it."""
    rng = np.random.default_rng([config.seed, label, index])
    if config.kind == "center_patch":
        from ferxai.data.center_patch import render_center_patch

        return render_center_patch(rng, label, config.size, config.patch_size, config.nuisance, config.noise_sigma)
    image, mask = render_face(rng, label, config.size, config.nuisance, config.occluder_prob, config.noise_sigma)
    if config.cue == "none":
        return image, mask
    from ferxai.data.shortcut import CUE_STREAM, add_cue

    cue_rng = np.random.default_rng([config.seed, label, index, CUE_STREAM])
    image, cue_mask, _ = add_cue(cue_rng, image, label, config.cue, config.cue_probability, config.cue_size)
    return image, (cue_mask if config.mask == "cue" else mask & ~cue_mask)


def generate(out_dir: str | Path, config: SyntheticConfig | Mapping[str, Any] | None = None) -> None:
    """Write images/<class>/<class>_<i>.png, masks/<class>/..., and index.csv under `out_dir`."""
    # PIL is imported here, not at the top: the config check, run on every snakemake call, imports
    # this module for SyntheticConfig alone.
    from PIL import Image

    cfg = config if isinstance(config, SyntheticConfig) else SyntheticConfig.from_dict(config)
    out = Path(out_dir)
    rows: list[tuple[str, str, str, int, str]] = []
    for label, name in enumerate(FER2013_CLASSES):
        count = cfg.counts()[name]
        img_dir, mask_dir = out / "images" / name, out / "masks" / name
        for d in (img_dir, mask_dir):
            d.mkdir(parents=True, exist_ok=True)
            _remove_stale(d, name, count)
        for i in range(count):
            img, mask = render_sample(cfg, label, i)
            stem = f"{name}_{i:05d}"
            Image.fromarray(img).save(img_dir / f"{stem}.png")
            Image.fromarray(mask).save(mask_dir / f"{stem}.png")  # bool -> 1-bit PNG
            rows.append((stem, f"images/{name}/{stem}.png", f"masks/{name}/{stem}.png", label, name))
    with open(out / "index.csv", "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(INDEX_COLUMNS)
        writer.writerows(rows)


def _remove_stale(directory: Path, name: str, count: int) -> None:
    # A smaller rerun into the same folder must not leave images the index no longer lists.
    pattern = re.compile(rf"{re.escape(name)}_(\d{{5}})\.png")
    for path in directory.iterdir():
        m = pattern.fullmatch(path.name)
        if m and int(m.group(1)) >= count:
            path.unlink()


def load_mask(path: str | Path) -> np.ndarray:
    """Read a mask PNG as a bool HxW array (any nonzero pixel is foreground)."""
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L")) > 0
