"""Shared base of the CAM family: every method is pytorch-grad-cam's class of the same name.

A subclass sets `cam_class` (the pytorch-grad-cam class); parameters and cost model are its entry
in `ferxai.explain.catalog`.
What this base adds around the library:

* **Target layer** — ``target_layer`` is a dotted path into the zoo model (``layer4``,
  ``features.block3.relu2``, ...). ``None`` picks `ferxai.models.zoo.default_target_layer` for the
  arch, read off the built model (number of fer_cnn blocks, of ViT encoder layers); a model that is
  not a zoo arch must name its layer. An unknown path is an `ExplainerConfigError` naming it and the
  closest module names.
* **Targets** — one `ClassifierOutputTarget` per image (the library silently zeroes images it has
  no target for). The attributed output is `forward_model`'s: logits, or probabilities with
  ``output: softmax``; `ClassifierOutputTarget` picks the class column of either.
* **ViT** — a layer that outputs tokens ``(N, 1 + h*w, C)`` (``encoder.layers...``) is reshaped to
  ``(N, C, h, w)``, dropping the class token, with ``h, w = input side / patch_size``. Feature maps
  ``(N, C, h, w)`` pass through unchanged; any other output shape is an error naming the layer.
* **Output** — the library upsamples each CAM to the input resolution and min-max normalises it to
  [0, 1] *per image* (an all-zero CAM stays 0). We keep that: maps are comparable in shape within an
  image, not in magnitude across images. With ``aug_smooth`` the result is the mean of six
  normalised maps (flip x {0.9, 1, 1.1} brightness), so its maximum can be below 1.
* **Gradients** — gradient CAMs run under `torch.enable_grad()` (a caller's `no_grad` would
  otherwise leave the library without gradients) on an input that requires grad, with the model's
  parameters temporarily frozen: the CAM needs gradients of activations only, and skipping the
  weight gradients saves backward time and leaves no `.grad` tensors behind. Gradient-free CAMs
  (EigenCAM, AblationCAM, ScoreCAM) run under `torch.no_grad()`.

Object lifetime: pytorch-grad-cam registers forward hooks on the target layer(s) when a CAM object
is built, and those hooks record activations on *every* forward pass of the model, including other
explainers' passes on the same model. Building the object costs about 0.3 ms (GradCAM) to 1.4 ms
(FullGrad, which walks the whole model) against hundreds of ms for one call, so the object is built
per `attribute` call and its hooks are released in a ``finally``: no hooks outlive a call, nothing
needs closing, and an exception cannot leave hooks (or AblationCAM's swapped-in layer) behind.
"""

from __future__ import annotations

import functools
import types
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar, Iterator

import numpy as np
import torch
import torch.nn as nn
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from ferxai.explain.base import Explainer, ExplainerConfigError
from ferxai.explain.catalog import AUG_SMOOTH_PASSES
from ferxai.explain.layers import LayerNotFoundError, default_layer_path, resolve_layer

# Side of the dummy image used to probe a target layer's output shape when no image has been
# seen yet (ViT models use their own `image_size`). 64 px suits every zoo CNN.
_PROBE_SIDE = 64


@contextmanager
def _frozen_parameters(model: nn.Module) -> Iterator[None]:
    flags = [(p, p.requires_grad) for p in model.parameters()]
    for p, _ in flags:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


@contextmanager
def _quiet_progress(module: types.ModuleType) -> Iterator[None]:
    """Turn off the tqdm bar `module` draws per image (one per image floods workflow logs)."""
    original = module.tqdm
    module.tqdm = types.SimpleNamespace(tqdm=functools.partial(original.tqdm, disable=True))
    try:
        yield
    finally:
        module.tqdm = original


class CamExplainer(Explainer):
    """Base of the CAM family; subclasses set `cam_class` (parameters and cost: the catalog)."""

    cam_class: ClassVar[type]             # the pytorch-grad-cam class
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

    # -- the library call -----------------------------------------------------------------
    def _cam_kwargs(self) -> dict[str, Any]:
        """Extra constructor arguments for `cam_class` (batch size, ablation layer)."""
        return {}

    def _make_cam(self) -> Any:
        layers = [self._layer] if self.uses_target_layer else []
        return self.cam_class(self.forward_model, layers, reshape_transform=self._reshape,
                              **self._cam_kwargs())

    def _after_call(self, cam: Any) -> None:
        """Undo anything the library may have left in the model (called in a finally)."""

    def _library_context(self) -> Any:
        return nullcontext()

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        cam_targets = [ClassifierOutputTarget(int(t)) for t in targets.tolist()]
        assert len(cam_targets) == len(inputs), "one ClassifierOutputTarget per image"
        patch = getattr(self.model, "patch_size", None)
        self._grid = (inputs.shape[2] // patch, inputs.shape[3] // patch) if isinstance(patch, int) else None
        x = inputs.detach()
        if self.uses_gradients:
            # Gradients reach the activations through the input, even if the model is frozen.
            x = x.clone().requires_grad_(True)
            grad_mode: Any = torch.enable_grad()
            frozen: Any = _frozen_parameters(self.forward_model)
        else:
            grad_mode, frozen = torch.no_grad(), nullcontext()
        cam = self._make_cam()
        try:
            with grad_mode, frozen, self._library_context():
                maps = cam(input_tensor=x, targets=cam_targets,
                           aug_smooth=self.params.get("aug_smooth", False),
                           eigen_smooth=self.params.get("eigen_smooth", False))
        finally:
            cam.activations_and_grads.release()
            self._after_call(cam)
        return torch.from_numpy(np.ascontiguousarray(maps, dtype=np.float32)).to(inputs.device)

    def _reshape(self, out: torch.Tensor) -> torch.Tensor:
        """Library `reshape_transform`: feature maps as they are, ViT tokens to feature maps."""
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


__all__ = ["AUG_SMOOTH_PASSES", "CamExplainer"]
