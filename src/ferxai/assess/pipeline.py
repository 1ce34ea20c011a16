"""The model-running jobs of the scoring stage: faithfulness per (condition, method), and the
cascading-randomisation sanity check per method. The map-only families and the scorecard are in
`ferxai.assess.collect`.

Both see the images exactly as the attribution jobs did (the same noise condition, seed and
targets) and batch every model call: the faithfulness jobs with the forward batch size one job per
experiment measures by the methods' throughput preflight (`ferxai.explain.preflight`), the
randomisation job with the method's own measured batch size.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ferxai.assess import catalog
from ferxai.atomic import write_text_atomic
from ferxai.assess.files import SIMILARITIES, write_table
from ferxai.device import resolve_device
from ferxai.explain.base import SoftmaxOutput
from ferxai.explain.collect import load_inputs
from ferxai.explain.devices import gpu_slot
from ferxai.explain.noise import apply_noise
from ferxai.explain.preflight import images_per_call, run_preflight
from ferxai.explain.shard_files import load_shard, load_shard_arrays
from ferxai.models import load_checkpoint
from ferxai.settings import AssessSettings, ExplainSettings, RandomisationSettings

log = logging.getLogger(__name__)


class ForwardProbe:
    """What the preflight times for a metric: the model's forward pass on a batch (the metrics'
    perturbed copies are model inputs, one pass each)."""

    name = "forward"

    def __init__(self, forward: torch.nn.Module, batch_size: int):
        self.forward, self.batch_size = forward, batch_size

    def model_inputs_per_image(self) -> float:
        return 1.0

    def passes_per_image(self) -> float:
        return 1.0

    def attribute(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.forward(inputs)


def _images(inputs: Mapping[str, np.ndarray], condition: str, seed: int, device: torch.device,
            count: int | None = None) -> torch.Tensor:
    """The explained images under `condition`, as the attribution jobs computed them (noise is
    seeded by image position, so the first `count` are those images whatever the shards were)."""
    x = torch.from_numpy(inputs["images"][:count]).float().div(255)
    return apply_noise(x, condition, seed, start=0).to(device)


def _model(checkpoint: str | Path, device: torch.device) -> tuple[torch.nn.Module, dict[str, Any]]:
    model, meta = load_checkpoint(checkpoint, map_location=device)
    return model.to(device).eval(), meta


def forward_layout(model: torch.nn.Module) -> torch.nn.Module:
    """The model with its 4-d weights in channels-last (NHWC) memory order, for the forward-only
    metrics: oneDNN's and cuDNN's convolutions run faster on it and the outputs agree to float
    rounding (BENCHMARKS.md, explanation metrics). Not for the jobs that re-explain: hooks and
    canonizers of some methods assume the default layout."""
    return model.to(memory_format=torch.channels_last)


def write_forward_preflight(checkpoint: str | Path, inputs_npz: str | Path, metrics: Mapping[str, Mapping[str, Any]],
                            assess: Mapping[str, Any] | AssessSettings, explain: Mapping[str, Any] | ExplainSettings,
                            out_json: str | Path) -> None:
    """The model's fastest forward batch size within the memory budget, measured once per
    experiment with the methods' preflight (every faithfulness job runs the same model), with a
    search sized by the perturbed copies one faithfulness job evaluates."""
    assess = AssessSettings.from_dict(assess)
    explain = ExplainSettings.from_dict(explain)
    device = resolve_device(assess.device)
    inputs = load_inputs(inputs_npz)
    with gpu_slot():
        model, _ = _model(checkpoint, device)
        model = forward_layout(model)
        forward = SoftmaxOutput(model) if assess.output == "softmax" else model
        x = _images(inputs, "clean", explain.seed, device)
        copies = sum(catalog.get(spec["metric"]).passes(spec["params"]) for spec in metrics.values()) * len(x)
        record = {"batch_size": 1, "sec_per_copy": None, "device": str(device), "copies_per_job": copies}
        if len(x):
            pf = explain.preflight
            targets = torch.zeros(len(x), dtype=torch.long, device=device)
            result = run_preflight(lambda b: ForwardProbe(forward, b), x, targets, batch_sizes=pf.batch_sizes,
                                   memory_budget_mb=pf.memory_budget_mb, min_seconds=pf.min_seconds,
                                   work_images=max(1, copies), job_images=max(1, copies))
            record.update(batch_size=result.batch_size, sec_per_copy=result.sec_per_image,
                          candidates=[c.__dict__ for c in result.candidates])
            log.info("forward batch size %d (%.3f ms per copy), %d perturbed copies per job",
                     result.batch_size, 1000 * result.sec_per_image, copies)
    write_text_atomic(out_json, json.dumps(record, indent=1) + "\n")


class _Shard:
    """One shard of a method's maps with the images, targets and noise it was computed on."""

    def __init__(self, inputs: Mapping[str, np.ndarray], shard_npz: str | Path, condition: str, seed: int,
                 device: torch.device):
        maps, ids, meta = load_shard(shard_npz)
        self.start = int(meta["start"])
        stop = self.start + len(ids)
        if list(ids) != inputs["ids"][self.start:stop].tolist():
            raise ValueError(f"{shard_npz}: other images than the explanation inputs at {self.start}..{stop - 1} "
                             "(a shard of an older selection?)")
        self.ids, self.sets = list(ids), inputs["sets"][self.start:stop].tolist()
        self.failed = meta.get("failed")
        self.maps = torch.from_numpy(maps).to(device)
        self.targets = torch.from_numpy(load_shard_arrays(shard_npz)["targets"]).long().to(device)
        x = torch.from_numpy(inputs["images"][self.start:stop]).float().div(255)
        self.images = apply_noise(x, condition, seed, start=self.start).to(device)

    def write(self, out_csv: str | Path, values: Mapping[str, np.ndarray]) -> None:
        labels = list(values)
        write_table(out_csv, ("id", "set", *labels),
                    [(i, s, *(float(values[label][n]) for label in labels))
                     for n, (i, s) in enumerate(zip(self.ids, self.sets))])

    def nan(self, labels) -> dict[str, np.ndarray]:
        return {label: np.full(len(self.ids), np.nan) for label in labels}


def write_faithfulness(checkpoint: str | Path, inputs_npz: str | Path, shard_npz: str | Path,
                       preflight_json: str | Path, metrics: Mapping[str, Mapping[str, Any]],
                       assess: Mapping[str, Any] | AssessSettings, explain: Mapping[str, Any] | ExplainSettings,
                       condition: str, method: str, root: str, out_csv: str | Path) -> None:
    """Every model-running metric in `metrics` for one shard of one method's maps under one
    condition (a column each in `out_csv`), in batches of the measured forward batch size."""
    assess = AssessSettings.from_dict(assess)
    explain = ExplainSettings.from_dict(explain)
    device = resolve_device(assess.device)
    shard = _Shard(load_inputs(inputs_npz), shard_npz, condition, explain.seed, device)
    if shard.failed or not shard.ids:  # the method failed (ExplainSettings.on_error): nothing to score
        shard.write(out_csv, shard.nan(metrics))
        return
    batch_size = int(json.loads(Path(preflight_json).read_text())["batch_size"])
    values = {}
    with gpu_slot():
        model, _ = _model(checkpoint, device)
        model = forward_layout(model)
        forward = SoftmaxOutput(model) if assess.output == "softmax" else model
        for label, spec in metrics.items():
            started = time.perf_counter()
            try:
                found = catalog.load(spec["metric"])(forward, shard.images, shard.maps, shard.targets,
                                                     batch_size=batch_size, offset=shard.start, **spec["params"])
            except ValueError as err:
                raise ValueError(f"{root}: method {method!r}, condition {condition!r}, metric {label!r}: "
                                 f"{err}") from None
            values[label] = found.detach().cpu().numpy()
            log.info("%s %s %s: %d images in %.3f s (batch size %d)", method, condition, label, len(shard.ids),
                     time.perf_counter() - started, batch_size)
    shard.write(out_csv, values)


def write_sensitivity(checkpoint: str | Path, inputs_npz: str | Path, shard_npz: str | Path,
                      preflight_json: str | Path, spec: Mapping[str, Any], metrics: Mapping[str, Mapping[str, Any]],
                      explain: Mapping[str, Any] | ExplainSettings, condition: str, method: str,
                      out_csv: str | Path) -> None:
    """Every metric of `metrics` that recomputes the method's maps (max-sensitivity), for one
    shard of one method under one condition, with the method's own measured batch size; each
    metric scores only the first `max_images` images of the selection."""
    from ferxai.explain.pipeline import build_explainer

    explain = ExplainSettings.from_dict(explain)
    device = resolve_device(explain.device)
    inputs = load_inputs(inputs_npz)
    shard = _Shard(inputs, shard_npz, condition, explain.seed, device)
    preflight = json.loads(Path(preflight_json).read_text())
    # images of this shard within each metric's first max_images
    scored = {label: max(0, min(len(shard.ids), m["params"].get("max_images", len(shard.ids)) - shard.start))
              for label, m in metrics.items()}
    values = shard.nan(metrics)
    if shard.failed or preflight.get("failed") or not any(scored.values()):
        shard.write(out_csv, values)
        return
    batch_size = int(preflight["batch_size"])
    with gpu_slot():
        model, model_meta = _model(checkpoint, device)
        explainer = build_explainer(model, model_meta, spec, explain, inputs, batch_size, device)
        per_call = max(1, images_per_call(batch_size, explainer.model_inputs_per_image()))
        for label, metric in metrics.items():
            if not scored[label]:
                continue
            params = {**metric["params"], "max_images": scored[label]}
            started = time.perf_counter()
            torch.manual_seed(explain.seed)  # stochastic methods: the same draws for every map
            # one call holds an image's perturbed copies too: as many images as fill a batch
            values[label] = catalog.load(metric["metric"])(
                explainer.attribute, shard.images, shard.maps, shard.targets,
                per_call=max(1, per_call // (params["samples"] + 1)), offset=shard.start, **params).numpy()
            log.info("%s %s %s: %d images in %.2f s", method, condition, label, scored[label],
                     time.perf_counter() - started)
    shard.write(out_csv, values)


def write_randomisation(checkpoint: str | Path, inputs_npz: str | Path, preflight_json: str | Path,
                        spec: Mapping[str, Any], explain: Mapping[str, Any] | ExplainSettings,
                        settings: Mapping[str, Any] | RandomisationSettings, condition: str, method: str,
                        out_csv: str | Path) -> None:
    """The cascading randomisation check for one method: its maps of the first `images` explained
    images from the trained model, then from the model with ever more layers re-initialised
    (output layer first), and per step and image the similarity of the two maps."""
    from ferxai.assess.randomisation import cascade
    from ferxai.assess.similarity import rank_correlation, ssim, top_k_iou
    from ferxai.explain.pipeline import build_explainer, explained_targets

    explain = ExplainSettings.from_dict(explain)
    settings = RandomisationSettings.from_dict(settings)
    device = resolve_device(explain.device)
    inputs = load_inputs(inputs_npz)
    count = min(settings.images, len(inputs["ids"]))
    ids, sets = inputs["ids"][:count].tolist(), inputs["sets"][:count].tolist()
    preflight = json.loads(Path(preflight_json).read_text())
    batch_size = int(preflight["batch_size"])
    rows = []
    if preflight.get("failed"):  # the method failed (ExplainSettings.on_error): no maps to compare
        count = 0
    with gpu_slot():
        model, meta = _model(checkpoint, device)
        x = _images(inputs, condition, explain.seed, device, count)
        targets = torch.from_numpy(explained_targets(inputs, explain)[:count]).to(device)

        def maps_of(m: torch.nn.Module) -> np.ndarray:
            explainer = build_explainer(m, meta, spec, explain, inputs, batch_size, device)
            per_call = images_per_call(batch_size, explainer.model_inputs_per_image())
            torch.manual_seed(explain.seed)  # stochastic methods draw the same samples at every step
            return torch.cat([explainer.attribute(x[s:s + per_call], targets[s:s + per_call]).detach().cpu()
                              for s in range(0, count, per_call)]).numpy()

        started = time.perf_counter()
        original = maps_of(model) if count else None
        for step, (layer, randomised) in enumerate(cascade(model, seed=settings.seed), start=1):
            if not count:
                break
            maps = maps_of(randomised.to(device))
            found = {"rank_correlation": rank_correlation(original, maps), "ssim": ssim(original, maps),
                     "top_k_iou": top_k_iou(original, maps, settings.top_k)}
            rows += [(i, s, step, layer, *(float(found[k][n]) for k in SIMILARITIES))
                     for n, (i, s) in enumerate(zip(ids, sets))]
        log.info("%s: randomisation check on %d images, %d steps, in %.2f s", method, count,
                 len({r[2] for r in rows}), time.perf_counter() - started)
    write_table(out_csv, ("id", "set", "step", "layer", *SIMILARITIES), rows)


__all__ = ["ForwardProbe", "forward_layout", "write_faithfulness", "write_forward_preflight", "write_randomisation",
           "write_sensitivity"]
