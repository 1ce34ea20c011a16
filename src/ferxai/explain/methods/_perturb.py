"""Shared pieces of the perturbation methods: masks, fills, batched forwards, segmentation.

Every perturbation method reduces to "evaluate the model on many perturbed copies of each image".
The copies are never materialised all at once: a method describes perturbation number `k` of the
flattened (image x sample) grid by a `build(idx)` function, and :func:`forward_chunks` evaluates
the grid in chunks of at most `batch_size` model inputs, so one chunk mixes the samples of
several images (and several images' samples fill one chunk). Masks are stored once (shared by
all images) or as small per-image label maps, and expanded with one gather per chunk.

Conventions: masks are float in [0, 1] with 1 = keep the pixel, 0 = replace it by the fill;
a perturbed input is ``fill + mask * (image - fill)`` (``torch.lerp``), written straight into a
channels-last tensor on the CPU (see :func:`fast_layout`).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from ferxai.explain.base import Explainer
from ferxai.explain.catalog import window_count

# --------------------------------------------------------------------------- fills and masks

def window_offsets(size: int, window: int, stride: int) -> list[int]:
    """Start offsets of a sliding window along one side, as Captum's Occlusion places them.

    ceil((size - window) / stride) + 1 positions at multiples of `stride`; the last one may run
    past the border and is then cut off there, so every pixel is covered.
    """
    return [k * stride for k in range(window_count(size, window, stride))]


def window_masks(height: int, width: int, window: int, stride: int, device: torch.device) -> torch.Tensor:
    """(n_windows, H, W) bool, True inside each sliding window (row-major window order).

    The window side is clipped to the image side in each direction.
    """
    def along(size: int) -> torch.Tensor:
        side = min(window, size)
        pos = torch.arange(size, device=device)
        starts = torch.tensor(window_offsets(size, side, stride), device=device)
        return (pos[None, :] >= starts[:, None]) & (pos[None, :] < starts[:, None] + side)

    in_r, in_c = along(height), along(width)  # (nr, H), (nc, W)
    return (in_r[:, None, :, None] & in_c[None, :, None, :]).reshape(-1, height, width)


def patch_labels(height: int, width: int, patch: int, device: torch.device) -> torch.Tensor:
    """(H, W) long feature map of square `patch` x `patch` cells, numbered row-major from 0."""
    r = torch.arange(height, device=device) // patch
    c = torch.arange(width, device=device) // patch
    n_cols = math.ceil(width / patch)
    return r[:, None] * n_cols + c[None, :]


# --------------------------------------------------------------------------- batched forwards

def fast_layout(x: torch.Tensor) -> torch.Tensor:
    """`x` in the memory layout the model runs fastest on: channels-last on the CPU.

    oneDNN's channels-last convolutions are 20-35 % faster per image than the default layout for
    fer_cnn, ResNet and DenseNet on the CPU (measured, 48 px, 1 and 3 channels; ViT about equal);
    values are unchanged. One-channel tensors need explicit strides: for them `.contiguous(
    memory_format=channels_last)` is a no-op because both layouts count as contiguous.
    On GPUs the default layout is kept.
    """
    if x.device.type != "cpu" or x.ndim != 4:
        return x
    if x.stride(1) == 1 and x.is_contiguous(memory_format=torch.channels_last):
        return x
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device, memory_format=torch.channels_last)
    return out.copy_(x)


@torch.no_grad()
def forward_chunks(
    model: torch.nn.Module,
    total: int,
    build: Callable[[torch.Tensor], torch.Tensor],
    batch_size: int,
    targets: torch.Tensor | None = None,
    device: torch.device | None = None,
) -> torch.Tensor:
    """Evaluate `model(build(idx))` for idx = 0..total-1 in chunks of at most `batch_size`.

    `targets` (total,) selects one output per input: returns (total,) float; without it the
    whole output (total, K) is returned.
    """
    outs = []
    for start in range(0, total, batch_size):
        idx = torch.arange(start, min(start + batch_size, total), device=device)
        y = model(fast_layout(build(idx)))
        if targets is not None:
            y = y.gather(1, targets[idx].view(-1, 1)).squeeze(1)
        outs.append(y.float())
    return torch.cat(outs) if outs else torch.empty(0, device=device)


def masked_scores(
    model: torch.nn.Module,
    images: torch.Tensor,
    targets: torch.Tensor,
    n_samples: int,
    mask: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | torch.Tensor,
    fill: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | torch.Tensor,
    batch_size: int,
) -> torch.Tensor:
    """Target scores of `n_samples` perturbations of every image: (N, n_samples).

    Perturbation (i, s) is ``fill + m * (images[i] - fill)``. `mask` is either a tensor
    (n_samples, 1 or C, H, W) shared by all images or a function (i, s) -> (B, 1 or C, H, W);
    `fill` is either a tensor (N, C, 1 or H, 1 or W) per image or a function (i, s) -> (B, C, H, W).
    The (image, sample) grid is flattened image-major and evaluated `batch_size` inputs at a time.
    """
    n = images.shape[0]

    def build(idx: torch.Tensor) -> torch.Tensor:
        i, s = idx // n_samples, idx % n_samples
        m = mask[s] if isinstance(mask, torch.Tensor) else mask(i, s)
        f = fill[i] if isinstance(fill, torch.Tensor) else fill(i, s)
        x = images[i]
        out = torch.empty(x.shape, dtype=x.dtype, device=x.device,
                          memory_format=torch.channels_last if x.device.type == "cpu" else torch.contiguous_format)
        return torch.lerp(f.expand_as(x), x, m.to(x.dtype).expand_as(x), out=out)

    flat_targets = targets.repeat_interleave(n_samples)
    out = forward_chunks(model, n * n_samples, build, batch_size, flat_targets, images.device)
    return out.view(n, n_samples)


# --------------------------------------------------------------------------- segmentation

def segment(
    images: torch.Tensor,
    method: str,
    n_segments: int,
    compactness: float,
    kernel_size: float,
    max_dist: float,
    ratio: float | None,
    seed: int,
) -> tuple[torch.Tensor, list[int]]:
    """Superpixels of each image: ((N, H, W) long labels 0..K_i-1 on the images' device, [K_i]).

    Grey images are scaled to 0..100 (the range of Lab lightness) so that the SLIC compactness
    and the quickshift ratio mean the same for grey and colour images, which are converted to Lab.
    `ratio` None = 0.5 for grey and lime's 0.2 for colour images (colour adds the a/b distances;
    at 48 px both give roughly 30-80 quickshift segments on faces and photos).
    """
    from skimage.segmentation import quickshift, slic

    arr = images.detach().float().cpu().permute(0, 2, 3, 1).numpy()  # (N, H, W, C) in [0, 1]
    labels, counts = [], []
    for img in arr:
        grey = img.shape[2] == 1
        if method == "slic":
            if grey:
                seg = slic(img[..., 0] * 100.0, n_segments=n_segments, compactness=compactness,
                           channel_axis=None, start_label=0)
            else:
                seg = slic(img, n_segments=n_segments, compactness=compactness, channel_axis=-1,
                           convert2lab=True, start_label=0)
        else:
            rgb = np.repeat(img, 3, axis=2) if grey else img
            r = ratio if ratio is not None else (0.5 if grey else 0.2)
            seg = quickshift(rgb.astype(np.float64), kernel_size=kernel_size, max_dist=max_dist,
                             ratio=r, convert2lab=True, rng=seed)
        # consecutive labels 0..K-1 whatever the algorithm returned
        _, seg = np.unique(seg, return_inverse=True)
        seg = seg.reshape(img.shape[:2])
        labels.append(seg)
        counts.append(int(seg.max()) + 1)
    out = torch.from_numpy(np.stack(labels).astype(np.int64)).to(images.device)
    return out, counts


# --------------------------------------------------------------------------- base class

class PerturbationExplainer(Explainer):
    """Base of the perturbation family (its cost models follow the image side, see `Explainer.hw`)."""


__all__ = ["PerturbationExplainer", "fast_layout", "forward_chunks", "masked_scores", "patch_labels",
           "segment", "window_masks", "window_offsets"]
