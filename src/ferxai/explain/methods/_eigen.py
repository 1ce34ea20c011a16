"""The first-principal-component projection behind EigenCAM and EigenGrad-CAM, for a whole batch.

pytorch-grad-cam's `get_2d_projection` centres each image's (pixels x channels) matrix, runs a full
NumPy SVD per image and projects onto the first right singular vector. Two things change here:

* **Sign.** A singular vector's sign is arbitrary: LAPACK picks one, and which one depends on the
  LAPACK build (OpenBLAS, MKL, ...) and the matrix. Since the CAM then keeps only positive values,
  the library's map can highlight the object on one machine and the background on another. We
  fix the sign so the projection's largest magnitude is positive: the correction (Eq. 13 of
  Chung & Ying 2025, Seg-Eigen-CAM) that pytorch-grad-cam ships as
  `get_2d_projection_with_sign_correction`; our maps equal what that function gives.
* **Cost.** The projection comes from the top eigenpair of the smaller of the two Gram matrices,
  (channels x channels) or (pixels x pixels), for all images at once, in float64, instead of one
  full SVD per image. Only the top pair is needed, so it comes from a few rounds of batched block
  subspace iteration (a block of `_BLOCK` vectors, `_ROUNDS` rounds, Rayleigh-Ritz at the end):
  matrix products on a few columns instead of a full eigendecomposition. Each image's result is
  checked (residual over the gap to the next Ritz value, the Davis-Kahan estimate of the
  eigenvector's angle error); an image that has not converged (a flat top of the spectrum, an
  all-zero map) gets the full batched `eigh`, so the answer is the eigensolver's either way.
  Measured on 2 threads (16 images of fer_cnn's last block, 128 channels at 12x12): 0.15 ms/image
  against 1.22 for the batched `eigh` and 1.85 for the library's per-image SVD; ResNet18's layer4
  at 48 px (512 channels, 6x6: a 36 x 36 Gram) 0.2 against 6.2.
"""

from __future__ import annotations

import numpy as np
import torch


# Block subspace iteration: block width and rounds. The top vector's error shrinks as
# (lambda_{_BLOCK+1} / lambda_1) ** _ROUNDS. 8 x 8 settled every image of fer_cnn's and ResNet18's
# last blocks tried (4 x 8 left some to eigh); 4 x 16 took about as long, 16 x 6 longer.
_BLOCK = 8
_ROUNDS = 8
# Accept an image's vector when residual / gap is below this: the Davis-Kahan estimate of
# sin(angle error), with the next Ritz value standing in for lambda_2.
_ANGLE_TOLERANCE = 1e-7


def top_eigenpairs(gram: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Top eigenvalue (N,) and unit eigenvector (N, k) of each symmetric PSD matrix in (N, k, k).

    Subspace iteration from a fixed start (deterministic), falling back to `torch.linalg.eigh`
    for the images where the convergence check fails."""
    n, k, _ = gram.shape
    if k <= 2 * _BLOCK:
        eig = torch.linalg.eigh(gram)
        return eig.eigenvalues[:, -1], eig.eigenvectors[..., -1]
    start = torch.randn(k, _BLOCK, dtype=gram.dtype, generator=torch.Generator().manual_seed(0))
    basis = torch.linalg.qr(gram @ start.to(gram.device)).Q
    for _ in range(_ROUNDS):
        basis = torch.linalg.qr(gram @ basis).Q
    ritz_values, ritz_vectors = torch.linalg.eigh(basis.transpose(1, 2) @ gram @ basis)
    value = ritz_values[:, -1]
    vector = (basis @ ritz_vectors[..., -1:])[..., 0]
    residual = torch.linalg.vector_norm((gram @ vector[..., None])[..., 0] - value[:, None] * vector, dim=1)
    gap = value - ritz_values[:, -2]
    unconverged = ~(residual < _ANGLE_TOLERANCE * gap)  # also catches gap == 0 and NaN
    if unconverged.any():
        eig = torch.linalg.eigh(gram[unconverged])
        value, vector = value.clone(), vector.clone()
        value[unconverged] = eig.eigenvalues[:, -1]
        vector[unconverged] = eig.eigenvectors[..., -1]
    return value, vector


def first_component_projection(maps: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(N, C, h, w) -> (N, h, w) float32, of the same kind (array or tensor, on its device): each
    image's centred activations projected onto their first principal direction, signed so that the
    largest |value| is positive. NaNs count as 0."""
    if isinstance(maps, torch.Tensor):
        x = maps.detach().float().double()
    else:
        x = torch.from_numpy(np.asarray(maps, dtype=np.float32)).double()
    x = torch.nan_to_num(x, nan=0.0)
    n, c, h, w = x.shape
    x = x.reshape(n, c, h * w).transpose(1, 2)  # (N, pixels, channels)
    x = x - x.mean(dim=1, keepdim=True)
    if h * w < c:
        # x = U S V^T, so x v1 = s1 u1: the top eigenvector of x x^T scaled by sqrt(eigenvalue).
        value, vector = top_eigenpairs(x @ x.transpose(1, 2))
        projection = vector * value[:, None].clamp(min=0).sqrt()
    else:
        _, direction = top_eigenpairs(x.transpose(1, 2) @ x)
        projection = (x @ direction[..., None])[..., 0]
    flip = projection.amin(dim=1).abs() > projection.amax(dim=1).abs()
    projection = torch.where(flip[:, None], -projection, projection)
    projection = projection.reshape(n, h, w).float()
    return projection if isinstance(maps, torch.Tensor) else projection.numpy()


__all__ = ["first_component_projection", "top_eigenpairs"]
