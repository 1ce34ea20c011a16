"""The model-running steps of the explanation stage (inputs, preflight, shards); the torch-free
file steps are in `ferxai.explain.collect`. Each is called by one thin workflow script.

select -> inputs.npz -> preflight/<method>.json + <first condition>/<method>/shard-0.npz (one
job) -> other shards -> attributions.npz -> store.zarr. A method sees only the images, targets, references and its own
parameters; it knows nothing of files.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ferxai.atomic import write_text_atomic
from ferxai.device import resolve_device
from ferxai.explain.base import Explainer
from ferxai.explain.devices import gpu_slot
from ferxai.explain.noise import apply_noise
from ferxai.explain.preflight import PreflightResult, images_per_call, run_preflight
from ferxai.explain.registry import make_explainer
from ferxai.explain.collect import load_inputs
from ferxai.explain.shards import largest_shard, shard_range
from ferxai.explain.mean_images import mean_images
from ferxai.explain.shard_files import save_shard
from ferxai.explain.targets import resolve_targets
from ferxai.settings import ExplainSettings
from ferxai.models import load_checkpoint

log = logging.getLogger(__name__)

REFERENCE_IMAGES = 64  # training images handed to methods that sample replacements (PDA, DeepLIFT-SHAP)


def write_inputs(samples_csv: str | Path, checkpoint: str | Path, test_split: str | Path,
                 train_split: str | Path, out_npz: str | Path, seed: int = 0) -> None:
    """Everything the attribution jobs need, in one file: images, labels, predictions, references."""
    # Only this step reads tables and image files; the attribution jobs need not pay for pandas.
    import pandas as pd

    from ferxai.data.dataset import load_split_arrays

    _, meta = load_checkpoint(checkpoint)
    size, channels, classes = int(meta["input_size"]), int(meta["in_channels"]), list(meta["classes"])
    samples = pd.read_csv(samples_csv, dtype={"id": str}, keep_default_na=False)
    test = pd.read_csv(test_split, dtype={"id": str, "source": str, "subject": str, "source_split": str},
                       keep_default_na=False).set_index("id", drop=False)
    missing = sorted(set(samples["id"]) - set(test.index))
    if missing:
        raise ValueError(f"{samples_csv}: {len(missing)} selected ids are not in {test_split}, e.g. {missing[:3]}")
    images, labels, _ = load_split_arrays(test.loc[samples["id"]].reset_index(drop=True), size, channels,
                                          classes=classes)
    train_x, train_y, _ = load_split_arrays(train_split, size, channels)
    if len(train_x):
        mean, per_class = mean_images(train_x, train_y, len(classes))
        # A class absent from train has no mean (NaN); as a baseline the global mean is the honest stand-in.
        per_class = np.where(np.isnan(per_class), mean[None], per_class).astype(np.float32)
    else:
        # A user's own images explained with their own checkpoint: there is no training split, so
        # the baselines and reference samples come from the whole folder being explained.
        log.warning("%s is empty: dataset-mean baselines and reference images come from all %d images "
                    "of %s; per-class means fall back to that mean", train_split, len(test), test_split)
        train_x = load_split_arrays(test.reset_index(drop=True), size, channels)[0]
        mean, _ = mean_images(train_x, np.zeros(len(train_x), np.int64), 1)
        per_class = np.repeat(mean[None], len(classes), axis=0)
    masks, has_mask = ground_truth_masks(test.loc[samples["id"]], size, where=str(test_split))
    rng = np.random.default_rng(seed)
    refs = train_x[rng.choice(len(train_x), size=min(REFERENCE_IMAGES, len(train_x)), replace=False)]
    prob_cols = [f"prob_{c}" for c in classes]
    np.savez_compressed(
        out_npz, images=images, labels=labels, predictions=samples["prediction"].to_numpy(np.int64),
        probabilities=samples[prob_cols].to_numpy(np.float32) if set(prob_cols) <= set(samples) else
        np.zeros((len(samples), len(classes)), np.float32),
        confidence=samples["confidence"].to_numpy(np.float32),
        ids=np.array(samples["id"], dtype=str), sets=np.array(samples["set"], dtype=str),
        class_names=np.array(classes, dtype=str), mean_image=mean, class_means=per_class,
        reference_images=refs, masks=masks, has_mask=has_mask,
    )


def ground_truth_masks(rows: Any, size: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(bool N x size x size masks, bool N: whether the image has one) from the split's `mask`
    column (a mask image per row, any nonzero pixel foreground; empty: no mask). A mask is
    stretched to the square exactly as its image is (`to_chw`: bilinear), then thresholded at
    half, so mask and image pixels line up."""
    from ferxai.data.images import to_chw
    from ferxai.data.synthetic import load_mask

    masks = np.zeros((len(rows), size, size), dtype=bool)
    has_mask = np.zeros(len(rows), dtype=bool)
    if "mask" not in rows.columns:
        return masks, has_mask
    for i, (image_id, path) in enumerate(zip(rows["id"].astype(str), rows["mask"].astype(str))):
        if not path:
            continue
        try:
            foreground = load_mask(path)
        except (OSError, ValueError) as err:
            raise ValueError(f"{where}: mask of image {image_id!r} ({path}): {err}") from None
        masks[i] = to_chw(foreground.astype(np.uint8) * 255, size, 1)[0] >= 128
        has_mask[i] = True
    return masks, has_mask


def build_explainer(model: torch.nn.Module, meta: Mapping[str, Any], spec: Mapping[str, Any],
                    settings: ExplainSettings, inputs: Mapping[str, np.ndarray], batch_size: int,
                    device: torch.device) -> Explainer:
    explainer = make_explainer(spec["method"], model, arch=meta.get("arch", ""), output=settings.output,
                               batch_size=batch_size, **spec.get("params", {}))
    if hasattr(explainer, "set_reference"):
        explainer.set_reference(
            mean_image=torch.from_numpy(inputs["mean_image"]).to(device),
            class_means=torch.from_numpy(inputs["class_means"]).to(device),
            images=torch.from_numpy(inputs["reference_images"]).float().div(255).to(device),
        )
    return explainer


def explained_targets(inputs: Mapping[str, np.ndarray], settings: ExplainSettings) -> np.ndarray:
    """The class each explained image is explained for (`explain.target`), as the attribution
    jobs use it; the scoring jobs that re-explain use the same."""
    return resolve_targets(settings.target, inputs["labels"], inputs["predictions"],
                           list(inputs["class_names"]), settings.target_class)


class _Job:
    """What one attribution job holds in memory: the model on its device, the inputs, the targets."""

    def __init__(self, checkpoint: str | Path, inputs_npz: str | Path, spec: Mapping[str, Any],
                 settings: Mapping[str, Any] | ExplainSettings):
        self.spec = spec
        self.checkpoint = str(checkpoint)  # recorded with the maps: which model made them
        self.settings = ExplainSettings.from_dict(settings)
        self.device = resolve_device(self.settings.device)
        model, self.meta = load_checkpoint(checkpoint, map_location=self.device)
        self.model = model.to(self.device).eval()
        self.inputs = load_inputs(inputs_npz)
        self.targets = explained_targets(self.inputs, self.settings)

    def explainer(self, batch_size: int) -> Explainer:
        return build_explainer(self.model, self.meta, self.spec, self.settings, self.inputs, batch_size,
                               self.device)

    def largest_shard(self) -> int:
        return largest_shard(len(self.inputs["ids"]), self.settings.shards)

    def shard_range(self, shard: int) -> tuple[int, int]:
        return shard_range(len(self.inputs["ids"]), self.settings.shards, shard)

    def preflight(self, shard: int = 0) -> PreflightResult:
        """Batch size for this method, measured on the images of `shard`, with a search sized by
        the work it plans: every selected image (see run_preflight)."""
        start, stop = self.shard_range(shard)
        pf = self.settings.preflight
        if stop == start:
            # Nothing selected (e.g. only `misclassified` of a model without errors): nothing to
            # time, and the shards are empty; the explainer is still built, so a bad method or
            # model fails here as it would with images.
            explainer = self.explainer(1)
            log.warning("%s: no images selected; batch size 1, nothing measured", self.spec["method"])
            return PreflightResult(method=explainer.name, device=str(self.device), batch_size=1, images_per_call=1,
                                   sec_per_image=0.0, peak_mb=None, passes_per_image=explainer.passes_per_image(),
                                   memory_budget_mb=pf.memory_budget_mb)
        x = torch.from_numpy(self.inputs["images"][start:stop]).float().div(255).to(self.device)
        t = torch.from_numpy(self.targets[start:stop]).to(self.device)
        return run_preflight(self.explainer, x, t, batch_sizes=pf.batch_sizes, memory_budget_mb=pf.memory_budget_mb,
                             min_seconds=pf.min_seconds, work_images=max(1, len(self.inputs["ids"])),
                             job_images=max(1, stop - start))

    def failed_shard(self, condition: str, shard: int, reason: str, out_npz: str | Path) -> None:
        """The shard of a method that could not explain these images: NaN maps and the reason,
        so that everything downstream reports the method as failed instead of missing."""
        start, stop = self.shard_range(shard)
        h, w = self.inputs["images"].shape[-2:]
        meta = {"start": start, "total": len(self.inputs["ids"]), "shard_count": self.settings.shards,
                "method": self.spec["method"], "params": dict(self.spec.get("params", {})), "condition": condition,
                "seed": self.settings.seed, "model": self.checkpoint, "failed": reason}
        save_shard(out_npz, np.full((stop - start, h, w), np.nan, np.float32), self.inputs["ids"][start:stop].tolist(),
                   meta, arrays={"targets": self.targets[start:stop]})

    def shard(self, condition: str, shard: int, batch_size: int, out_npz: str | Path) -> None:
        """Attributions of one shard of the selected images under one noise condition."""
        seed = self.settings.seed
        start, stop = self.shard_range(shard)
        x = torch.from_numpy(self.inputs["images"][start:stop]).float().div(255)
        x = apply_noise(x, condition, seed, start=start).to(self.device)
        targets = torch.from_numpy(self.targets[start:stop]).to(self.device)
        explainer = self.explainer(batch_size)
        torch.manual_seed(seed + shard)
        per_call = images_per_call(batch_size, explainer.model_inputs_per_image())
        started = time.perf_counter()
        maps = [explainer.attribute(x[s:s + per_call], targets[s:s + per_call]).cpu()
                for s in range(0, len(x), per_call)]
        compute_seconds = time.perf_counter() - started
        h, w = self.inputs["images"].shape[-2:]
        out = torch.cat(maps).numpy() if maps else np.zeros((0, h, w), np.float32)
        desc = explainer.describe()
        meta = {"start": start, "total": len(self.inputs["ids"]), "shard_count": self.settings.shards,
                "method": self.spec["method"], "params": desc["params"], "signed": desc["signed"],
                "library": desc["library"], "family": desc["family"], "output": desc["output"],
                "condition": condition, "seed": seed, "batch_size": batch_size, "model": self.checkpoint}
        save_shard(out_npz, out, self.inputs["ids"][start:stop].tolist(), meta,
                   arrays={"targets": targets.cpu().numpy()})
        # In the log, not the shard: shard files stay byte-identical between runs.
        log.info("%s %s shard %d: computed %d images in %.4f s (batch size %d)", self.spec["method"],
                 condition, shard, stop - start, compute_seconds, batch_size)


def _write_preflight(result: PreflightResult, spec: Mapping[str, Any], out_json: str | Path,
                     seconds: float, shard_images: int) -> None:
    # shard_images: what the other shard jobs' cluster runtime is sized for (ExplainSettings.shards)
    record = {**result.to_dict(), "spec": dict(spec), "preflight_seconds": seconds, "shard_images": shard_images}
    write_text_atomic(out_json, json.dumps(record, indent=1) + "\n")  # every other shard reads it
    log.info("%s: batch size %d, %.2f ms/image on %s", spec["method"], result.batch_size,
             1000 * result.sec_per_image, result.device)


def write_preflight_and_shard(checkpoint: str | Path, inputs_npz: str | Path, spec: Mapping[str, Any],
                              settings: Mapping[str, Any] | ExplainSettings, condition: str,
                              preflight_json: str | Path, shard_npz: str | Path) -> PreflightResult | None:
    """The preflight and then shard 0 of `condition` in one process: the job that measures the
    batch size also uses it, so a method's first shard pays for one start-up, not two. A method
    that fails is recorded (preflight "failed": reason, NaN shard) and None returned, unless
    `explain.on_error` is "stop"."""
    with gpu_slot():
        job = _Job(checkpoint, inputs_npz, spec, settings)
        started = time.perf_counter()
        try:
            result = job.preflight()
            seconds = time.perf_counter() - started
            job.shard(condition, 0, result.batch_size, shard_npz)
        except Exception as err:  # noqa: BLE001 - recorded as the method's failure, see ExplainSettings.on_error
            reason = _failure(job, err)
            job.failed_shard(condition, 0, reason, shard_npz)
            record = {"method": spec["method"], "spec": dict(spec), "failed": reason, "batch_size": 1,
                      "sec_per_image": float("nan"), "passes_per_image": float("nan"),
                      "shard_images": job.largest_shard()}
            write_text_atomic(preflight_json, json.dumps(record, indent=1) + "\n")
            return None
    _write_preflight(result, spec, preflight_json, seconds, job.largest_shard())
    return result


def _failure(job: _Job, err: Exception) -> str:
    """The reason a method failed, after logging it; re-raises unless failures are recorded."""
    if job.settings.on_error != "record":
        raise err
    reason = f"{type(err).__name__}: {err}".splitlines()[0][:500]
    log.exception("%s failed; recorded as failed (explain.on_error: record): %s", job.spec["method"], reason)
    return reason


def write_shard(checkpoint: str | Path, inputs_npz: str | Path, preflight_json: str | Path,
                spec: Mapping[str, Any], settings: Mapping[str, Any] | ExplainSettings, condition: str,
                shard: int, out_npz: str | Path) -> None:
    """Attributions of one shard of the selected images under one noise condition."""
    preflight = json.loads(Path(preflight_json).read_text())
    with gpu_slot():
        job = _Job(checkpoint, inputs_npz, spec, settings)
        if preflight.get("failed"):
            job.failed_shard(condition, shard, preflight["failed"], out_npz)
            return
        try:
            job.shard(condition, shard, int(preflight["batch_size"]), out_npz)
        except Exception as err:  # noqa: BLE001 - see ExplainSettings.on_error
            job.failed_shard(condition, shard, _failure(job, err), out_npz)
