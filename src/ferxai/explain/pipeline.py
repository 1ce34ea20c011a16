"""The model-running steps of the explanation stage (inputs, preflight, shards); the torch-free
file steps are in `ferxai.explain.collect`. Each is called by one thin workflow script.

select -> inputs.npz -> preflight/<method>.json -> <condition>/<method>/shard-<k>.npz
-> attributions.npz -> store.zarr. A method sees only the images, targets, references and its own
parameters; it knows nothing of files.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch

from ferxai.data.dataset import load_split_arrays
from ferxai.device import resolve_device
from ferxai.explain.base import Explainer
from ferxai.explain.devices import gpu_slot
from ferxai.explain.noise import apply_noise
from ferxai.explain.preflight import PreflightResult, images_per_call, run_preflight
from ferxai.explain.registry import make_explainer
from ferxai.explain.collect import load_inputs
from ferxai.explain.shards import shard_range
from ferxai.explain.mean_images import mean_images
from ferxai.explain.shard_files import save_shard
from ferxai.explain.targets import resolve_targets
from ferxai.models import load_checkpoint

log = logging.getLogger(__name__)

REFERENCE_IMAGES = 64  # training images handed to methods that sample replacements (PDA, DeepLIFT-SHAP)


def write_inputs(samples_csv: str | Path, checkpoint: str | Path, test_split: str | Path,
                 train_split: str | Path, out_npz: str | Path, seed: int = 0) -> None:
    """Everything the attribution jobs need, in one file: images, labels, predictions, references."""
    _, meta = load_checkpoint(checkpoint)
    size, channels, classes = int(meta["input_size"]), int(meta["in_channels"]), list(meta["classes"])
    samples = pd.read_csv(samples_csv, dtype={"id": str}, keep_default_na=False)
    test = pd.read_csv(test_split, dtype={"id": str, "source": str, "subject": str, "source_split": str},
                       keep_default_na=False).set_index("id", drop=False)
    missing = sorted(set(samples["id"]) - set(test.index))
    if missing:
        raise ValueError(f"{samples_csv}: {len(missing)} selected ids are not in {test_split}, e.g. {missing[:3]}")
    images, labels, _ = load_split_arrays(test.loc[samples["id"]].reset_index(drop=True), size, channels)
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
        reference_images=refs,
    )


def build_explainer(model: torch.nn.Module, meta: Mapping[str, Any], spec: Mapping[str, Any],
                    settings: Mapping[str, Any], inputs: Mapping[str, np.ndarray], batch_size: int,
                    device: torch.device) -> Explainer:
    explainer = make_explainer(spec["method"], model, arch=meta.get("arch", ""),
                               output=settings.get("output", "logits"), batch_size=batch_size,
                               **spec.get("params", {}))
    if hasattr(explainer, "set_reference"):
        explainer.set_reference(
            mean_image=torch.from_numpy(inputs["mean_image"]).to(device),
            class_means=torch.from_numpy(inputs["class_means"]).to(device),
            images=torch.from_numpy(inputs["reference_images"]).float().div(255).to(device),
        )
    return explainer


def _targets(inputs: Mapping[str, np.ndarray], settings: Mapping[str, Any]) -> np.ndarray:
    return resolve_targets(settings.get("target", "predicted"), inputs["labels"], inputs["predictions"],
                           list(inputs["class_names"]), settings.get("target_class"))


def _model_on(checkpoint: str | Path, settings: Mapping[str, Any]) -> tuple[torch.nn.Module, dict, torch.device]:
    device = resolve_device(settings.get("device", "auto"))
    model, meta = load_checkpoint(checkpoint, map_location=device)
    return model.to(device).eval(), meta, device


def write_preflight(checkpoint: str | Path, inputs_npz: str | Path, spec: Mapping[str, Any],
                    settings: Mapping[str, Any], out_json: str | Path) -> PreflightResult:
    with gpu_slot():
        model, meta, device = _model_on(checkpoint, settings)
        inputs = load_inputs(inputs_npz)
        x = torch.from_numpy(inputs["images"]).float().div(255).to(device)
        t = torch.from_numpy(_targets(inputs, settings)).to(device)
        pf = dict(settings.get("preflight") or {})

        def make(batch_size: int) -> Explainer:
            return build_explainer(model, meta, spec, settings, inputs, batch_size, device)

        result = run_preflight(make, x, t, batch_sizes=pf.get("batch_sizes", (1, 2, 4, 8, 16, 32, 64, 128)),
                               memory_budget_mb=pf.get("memory_budget_mb", 4000),
                               min_seconds=pf.get("min_seconds", 0.5))
    Path(out_json).write_text(json.dumps({**result.to_dict(), "spec": dict(spec)}, indent=1) + "\n")
    log.info("%s: batch size %d, %.2f ms/image on %s", spec["method"], result.batch_size,
             1000 * result.sec_per_image, result.device)
    return result


def write_shard(checkpoint: str | Path, inputs_npz: str | Path, preflight_json: str | Path,
                spec: Mapping[str, Any], settings: Mapping[str, Any], condition: str, shard: int,
                out_npz: str | Path) -> None:
    """Attributions of one shard of the selected images under one noise condition."""
    pre = json.loads(Path(preflight_json).read_text())
    with gpu_slot():
        model, meta, device = _model_on(checkpoint, settings)
        inputs = load_inputs(inputs_npz)
        n = len(inputs["ids"])
        start, stop = shard_range(n, int(settings.get("shard_size", 64)), shard) if n else (0, 0)
        x = torch.from_numpy(inputs["images"][start:stop]).float().div(255)
        x = apply_noise(x, condition, int(settings.get("seed", 0)), start=start).to(device)
        targets = torch.from_numpy(_targets(inputs, settings)[start:stop]).to(device)
        batch_size = int(pre["batch_size"])
        explainer = build_explainer(model, meta, spec, settings, inputs, batch_size, device)
        torch.manual_seed(int(settings.get("seed", 0)) + shard)
        per_call = images_per_call(batch_size, explainer.model_inputs_per_image())
        maps = [explainer.attribute(x[s:s + per_call], targets[s:s + per_call]).cpu()
                for s in range(0, len(x), per_call)]
    h, w = inputs["images"].shape[-2:]
    out = torch.cat(maps).numpy() if maps else np.zeros((0, h, w), np.float32)
    desc = explainer.describe()
    meta = {"start": start, "total": n, "shard_size": int(settings.get("shard_size", 64)),
            "method": spec["method"], "params": desc["params"], "signed": desc["signed"],
            "library": desc["library"], "family": desc["family"], "output": desc["output"],
            "condition": condition, "seed": int(settings.get("seed", 0)), "batch_size": batch_size}
    save_shard(out_npz, out, inputs["ids"][start:stop].tolist(), meta, arrays={"targets": targets.cpu().numpy()})
