"""Grid of sample images per class, optionally with ground-truth mask outlines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # a bare Figure renders with Agg and touches no display

from ferxai.classes import FER2013_CLASSES


def plot_sample_grid(
    images: Sequence[np.ndarray] | np.ndarray,
    labels: Sequence[int] | np.ndarray,
    class_names: Sequence[str],
    masks: Sequence[np.ndarray] | np.ndarray | None = None,
    per_class: int = 6,
) -> Figure:
    """One row per class with its first `per_class` images; masks are drawn as outlines."""
    labels = np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if masks is not None and len(masks) != len(labels):
        raise ValueError(f"{len(masks)} masks but {len(labels)} labels")
    n_rows, n_cols = len(class_names), max(per_class, 1)
    fig = Figure(figsize=(1.0 + 1.1 * n_cols, 0.3 + 1.1 * n_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for row, name in enumerate(class_names):
        picks = np.flatnonzero(labels == row)[:n_cols]
        for col in range(n_cols):
            ax = axes[row, col]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if col == 0:
                ax.set_ylabel(f"{name}\n(n={int((labels == row).sum())})", fontsize=9)
            if col >= len(picks):
                continue
            img = np.asarray(images[picks[col]])
            # Fixed 0..255 range so brightness differences between samples stay visible.
            vmax = 255 if img.dtype == np.uint8 else None
            ax.imshow(img, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            if masks is not None:
                mask = np.asarray(masks[picks[col]], dtype=float)
                if mask.any():
                    ax.contour(mask, levels=[0.5], colors="#ff3b30", linewidths=0.7)
    return fig


def save_synthetic_grid(path: str | Path, config: object | None = None, per_class: int = 6,
                        dpi: int = 100) -> None:
    """Render the first `per_class` synthetic images of each class (as `generate` would) to `path`."""
    from ferxai.data.synthetic import SyntheticConfig, render_sample

    cfg = config if isinstance(config, SyntheticConfig) else SyntheticConfig.from_dict(config)
    images, masks, labels = [], [], []
    for label, name in enumerate(FER2013_CLASSES):
        for i in range(min(per_class, cfg.counts()[name])):
            img, mask = render_sample(cfg, label, i)
            images.append(img)
            masks.append(mask)
            labels.append(label)
    fig = plot_sample_grid(images, labels, FER2013_CLASSES, masks=masks, per_class=per_class)
    # The row labels would otherwise report the grid's sample count, not the dataset's.
    for row, name in enumerate(FER2013_CLASSES):
        fig.axes[row * per_class].set_ylabel(f"{name}\n(n={cfg.counts()[name]})", fontsize=9)
    fig.suptitle(f"synthetic FER, {cfg.size}px, seed {cfg.seed}, nuisance {cfg.nuisance:g} "
                 "(red: ground-truth mask)", fontsize=9)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
