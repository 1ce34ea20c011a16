"""SHAP for images: Owen values over an axis-aligned partition of the image, the algorithm of
shap's Partition explainer with a `shap.maskers.Image` masker, computed by ferxai.

Why not call shap: a process that explains with shap imports it (with scikit-learn and pandas) and
compiles its numba functions on first use, about nine seconds before the first map, which is more
than the attributions of a default run's shard. The algorithm itself is small, so it lives here in
numpy; `tests/test_explain_shap.py` checks that every masker gives shap 0.51's maps (the library is
a test-only reference).

The algorithm, per image and target class (Lundberg et al.'s Partition explainer):

* the features are the H x W x C values; a binary tree splits the image box in halves, always the
  longest side first (rows before columns on a tie, channels last), down to single values;
* the model is evaluated on the image with every feature hidden (`f00`) and with none (`f11`); a
  hidden feature takes the masker's value (the blurred image, the inpainted image or black);
* a priority queue of (node, context) items starts with the root; an item's node is split by
  evaluating its two children switched on against the context, and each child is queued twice
  (with the sibling off, and on), with half the parent's weight and a priority of its output change
  times that weight; a leaf keeps its weighted change;
* after `max_evals` model inputs the items still queued keep their weighted change on their node,
  and every node's value is handed down to the leaves in proportion to their count.

Reproducibility: the queue breaks ties with one normal draw per queued item from a generator
seeded with `seed` for every image (shap draws them from NumPy's global state); masks are evaluated in groups of `ALGORITHM_BATCH` (the group size
changes the result), each group run through the model `batch_size` inputs at a time, so maps do not
depend on `batch_size` or on the other images of the call.

`mode`: "signed" (SHAP values), "abs" (their magnitude, unsigned) or "posneg" (the signed map too:
one map per image is returned; overlays draw its positive and negative parts separately).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from ferxai.explain.methods._perturb import PerturbationExplainer

# Masks queued before evaluating them (the recursion is then re-prioritised on the results); shap
# queues in pairs up to this size minus one, so a group holds at most this many. Measured on the
# 48 px fer_cnn against a 3000-evaluation reference: 10, 32 and 64 give the same map quality, 128
# and more lose it.
ALGORITHM_BATCH = 64


@dataclass(frozen=True)
class PartitionTree:
    """Node ids 0..M-1 are the features (flattened H x W x C order), M..2M-2 the splits, the root
    last; a split's children have smaller ids than the split itself.

    shap numbers the unit boxes in the reverse of their flattened order (the box of feature 0 gets
    id M - 1), and a feature id names that feature: so the features under a node are its box
    reflected through the image centre. `mask` gives those, as shap's mask matrix does."""

    shape: tuple[int, int, int]
    children: np.ndarray  # (M - 1, 2): left and right child of split M + i
    sizes: np.ndarray  # (2M - 1,): features under each node
    boxes: np.ndarray  # (2M - 1, 6): row, column and channel ranges (half-open) of each node
    levels: tuple[np.ndarray, ...]  # splits grouped by depth, the root's first

    @property
    def features(self) -> int:
        return len(self.children) + 1

    def mask(self, node: int) -> np.ndarray:
        """(H, W, C) bool: the features under `node`."""
        r0, r1, c0, c1, z0, z1 = self.boxes[node]
        rows, cols, chans = self.shape
        out = np.zeros(self.shape, dtype=bool)
        out[rows - r1:rows - r0, cols - c1:cols - c0, chans - z1:chans - z0] = True
        return out

    def hand_down(self, values: np.ndarray) -> np.ndarray:
        """Each split's value shared among its children by their sizes, then theirs, down to the
        features (shap's `lower_credit`); `values` (2M - 1,) is updated in place."""
        m = self.features
        for splits in self.levels:
            parent = values[splits]
            for side in (0, 1):
                child = self.children[splits - m, side]
                values[child] += parent * self.sizes[child] / self.sizes[splits]
        return values[:m]


@lru_cache(maxsize=8)
def partition_tree(shape: tuple[int, int, int]) -> PartitionTree:
    """The halving tree of an (H, W, C) image, numbered as shap's image masker numbers it: splits
    are taken largest box first (ties by position), each taking the next lower id."""
    rows, cols, chans = shape
    m = rows * cols * chans
    children = np.zeros((m - 1, 2), dtype=np.int64)
    boxes = np.zeros((2 * m - 1, 6), dtype=np.int64)
    parent_of = np.full(2 * m - 1, -1, dtype=np.int64)
    queue = [(0, 0, rows, 0, cols, 0, chans, -1, False)]
    row = m - 2  # the split row taken next; the unit boxes come out last, in flattened order
    while queue:
        _, r0, r1, c0, c1, z0, z1, parent, is_left = heapq.heappop(queue)
        node = row + m
        if parent >= 0:
            children[parent, 0 if is_left else 1] = node
            parent_of[node] = parent + m
        boxes[node] = (r0, r1, c0, c1, z0, z1)
        if node < m:
            if node != m - 1 - (r0 * cols + c0) * chans - z0:
                raise RuntimeError(f"partition of {shape}: feature {node} out of order")
        else:
            left, right = [r0, r1, c0, c1, z0, z1], [r0, r1, c0, c1, z0, z1]
            if r1 - r0 >= c1 - c0 and r1 - r0 > 1:
                left[1] = right[0] = r0 + (r1 - r0) // 2
            elif c1 - c0 > 1:
                left[3] = right[2] = c0 + (c1 - c0) // 2
            else:
                left[5] = right[4] = z0 + (z1 - z0) // 2
            for box, is_left_child in ((left, True), (right, False)):
                size = (box[1] - box[0]) * (box[3] - box[2]) * (box[5] - box[4])
                heapq.heappush(queue, (-size, *box, row, is_left_child))
        row -= 1
    sizes = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2]) * (boxes[:, 5] - boxes[:, 4])
    depth = np.zeros(2 * m - 1, dtype=np.int64)
    for node in range(2 * m - 3, m - 1, -1):  # parents before children: ids fall with depth
        depth[node] = depth[parent_of[node]] + 1
    splits = np.arange(m, 2 * m - 1)
    levels = tuple(splits[depth[m:] == d] for d in range(int(depth[m:].max()) + 1)) if m > 1 else ()
    return PartitionTree(shape, children, sizes.astype(np.float64), boxes, levels)


class PartitionShap(PerturbationExplainer):
    """Parameters: ``mode`` ("signed" | "abs" | "posneg"), ``max_evals`` (model evaluations per
    image), ``masker`` ("blur(kx,ky)" | "inpaint_telea" | "inpaint_ns" | "black"),
    ``seed``."""

    name = "shap"

    def _hidden(self, image: np.ndarray):
        """A function of (k, H, W, C) keep-masks giving the masked copies of `image` (H, W, C, in
        0..255): hidden values from the blurred image, black, or inpainting (shap's maskers; the
        inpainting ones see the image as uint8, as shap hands it to OpenCV)."""
        masker = self.params["masker"].replace(" ", "")
        if masker == "black" or masker.startswith("blur("):
            if masker == "black":
                fill = np.zeros_like(image)
            else:
                import cv2

                kernel = tuple(int(k) for k in masker[5:-1].split(","))
                fill = cv2.blur(image, kernel).reshape(image.shape)
            return lambda keep: np.where(keep, image, fill)

        import cv2

        flag = cv2.INPAINT_TELEA if masker == "inpaint_telea" else cv2.INPAINT_NS
        as_bytes = image.astype(np.uint8)

        def inpainted(keep: np.ndarray) -> np.ndarray:
            out = np.empty(keep.shape, dtype=image.dtype)
            for i, k in enumerate(keep):
                hidden = (~k).astype(np.uint8).max(axis=2)
                if hidden.all():
                    out[i] = image.mean(axis=(0, 1))
                else:
                    out[i] = cv2.inpaint(as_bytes, hidden, 3, flag).reshape(image.shape).astype(image.dtype)
            return out

        return inpainted

    @torch.no_grad()
    def _outputs(self, copies: np.ndarray, target: int, device: torch.device, dtype: torch.dtype) -> np.ndarray:
        """The target's model output (float64) for (k, H, W, C) copies in 0..255."""
        x = torch.from_numpy(np.ascontiguousarray(copies)).to(device=device, dtype=dtype).permute(0, 3, 1, 2) / 255.0
        outs = [self.forward_model(x[s:s + self.batch_size])[:, target].float()
                for s in range(0, len(x), self.batch_size)]
        return torch.cat(outs).cpu().numpy().astype(np.float64)

    def _owen(self, image: np.ndarray, target: int, device: torch.device, dtype: torch.dtype) -> np.ndarray:
        """(H, W) Owen values of one image (H, W, C, in 0..255) for class `target`."""
        image = np.ascontiguousarray(image)
        tree = partition_tree(image.shape)
        m = tree.features
        masked = self._hidden(image)

        def run(keep: list[np.ndarray]) -> np.ndarray:
            return self._outputs(masked(np.stack(keep)), target, device, dtype)

        nothing = np.zeros(image.shape, dtype=bool)
        f00 = run([nothing])[0]
        f11 = run([~nothing])[0]
        budget = self.params["max_evals"] - 2  # the two evaluations above
        rng = np.random.RandomState(self.params["seed"])
        values = np.zeros(2 * m - 1)
        order = 0  # never decides: priority and draw are distinct, as they must be for shap too
        queue = [(0.0, 0.0, order, nothing, f00, f11, 2 * m - 2, 1.0)]
        evals = 0
        while queue:
            if evals >= budget:
                while queue:  # what was not split keeps its change on the node
                    _, _, _, _, f00_, f11_, node, weight = heapq.heappop(queue)
                    values[node] += (f11_ - f00_) * weight
                break
            work, keep = [], []
            while queue and len(keep) < ALGORITHM_BATCH - 1 and evals + len(keep) < budget:
                _, _, _, m00, f00_, f11_, node, weight = heapq.heappop(queue)
                if node < m:
                    values[node] += (f11_ - f00_) * weight
                    continue
                left, right = tree.children[node - m]
                m10, m01 = m00 | tree.mask(left), m00 | tree.mask(right)
                work.append((m00, m10, m01, f00_, f11_, left, right, weight))
                keep += [m10, m01]
            if not work:
                continue
            out = run(keep)
            evals += len(keep)
            for i, (m00, m10, m01, f00_, f11_, left, right, weight) in enumerate(work):
                f10, f01 = out[2 * i], out[2 * i + 1]
                half = weight / 2
                # each child against the context without its sibling, then with it
                for context, f_lo, f_hi, node in ((m00, f00_, f10, left), (m00, f00_, f01, right),
                                                  (m01, f01, f11_, left), (m10, f10, f11_, right)):
                    order += 1
                    heapq.heappush(queue, (-abs(f_hi - f_lo) * half, rng.randn(), order, context, f_lo, f_hi,
                                           node, half))
        return tree.hand_down(values).reshape(image.shape).sum(axis=-1)

    def _attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        images = inputs.detach().float().permute(0, 2, 3, 1).cpu().numpy() * 255.0
        maps = [torch.from_numpy(self._owen(images[i], target, inputs.device, inputs.dtype).astype(np.float32))
                for i, target in enumerate(targets.tolist())]
        out = torch.stack(maps).to(inputs.device)
        return out.abs() if self.params["mode"] == "abs" else out
