"""FullGrad (Srinivas & Fleuret 2019): |input x input-gradient| plus, for every Conv2d/BatchNorm2d
with a bias, |bias x gradient of that layer's output|, each upsampled and summed.

No target layer: the library uses all such layers of the whole network (so `target_layer` is not a
parameter). One forward+backward pass per image (x6 with aug_smooth).

Unsupported (UnsupportedModelError): models whose biases the library would not see, because it
collects exactly `nn.Conv2d` and `nn.BatchNorm2d` — transformers (vit_small: biases in Linear and
LayerNorm layers on token sequences), models with other biased conv/norm layers (GroupNorm,
InstanceNorm, Conv1d/3d, subclasses of Conv2d/BatchNorm2d), and models with no biased
Conv2d/BatchNorm2d at all. The map would otherwise be silently incomplete. Caveat for all zoo
models: the input normalisation ((x - mean) / std inside the model) is an affine step whose offset
is not a layer bias, so its share is not added either — the same as for any input normalisation
applied outside a model.
"""

from __future__ import annotations

import numpy as np
import pytorch_grad_cam
import torch
import torch.nn as nn
import torch.nn.functional as F

from ferxai.explain.methods._cam import CamExplainer

_USED = (nn.Conv2d, nn.BatchNorm2d)
_SPATIAL_WITH_BIAS = (nn.modules.conv._ConvNd, nn.modules.batchnorm._NormBase, nn.GroupNorm)
_TRANSFORMER = (nn.MultiheadAttention, nn.LayerNorm, nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)


def _scaled_sum(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Each (image, channel) map min-max scaled to [0, 1), summed over channels, then bilinearly
    resized to `size` (h, w): pytorch-grad-cam's scale_cam_image per channel followed by its sum.

    The library resizes every channel and then sums; bilinear resizing is linear, so summing first
    gives the same map (up to float rounding) with one resize per image instead of one per channel
    (fer_cnn's biased layers have ~1,000 channels). cv2's INTER_LINEAR and torch's bilinear with
    align_corners=False sample the same half-pixel grid."""
    flat = maps.flatten(2)
    low, high = torch.aminmax(flat, dim=2)
    # sum_c (x_c - low_c) / d_c == sum_c x_c / d_c - sum_c low_c / d_c: one pass over the maps
    # (a batched matrix-vector product) instead of three elementwise passes and a reduction.
    inv = 1.0 / (1e-7 + (high - low))
    summed = torch.einsum("nck,nc->nk", flat, inv) - (low * inv).sum(1, keepdim=True)
    summed = summed.view(maps.shape[0], 1, *maps.shape[2:])
    if tuple(summed.shape[2:]) != size:
        summed = F.interpolate(summed, size=size, mode="bilinear", align_corners=False)
    return summed[:, 0]


class _BatchedFullGrad(pytorch_grad_cam.FullGrad):
    """pytorch-grad-cam's FullGrad with its per-map post-processing done per batch.

    The library scales and resizes every channel of every biased layer of every image on its own
    (one cv2.resize each: 86,000 calls for 64 images of fer_cnn), which took longer than the model
    passes. Here: whole-batch tensor operations in float32, channels summed before the one resize
    per layer (see `_scaled_sum`); eigen_smooth keeps the library's path.
    """

    def compute_cam_per_layer(self, input_tensor, target_category, eigen_smooth):
        if eigen_smooth:
            return super().compute_cam_per_layer(input_tensor, target_category, eigen_smooth)
        width, height = self.get_target_width_height(input_tensor)
        x = input_tensor.detach().cpu().float()
        total = _scaled_sum((input_tensor.grad.detach().cpu().float() * x).abs(), (height, width))
        grads = self.activations_and_grads.gradients
        assert len(self.bias_data) == len(grads)
        for bias, grad in zip(self.bias_data, grads):
            bias = torch.from_numpy(np.asarray(bias, np.float32))[None, :, None, None]
            total += _scaled_sum((bias * grad.float()).abs(), (height, width))
        return total[:, None].numpy()


class FullGrad(CamExplainer):
    name = "fullgrad"
    cam_class = _BatchedFullGrad
    uses_target_layer = False

    def validate(self) -> None:
        super().validate()
        transformer = [n for n, m in self.model.named_modules() if isinstance(m, _TRANSFORMER)]
        if transformer:
            raise self.unsupported(
                f"FullGrad needs every bias of the network, but pytorch-grad-cam only collects "
                f"Conv2d/BatchNorm2d biases; this is a transformer whose biases sit in Linear/LayerNorm "
                f"layers on token sequences (e.g. {transformer[0]!r})"
            )
        skipped = [f"{n} ({type(m).__name__})" for n, m in self.model.named_modules()
                   if isinstance(m, _SPATIAL_WITH_BIAS) and type(m) not in _USED
                   and getattr(m, "bias", None) is not None]
        if skipped:
            raise self.unsupported(
                f"pytorch-grad-cam's FullGrad only collects biases of exactly nn.Conv2d/nn.BatchNorm2d; "
                f"the biases of {', '.join(skipped[:5])} would be left out"
            )
        if not any(type(m) in _USED and getattr(m, "bias", None) is not None for m in self.model.modules()):
            raise self.unsupported("no Conv2d/BatchNorm2d layer with a bias, so FullGrad has no bias "
                                   "term (use input_x_gradient)")
