"""EigenCAM (Muhammad & Yeasin 2020): first principal component of the target layer's activations.

Class-agnostic: the target class is not used (the map is the same for every class). One forward
pass per image, no backward (x6 with aug_smooth). `eigen_smooth` has no further effect, the map is
already a projection. The projection is `_eigen.first_component_projection` (batched, and signed
the same on every machine) instead of the library's per-image SVD; see `_cam` for the rest.
"""

from __future__ import annotations

import pytorch_grad_cam

from ferxai.explain.methods._cam import CamExplainer
from ferxai.explain.methods._eigen import first_component_projection


class _BatchedEigenCAM(pytorch_grad_cam.EigenCAM):
    def get_cam_image(self, input_tensor, target_layer, target_category, activations, grads, eigen_smooth):
        return first_component_projection(activations)


class EigenCAM(CamExplainer):
    name = "eigencam"
    cam_class = _BatchedEigenCAM
    uses_gradients = False
