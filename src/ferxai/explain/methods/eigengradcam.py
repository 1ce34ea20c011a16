"""EigenGrad-CAM: first principal component of activations x gradients (class-specific EigenCAM).

One forward+backward pass per image (x6 with aug_smooth). The projection is
`_eigen.first_component_projection` (batched, and signed the same on every machine) instead of
the library's per-image SVD; see `_cam` for the rest.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer
from ferxai.explain.methods._eigen import first_component_projection


class _BatchedEigenGradCAM(pytorch_grad_cam.EigenGradCAM):
    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        return first_component_projection(grads * activations)


class EigenGradCAM(CamExplainer):
    name = "eigengradcam"
    cam_class = _BatchedEigenGradCAM
