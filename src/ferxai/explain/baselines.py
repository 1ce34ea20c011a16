"""Reference inputs ("baselines") for path and Shapley-style gradient methods.

Integrated gradients, DeepLIFT and their SHAP variants explain ``f(x) - f(baseline)``, so the
baseline is part of the question being asked. Kinds (all in [0, 1] image space):

``black``       all zeros
``blur``        the image itself, Gaussian-blurred (``blur_sigma`` pixels): removes detail, keeps layout
``uniform``     uniform noise in [0, 1], drawn per image (seed with ``torch.manual_seed``)
``mean``        the training-set mean image                       -- needs ``mean_image``
``class_mean``  the mean training image of the *target* class     -- needs ``class_means``
``reference``   (distributions only) training images drawn at random -- needs ``images``

``mean``/``class_mean``/``reference`` need data the explainer does not have when it is built; the
workflow hands it over afterwards with ``explainer.set_reference(mean_image=..., class_means=...,
images=...)`` (see :class:`ReferenceBaselines`), and ``explainer.required_references()`` says
which of those the configured parameters need.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ferxai.explain.base import ExplainerConfigError
# The kinds (and which a method accepts for `baseline`) are stated in the catalog.
from ferxai.explain.catalog import BASELINES

# Which set_reference() argument each data-dependent kind needs.
NEEDS: dict[str, str] = {"mean": "mean_image", "class_mean": "class_means", "reference": "images"}


# --------------------------------------------------------------------------- kinds


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (N, C, H, W) images, `sigma` in pixels, edges replicated."""
    if sigma <= 0:
        return images.clone()
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    kernel = torch.exp(-(x**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    out = F.conv2d(F.pad(images, (radius, radius, 0, 0), mode="replicate"),
                   kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.conv2d(F.pad(out, (0, 0, radius, radius), mode="replicate"),
                   kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return out


def _check_image(ref: torch.Tensor, inputs: torch.Tensor, what: str) -> torch.Tensor:
    if tuple(ref.shape) != tuple(inputs.shape[1:]):
        raise ValueError(f"{what} has shape {tuple(ref.shape)}; the images are {tuple(inputs.shape[1:])}")
    return ref.to(device=inputs.device, dtype=inputs.dtype)


def _class_means_for(class_means: torch.Tensor, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    if class_means.ndim != 4 or tuple(class_means.shape[1:]) != tuple(inputs.shape[1:]):
        raise ValueError(
            f"class_means must be (num_classes, {', '.join(map(str, inputs.shape[1:]))}), "
            f"got {tuple(class_means.shape)}"
        )
    if len(targets) and int(targets.max()) >= len(class_means):
        raise ValueError(f"target class {int(targets.max())} has no class mean ({len(class_means)} given)")
    class_means = class_means.to(device=inputs.device, dtype=inputs.dtype)
    return class_means[targets.to(class_means.device)]


def make_baseline(
    kind: str, inputs: torch.Tensor, targets: torch.Tensor, *,
    mean_image: torch.Tensor | None = None, class_means: torch.Tensor | None = None,
    blur_sigma: float = 5.0, generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One baseline per image, shaped like `inputs` (N, C, H, W).

    `mean_image` is (C, H, W); `class_means` is (K, C, H, W), indexed by `targets`.
    `generator` (on the inputs' device) makes ``uniform`` reproducible; None uses torch's global RNG.
    """
    if kind == "black":
        return torch.zeros_like(inputs)
    if kind == "blur":
        return gaussian_blur(inputs, float(blur_sigma))
    if kind == "uniform":
        return torch.rand(inputs.shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
    if kind == "mean":
        if mean_image is None:
            raise ValueError("baseline 'mean' needs the dataset mean image (mean_image)")
        return _check_image(mean_image, inputs, "mean_image").expand_as(inputs).clone()
    if kind == "class_mean":
        if class_means is None:
            raise ValueError("baseline 'class_mean' needs the per-class mean images (class_means)")
        return _class_means_for(class_means, inputs, targets.reshape(-1).long())
    raise ValueError(f"unknown baseline {kind!r}; choose one of {', '.join(BASELINES)}")


def sample_baselines(
    kind: str, inputs: torch.Tensor, targets: torch.Tensor, n: int, *,
    mean_image: torch.Tensor | None = None, class_means: torch.Tensor | None = None,
    images: torch.Tensor | None = None, blur_sigma: float = 5.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """`n` baselines per image, (N, n, C, H, W), for the SHAP-style methods.

    ``uniform`` draws fresh noise and ``reference`` draws from `images` (M, C, H, W) with
    replacement; the other kinds repeat their one baseline per image.
    """
    shape = (inputs.shape[0], n, *inputs.shape[1:])
    if kind == "uniform":
        return torch.rand(shape, generator=generator, device=inputs.device, dtype=inputs.dtype)
    if kind == "reference":
        if images is None:
            raise ValueError("baseline 'reference' needs reference images (images)")
        if images.ndim != 4 or tuple(images.shape[1:]) != tuple(inputs.shape[1:]):
            raise ValueError(f"reference images must be (M, {', '.join(map(str, inputs.shape[1:]))}), "
                             f"got {tuple(images.shape)}")
        idx = torch.randint(len(images), (inputs.shape[0] * n,), generator=generator,
                            device=generator.device if generator is not None else "cpu")
        images = images.to(device=inputs.device, dtype=inputs.dtype)
        return images[idx.to(images.device)].view(shape)
    one = make_baseline(kind, inputs, targets, mean_image=mean_image, class_means=class_means,
                        blur_sigma=blur_sigma, generator=generator)
    return one.unsqueeze(1).expand(shape)


# --------------------------------------------------------------------------- explainer mixin


class ReferenceBaselines:
    """Mixin for Explainers with a ``baseline`` parameter (and ``blur_sigma``).

    Call :meth:`set_reference` with dataset statistics before explaining with the
    data-dependent kinds; :meth:`required_references` lists what the parameters need.
    """

    # set by the Explainer base class (`baseline` is one of the kinds its catalog entry allows)
    name: str
    params: dict[str, Any]

    def set_reference(
        self, mean_image: torch.Tensor | None = None, class_means: torch.Tensor | None = None,
        images: torch.Tensor | None = None,
    ) -> "ReferenceBaselines":
        """Hand over dataset references: mean image (C, H, W), class means (K, C, H, W), images (M, C, H, W).

        Arguments left as None keep what was set before. Returns self.
        """
        refs = dict(getattr(self, "_references", {}))
        for key, value, ndim in (("mean_image", mean_image, 3), ("class_means", class_means, 4),
                                 ("images", images, 4)):
            if value is None:
                continue
            value = torch.as_tensor(value).detach().float()
            if value.ndim != ndim:
                raise ValueError(f"method {self.name!r}: set_reference({key}=...) must have {ndim} "
                                 f"dimensions, got shape {tuple(value.shape)}")
            refs[key] = value
        self._references = refs
        return self

    def required_references(self) -> tuple[str, ...]:
        """The set_reference() arguments the configured baseline needs (empty when none)."""
        need = NEEDS.get(self.params.get("baseline", ""))
        return (need,) if need else ()

    def _references_for(self) -> dict[str, torch.Tensor]:
        refs = getattr(self, "_references", {})
        for need in self.required_references():
            if need not in refs:
                kind = self.params["baseline"]
                raise ExplainerConfigError(
                    f"method {self.name!r}: parameter 'baseline' is {kind!r}, which needs "
                    f"{need} from the training data; call set_reference({need}=...) first, "
                    f"or choose a baseline that needs no data (black, blur, uniform)"
                )
        return refs

    def _baseline(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        refs = self._references_for()
        try:
            return make_baseline(self.params["baseline"], inputs, targets,
                                 mean_image=refs.get("mean_image"), class_means=refs.get("class_means"),
                                 blur_sigma=self.params.get("blur_sigma", 5.0))
        except ValueError as err:
            raise ValueError(f"method {self.name!r}: {err}") from err

    def _baseline_samples(self, inputs: torch.Tensor, targets: torch.Tensor, n: int) -> torch.Tensor:
        refs = self._references_for()
        try:
            return sample_baselines(self.params["baseline"], inputs, targets, n,
                                    mean_image=refs.get("mean_image"), class_means=refs.get("class_means"),
                                    images=refs.get("images"), blur_sigma=self.params.get("blur_sigma", 5.0))
        except ValueError as err:
            raise ValueError(f"method {self.name!r}: {err}") from err
