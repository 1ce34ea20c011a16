"""FullGrad (Srinivas & Fleuret 2019): |input x input-gradient| plus, for every Conv2d/BatchNorm2d
with a bias, |bias x gradient of that layer's output|, each upsampled and summed.

No target layer: it uses all such layers of the whole network (so `target_layer` is not a
parameter). One forward+backward pass per image (x6 with aug_smooth).

Unsupported (UnsupportedModelError): models whose biases it would not see, because it collects
exactly `nn.Conv2d` and `nn.BatchNorm2d`, as pytorch-grad-cam does — transformers (vit_small: biases in Linear and
LayerNorm layers on token sequences), models with other biased conv/norm layers (GroupNorm,
InstanceNorm, Conv1d/3d, subclasses of Conv2d/BatchNorm2d), and models with no biased
Conv2d/BatchNorm2d at all. The map would otherwise be silently incomplete. Caveat for all zoo
models: the input normalisation ((x - mean) / std inside the model) is an affine step whose offset
is not a layer bias, so its share is not added either — the same as for any input normalisation
applied outside a model.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ferxai.explain.methods._cam import CamExplainer, normalise_per_image, resize, target_scores
from ferxai.explain.methods._eigen import first_component_projection

_USED = (nn.Conv2d, nn.BatchNorm2d)
_SPATIAL_WITH_BIAS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm)
_TRANSFORMER = (nn.MultiheadAttention, nn.LayerNorm, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def _scaled_sum(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Each (image, channel) map min-max scaled to [0, 1), summed over channels, then bilinearly
    resized to `size` (h, w): pytorch-grad-cam's scale_cam_image per channel followed by its sum.

    The library resizes every channel and then sums; bilinear resizing is linear, so summing first
    gives the same map (up to float rounding) with one resize per image instead of one per channel
    (fer_cnn's biased layers have ~1,000 channels)."""
    flat = maps.flatten(2)
    low, high = torch.aminmax(flat, dim=2)
    # sum_c (x_c - low_c) / d_c == sum_c x_c / d_c - sum_c low_c / d_c: one pass over the maps
    # (a batched matrix-vector product) instead of three elementwise passes and a reduction.
    inv = 1.0 / (1e-7 + (high - low))
    summed = torch.einsum("nck,nc->nk", flat, inv) - (low * inv).sum(1, keepdim=True)
    return resize(summed.view(maps.shape[0], *maps.shape[2:]), size)


class FullGrad(CamExplainer):
    name = "fullgrad"
    uses_target_layer = False

    def validate(self) -> None:
        super().validate()
        transformer = [n for n, m in self.model.named_modules() if isinstance(m, _TRANSFORMER)]
        if transformer:
            raise self.unsupported(
                f"FullGrad needs every bias of the network, but it collects only Conv2d/BatchNorm2d "
                f"biases (as pytorch-grad-cam does); this is a transformer whose biases sit in Linear/LayerNorm "
                f"layers on token sequences (e.g. {transformer[0]!r})"
            )
        skipped = [f"{n} ({type(m).__name__})" for n, m in self.model.named_modules()
                   if isinstance(m, _SPATIAL_WITH_BIAS) and type(m) not in _USED
                   and getattr(m, "bias", None) is not None]
        if skipped:
            raise self.unsupported(
                f"FullGrad collects only biases of exactly nn.Conv2d/nn.BatchNorm2d (as pytorch-grad-cam does); "
                f"the biases of {', '.join(skipped[:5])} would be left out"
            )
        if not any(type(m) in _USED and getattr(m, "bias", None) is not None for m in self.model.modules()):
            raise self.unsupported("no Conv2d/BatchNorm2d layer with a bias, so FullGrad has no bias "
                                   "term (use input_x_gradient)")
        self._biased = [m for m in self.model.modules() if type(m) in _USED and m.bias is not None]

    @staticmethod
    def _bias(module: nn.Module) -> torch.Tensor:
        """The layer's additive offset: a conv's bias; a BatchNorm's bias after folding in its
        running statistics (the paper's official implementation)."""
        if isinstance(module, nn.BatchNorm2d):
            return module.bias - module.running_mean * module.weight / torch.sqrt(module.running_var + module.eps)
        return module.bias

    def _cam(self, x: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        outputs: list[torch.Tensor] = []

        def record(_module: nn.Module, _inputs: Any, out: torch.Tensor) -> torch.Tensor:
            outputs.append(out)
            return out.clone()  # in-place ops after a layer (ReLU(inplace)) act on the copy

        handles = [m.register_forward_hook(record) for m in self._biased]
        try:
            with torch.enable_grad():
                x_grad = x.clone().requires_grad_(True)
                scores = target_scores(self.forward_model(x_grad), targets)
                grads = torch.autograd.grad(scores.sum(), [x_grad, *outputs])
        finally:
            for handle in handles:
                handle.remove()
        size = tuple(x.shape[-2:])
        with torch.no_grad():
            terms = [(grads[0] * x).abs()]
            terms += [(self._bias(m).detach()[None, :, None, None] * g).abs() for m, g in zip(self._biased, grads[1:])]
            if not self.params.get("eigen_smooth", False):
                total = sum(_scaled_sum(term.float(), size) for term in terms)
                return normalise_per_image(total)
            return normalise_per_image(self._projected(terms, size))

    @staticmethod
    def _projected(terms: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        """eigen_smooth: the first principal component of the stack of terms (the input term's
        channels, one summed map per biased layer), computed at 1/8 of the input side to bound
        memory, as pytorch-grad-cam does."""
        input_term = _scaled_channels(terms[0].float(), size)
        layers = [_scaled_sum(term.float(), size)[:, None] for term in terms[1:]]
        stack = torch.cat([input_term, *layers], dim=1)
        small = (max(1, size[0] // 8), max(1, size[1] // 8))
        projection = first_component_projection(_scaled_channels(stack, small))
        return _scaled_channels(projection[:, None], size)[:, 0]


def _scaled_channels(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, C, h, w) -> (N, C, *size): every (image, channel) map min-max scaled, then resized."""
    n, c = maps.shape[:2]
    return resize(normalise_per_image(maps.reshape(n * c, *maps.shape[2:])), size).view(n, c, *size)
