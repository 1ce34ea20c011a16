"""Input-noise conditions: explanations of the same images after corrupting them.

A condition is a string usable as a Snakemake wildcard and a zarr group name:

clean               the images as they are
gaussian-<sigma>    x + sigma * N(0, 1) per pixel and channel (sigma in [0, 1] image units)
saltpepper-<amount> a fraction `amount` in [0, 1] of the pixels set to 0 or 1 (half each);
                    a pixel is corrupted in all channels at once
speckle-<sigma>     x + x * sigma * N(0, 1) (multiplicative), sigma in [0, 1]

Results are clamped to [0, 1].

Determinism: the noise of one image comes from its own generator, seeded from
(seed, noise kind, index of the image in the selection). It therefore does not depend on the
shard or batch the image is processed in, nor on the other images. The level is *not* part of
the seed: gaussian-0.1 and gaussian-0.2 use the same standard-normal draw scaled differently,
and the pixels corrupted by saltpepper-0.05 are a subset of those of saltpepper-0.1 (common
random numbers: comparisons across levels are not blurred by different noise patterns).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

NOISE_KINDS = ("gaussian", "saltpepper", "speckle")
CONDITION_PATTERN = r"clean|(?:gaussian|saltpepper|speckle)-[0-9.]+"
_NAME = re.compile(r"^(?P<kind>[a-z]+)(?:-(?P<level>.*))?$")


class ConditionError(ValueError):
    """A condition string that cannot be parsed; the message names it and the valid forms."""


@dataclass(frozen=True)
class Condition:
    kind: str  # "clean" | "gaussian" | "saltpepper" | "speckle"
    level: float = 0.0

    @property
    def name(self) -> str:
        """Canonical string, e.g. "gaussian-0.1" (`parse_condition(c.name) == c`)."""
        if self.kind == "clean":
            return "clean"
        return f"{self.kind}-{np.format_float_positional(self.level, trim='-')}"

    def __str__(self) -> str:
        return self.name


def _error(name: object, why: str) -> ConditionError:
    return ConditionError(
        f"bad noise condition {name!r}: {why}; valid forms: clean, gaussian-<sigma>, "
        "saltpepper-<amount>, speckle-<sigma> with a level in [0, 1], e.g. gaussian-0.1"
    )


def parse_condition(name: str | Condition) -> Condition:
    """"gaussian-0.1" -> Condition("gaussian", 0.1); raises ConditionError naming the problem."""
    if isinstance(name, Condition):
        return name
    if not isinstance(name, str):
        raise _error(name, "not a string")
    match = _NAME.match(name.strip())
    if not match:
        raise _error(name, "expected <kind> or <kind>-<level>")
    kind, level_text = match["kind"], match["level"]
    if kind == "clean":
        if level_text is not None:
            raise _error(name, "'clean' takes no level")
        return Condition("clean", 0.0)
    if kind not in NOISE_KINDS:
        raise _error(name, f"unknown noise kind {kind!r}")
    if level_text is None or level_text == "":
        raise _error(name, f"{kind!r} needs a level")
    if not re.fullmatch(r"[0-9]*\.?[0-9]+|[0-9]+\.", level_text):
        raise _error(name, f"level {level_text!r} is not a plain decimal number")
    level = float(level_text)
    if not (0.0 <= level <= 1.0) or not math.isfinite(level):
        raise _error(name, f"level {level:g} is outside [0, 1]")
    return Condition(kind, level)


def _generator(seed: int, kind: str, index: int) -> np.random.Generator:
    # crc32 rather than hash(): Python's str hash changes between processes.
    entropy = [int(seed) % 2**64, zlib.crc32(kind.encode()), int(index)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def noise_for_image(shape: Sequence[int], condition: str | Condition, seed: int, index: int) -> np.ndarray:
    """The raw random draw for one image (C, H, W): standard normal (gaussian, speckle) or
    uniform [0, 1) per pixel broadcast over channels (saltpepper); zeros for clean."""
    cond = parse_condition(condition)
    c, h, w = (int(s) for s in shape)
    if cond.kind == "clean":
        return np.zeros((c, h, w), np.float32)
    if int(index) < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    rng = _generator(seed, cond.kind, index)
    if cond.kind == "saltpepper":
        u = rng.random((1, h, w), dtype=np.float32)
        return np.broadcast_to(u, (c, h, w)).copy()
    return rng.standard_normal((c, h, w), dtype=np.float32)


def apply_noise(
    images: torch.Tensor,
    condition: str | Condition,
    seed: int,
    indices: Sequence[int] | np.ndarray | None = None,
    start: int = 0,
) -> torch.Tensor:
    """Corrupt float images (N, C, H, W) in [0, 1]; returns a new tensor on the same device.

    `indices` are the images' positions in the selection (default `start, start + 1, ...`, so a
    shard passes `start=shard_start`). "clean" returns `images` itself, unchanged.
    """
    cond = parse_condition(condition)
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images must be a torch tensor, got {type(images).__name__}")
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    if not images.is_floating_point():
        raise ValueError(f"images must be float in [0, 1], got dtype {images.dtype}")
    if cond.kind == "clean":
        return images
    n = images.shape[0]
    idx = np.arange(start, start + n) if indices is None else np.asarray(indices, dtype=np.int64).reshape(-1)
    if len(idx) != n:
        raise ValueError(f"{n} images but {len(idx)} indices")
    if n == 0:
        return images.clone()
    shape = tuple(images.shape[1:])
    draws = np.stack([noise_for_image(shape, cond, seed, int(i)) for i in idx])
    noise = torch.from_numpy(draws).to(device=images.device, dtype=images.dtype)
    if cond.kind == "gaussian":
        out = images + cond.level * noise
    elif cond.kind == "speckle":
        out = images + images * (cond.level * noise)
    else:  # saltpepper: u < amount/2 -> pepper (0), u >= 1 - amount/2 -> salt (1)
        half = cond.level / 2.0
        out = images.clone()
        out = torch.where(noise < half, torch.zeros_like(out), out)
        out = torch.where(noise >= 1.0 - half, torch.ones_like(out), out)
    return out.clamp_(0.0, 1.0)
