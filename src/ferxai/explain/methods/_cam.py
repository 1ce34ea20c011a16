"""Shared base of the CAM family, written on plain torch: one small file per method on top.

The maps equal pytorch-grad-cam's classes of the same name (tests/test_explain_cam.py compares
every method, with and without its smoothing options, against grad-cam 1.5.7 on fer_cnn and
ResNet18); the option names are the library's. A method states how it weights the target layer's
activations, in one of two ways:

* `channel_weights(acts, grads)` -> (N, C): the map is ``sum_c w_c * A_c`` (Grad-CAM, Grad-CAM++,
  XGrad-CAM; Score-CAM and Ablation-CAM compute their weights with extra model passes);
* `weighted_activations(...)` -> (N, C, h, w) for methods that weight each location (HiResCAM,
  LayerCAM, element-wise Grad-CAM) or project (EigenCAM, EigenGrad-CAM).

What the base does around that:

* **Target layer** — ``target_layer`` is a dotted path into the zoo model (``layer4``,
  ``features.block3.relu2``, ...). ``None`` picks the architecture catalog's default, read off the
  built model; a model that is not a zoo arch must name its layer. An unknown path is an
  `ExplainerConfigError` naming it and the closest module names.
* **Activations and gradients** — one forward pass records the layer's output through a forward
  hook that lives only for the call (removed in a ``finally``, so no hook outlives it; the model
  continues on a copy, so a later in-place op cannot alter what was recorded); the
  gradient of the summed target scores with respect to that output comes from
  `torch.autograd.grad`, so no weight gradients are computed and no ``.grad`` is left behind,
  whatever the caller's grad mode or the model's ``requires_grad`` flags. The attributed output is
  `forward_model`'s: logits, or probabilities with ``output: softmax``.
* **ViT** — a layer that outputs tokens ``(N, 1 + h*w, C)`` (``encoder.layers...``) is reshaped to
  ``(N, C, h, w)``, dropping the class token, with ``h, w = input side / patch_size``. Feature maps
  ``(N, C, h, w)`` pass through unchanged; any other output shape is an error naming the layer.
* **Output** — ReLU, then each map min-max normalised to [0, 1] *per image* (an all-zero CAM stays
  0), bilinearly resized to the input (torch's ``align_corners=False`` samples the same half-pixel
  grid as the library's cv2 INTER_LINEAR) and normalised again. Maps are comparable in shape within
  an image, not in magnitude across images.
* **aug_smooth** — the mean of the maps of six augmented inputs (horizontal flip x brightness
  0.9 / 1 / 1.1, each flipped map flipped back), so the maximum can be below 1.
* **eigen_smooth** — the weighted activations' first principal component instead of their channel
  sum (`_eigen.first_component_projection`, signed the same on every machine).
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from ferxai.explain.base import Explainer, ExplainerConfigError
from ferxai.explain.catalog import AUG_SMOOTH_PASSES
from ferxai.explain.layers import LayerNotFoundError, default_layer_path, resolve_layer
from ferxai.explain.methods._eigen import first_component_projection

# Side of the dummy image used to probe a target layer's output shape when no image has been
# seen yet (ViT models use their own `image_size`). 64 px suits every zoo CNN.
_PROBE_SIDE = 64
# aug_smooth's augmentations: (flip horizontally, brightness factor); the library's ttach set.
_AUGMENTATIONS = tuple((flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1))
assert len(_AUGMENTATIONS) == AUG_SMOOTH_PASSES


def normalise_per_image(maps: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """(N, h, w) -> each map shifted to min 0 and divided by (eps + its max): the library's scaling."""
    flat = maps.flatten(1)
    shifted = flat - flat.amin(dim=1, keepdim=True)
    return (shifted / (eps + shifted.amax(dim=1, keepdim=True))).view_as(maps)


def resize(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, h, w) -> (N, *size), bilinear on the half-pixel grid (cv2 INTER_LINEAR's)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]


def target_scores(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, classes) model outputs -> (N,) the target class's output per image."""
    return outputs.gather(1, targets[:, None])[:, 0]


@dataclass(frozen=True)
class LayerRecord:
    """What one pass through the model recorded at the target layer."""

    acts: torch.Tensor                 # (N, C, h, w) activations (ViT tokens reshaped)
    grads: torch.Tensor | None         # (N, C, h, w) d(target score)/d(acts); None for gradient-free CAMs
    output: torch.Tensor               # the layer's output as the model produced it (tokens stay tokens)
    scores: torch.Tensor               # (N,) the target class's output for each image


class CamExplainer(Explainer):
    """Base of the CAM family; subclasses weight the activations (parameters and cost: the catalog)."""

    uses_gradients: ClassVar[bool] = True
    uses_target_layer: ClassVar[bool] = True

    # -- set-up ---------------------------------------------------------------------------
    def validate(self) -> None:
        self._layer_path: str | None = None
        self._layer: nn.Module | None = None
        self._layer_shape: tuple[int, ...] | None = None  # probed output shape, batch of 1
        self._grid: tuple[int, int] | None = None
        if self.uses_target_layer:
            path = self.params["target_layer"]
            if path is None:
                path = self._default_layer_path()
            self._layer_path = path
            try:
                self._layer = resolve_layer(self.model, path)
            except LayerNotFoundError as err:
                raise ExplainerConfigError(f"method {self.name!r}: target_layer: {err}") from None

    def _default_layer_path(self) -> str:
        try:
            return default_layer_path(self.model, self.arch)
        except LayerNotFoundError as err:
            raise ExplainerConfigError(f"method {self.name!r}: {err}; set target_layer") from None

    # -- cost model (the catalog's; per-channel CAMs need the target layer's width) -----------
    def cost_inputs(self) -> dict[str, Any]:
        inputs = super().cost_inputs()
        if self._spec().needs_channels:
            inputs["channels"] = self.layer_channels()
        return inputs

    def layer_channels(self) -> int:
        """Channels of the target layer's output (feature maps: dim 1; ViT tokens: dim 2)."""
        shape = self._probe()
        return int(shape[2] if len(shape) == 3 else shape[1])

    def _probe(self, inputs: torch.Tensor | None = None) -> tuple[int, ...]:
        """Output shape of the target layer, from one forward pass (cached)."""
        if self._layer_shape is not None:
            return self._layer_shape
        if inputs is None:
            inputs = self._dummy_input()
        seen: list[tuple[int, ...]] = []
        handle = self._layer.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape)))
        try:
            with torch.no_grad():
                self.forward_model(inputs[:1])
        finally:
            handle.remove()
        if not seen:
            raise ExplainerConfigError(
                f"method {self.name!r}: target_layer {self._layer_path!r} is not used in the forward pass"
            )
        self._layer_shape = seen[0]
        return self._layer_shape

    def _dummy_input(self) -> torch.Tensor:
        device = next(self.model.parameters()).device
        norm = getattr(self.model, "input_norm", None)
        if norm is not None and hasattr(norm, "mean"):
            channels = int(norm.mean.shape[1])
        else:
            conv = next((m for m in self.model.modules() if isinstance(m, nn.Conv2d)), None)
            channels = conv.in_channels if conv is not None else 3
        side = int(getattr(self.model, "image_size", _PROBE_SIDE))
        return torch.zeros(1, channels, side, side, device=device)

    # -- what a method overrides ----------------------------------------------------------
    def channel_weights(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, C) weight per channel of the target layer's activations."""
        raise NotImplementedError(f"{type(self).__name__} must define channel_weights or weighted_activations")

    def weighted_activations(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w): what the map sums over channels (or projects, with eigen_smooth)."""
        return self.channel_weights(layer, inputs, targets)[:, :, None, None] * layer.acts

    def layer_map(self, layer: LayerRecord, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, h, w) map in the target layer's resolution, before ReLU and scaling."""
        weighted = self.weighted_activations(layer, inputs, targets)
        if self.params.get("eigen_smooth", False):
            return first_component_projection(weighted)
        return weighted.sum(dim=1)

    # -- the call ---------------------------------------------------------------------------
    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        patch = getattr(self.model, "patch_size", None)
        self._grid = (inputs.shape[2] // patch, inputs.shape[3] // patch) if isinstance(patch, int) else None
        x = inputs.detach()
        if not self.params.get("aug_smooth", False):
            return self._cam(x, targets)
        total = torch.zeros(x.shape[0], *x.shape[2:], device=x.device)
        for flip, factor in _AUGMENTATIONS:
            augmented = (x.flip(-1) if flip else x) * factor
            cam = self._cam(augmented, targets)
            total += cam.flip(-1) if flip else cam
        return total / len(_AUGMENTATIONS)

    def _cam(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        layer = self._record(x, targets)
        with torch.no_grad():
            cam = self.layer_map(layer, x, targets).float().clamp(min=0)
            return normalise_per_image(resize(normalise_per_image(cam), tuple(x.shape[-2:])))

    def _record(self, x: torch.Tensor, targets: torch.Tensor) -> LayerRecord:
        """One pass: the target layer's output and, for gradient CAMs, the gradient of the summed
        target scores with respect to it (images are independent in eval mode)."""
        if not self.uses_gradients:
            with torch.no_grad(), self._recording() as recorded:
                scores = target_scores(self.forward_model(x), targets)
            return LayerRecord(self._as_feature_map(recorded[0]), None, recorded[0], scores)
        with torch.enable_grad():
            with self._recording() as recorded:  # checks on exit that the layer was reached
                scores = target_scores(self.forward_model(x.clone().requires_grad_(True)), targets)
            (grads,) = torch.autograd.grad(scores.sum(), recorded[0])
        output = recorded[0].detach()
        return LayerRecord(self._as_feature_map(output), self._as_feature_map(grads), output, scores.detach())

    @contextmanager
    def _recording(self) -> Iterator[list[torch.Tensor]]:
        recorded: list[torch.Tensor] = []

        def record(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> torch.Tensor:
            # The model goes on with a copy, so an in-place op after the layer (ResNet's
            # BatchNorm -> ReLU(inplace)) cannot change the recorded values or their gradients.
            recorded.append(out)
            return out.clone()

        handle = self._layer.register_forward_hook(record)
        try:
            yield recorded
        finally:
            handle.remove()
        if not recorded:
            raise ExplainerConfigError(
                f"method {self.name!r}: target_layer {self._layer_path!r} is not used in the forward pass")

    def _as_feature_map(self, out: torch.Tensor) -> torch.Tensor:
        """Feature maps as they are, ViT tokens (N, 1 + h*w, C) to feature maps (N, C, h, w)."""
        if out.ndim == 4:
            return out
        if out.ndim == 3 and self._grid is not None:
            n, tokens, channels = out.shape
            h, w = self._grid
            if tokens == h * w + 1:
                out = out[:, 1:, :]  # drop the class token
            elif tokens != h * w:
                raise ExplainerConfigError(
                    f"method {self.name!r}: target_layer {self._layer_path!r} outputs {tokens} tokens, "
                    f"expected {h}x{w} patches (+1 class token)"
                )
            return out.reshape(n, h, w, channels).permute(0, 3, 1, 2)
        raise ExplainerConfigError(
            f"method {self.name!r}: target_layer {self._layer_path!r} outputs shape {tuple(out.shape)}; "
            f"CAMs need a feature map (N, C, H, W) or ViT tokens (N, 1 + h*w, C) — pick a convolutional "
            f"or encoder layer"
        )


__all__ = ["AUG_SMOOTH_PASSES", "CamExplainer", "LayerRecord", "normalise_per_image", "resize", "target_scores"]
