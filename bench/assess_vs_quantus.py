"""ferxai's explanation metrics against Quantus 0.6: same model, images and maps; values and wall time.

Quantus needs opencv-python, which clashes with the project's opencv-python-headless, so its side
runs in a venv of its own outside the project's environment, and the two sides exchange files in a
work folder (default /tmp/quantus-bench):

    # once: the bench-only venv (torch installs from the local wheels)
    python3 -m venv /work/quantus-venv
    /work/quantus-venv/bin/pip install -r bench/requirements-quantus.txt

    # 1. ferxai side (project venv): model, 32 images, maps of 3 methods, ferxai's scores and timings
    .venv/bin/python bench/assess_vs_quantus.py --side ferxai --threads 2 --repeats 3
    # 2. Quantus side (bench venv; PYTHONPATH only for ferxai.models, which imports torch alone)
    PYTHONPATH=src /work/quantus-venv/bin/python bench/assess_vs_quantus.py --side quantus --threads 2 --repeats 3
    # 3. both sides' values and timings side by side
    .venv/bin/python bench/assess_vs_quantus.py --compare --out bench/results/assess_vs_quantus.json

Model: the checkpoint of the default pipeline run (`--checkpoint`, default
/tmp/quantus-bench/best.pt, copied there from results/synthetic_fer_cnn/model/best.pt of a default
run: fer_cnn, 12 epochs on the synthetic faces, 99 % test accuracy). Where that file is missing the
ferxai side trains fer_cnn itself for `--train-steps` SGD steps on synthetic faces (seed 0) and says so
in its JSON. Images: `--images` synthetic faces (ferxai.data.synthetic, seed `--data-seed` 2026, not
the training data's seed 0), classes in turn, in [0, 1]; targets: the model's predicted class (the
pipeline's default target). Maps: ferxai's saliency, gradcam and the random control
(`make_explainer(name, model, arch="fer_cnn", output="logits")`), computed once on the ferxai side
and handed to Quantus as `a_batch`. The faithfulness metrics read softmax probabilities on both
sides (the pipeline's `assess.output: softmax`; Quantus' `softmax=True`).

What is timed: each side's metric calls for all maps (3 methods x `--images` images; the
randomisation test: saliency on `--images` images, re-explaining at every step), best
of `--repeats`, torch.set_num_threads(`--threads`) on both sides, imports, model loading and map
computation excluded. Quantus is called with batch_size 64 (its default: every image of a map set
in one batch), ferxai with batch_size 64 (model inputs per call).

Model floor: the ferxai side also times one forward pass of a batch of BATCH inputs (with the
faithfulness jobs' channels-last weights and with the plain layout Quantus is handed); a metric's
floor is its number of model inputs times that. Where both tools are near their floor, no speed-up
beyond the ratio of the floors is possible at equal work.

Convention alignment, for the value check (untimed runs besides the timed ones):
* deletion / PixelFlipping: Quantus' curve has the K steps after removal (no unperturbed point)
  and its AUC is np.trapz with dx=1; ferxai's area includes the unperturbed point on a [0, 1]
  grid: ferxai = (Quantus AUC + (f0 + f1) / 2) / K, f0 the unperturbed output, f1 the first
  step's. Quantus' "black" baseline is each image's minimum, ferxai's 0: Quantus gets
  perturb_baseline=0.0. Quantus orders by np.argsort(-a) (not stable), ferxai by |map| with ties
  broken by pixel index: the aligned run gives Quantus a tie-free key with ferxai's order.
* faithfulness correlation: Quantus draws subsets with np.random.choice, ferxai from a seeded torch
  generator; the aligned run feeds Quantus ferxai's subsets (np.random.choice replaced for that
  call). normalise=False, abs=False, perturb_baseline=0.0 as ferxai (signed map sums, zeros).
* ROAD: different definitions. Quantus' ROAD is MoRF only, and returns per percentage the batch's
  accuracy (argmax == target) after imputation; ferxai's is ROADCombined per image, (LeRF change -
  MoRF change) / 2 of the target probability, averaged over percentiles. Both impute by noisy
  linear imputation (Rong et al. 2022). Checked with noise 0 on identical pixel sets: Quantus'
  imputation function against ferxai's (pixels), ROADCombined built from Quantus' imputation
  against ferxai's `road`, and Quantus' own ROAD accuracies against the same accuracies of
  ferxai-imputed images (percentages set to ferxai's removed counts). Timed: ferxai's `road` (9
  MoRF + 9 LeRF imputations per image) against Quantus' ROAD called twice, MoRF (|map|) and LeRF
  (max |map| - |map|) at the 9 matching percentages, the same imputations and model passes.
* sparseness: Quantus' defaults (abs, normalise by the batch maximum, +1e-7 before the Gini
  index); ferxai's Gini of |map| is scale-invariant, so only the 1e-7 shift differs.
* randomisation: Quantus' MPRT (top_down, Spearman, abs, normalise) with an explain_func calling
  captum's Saliency exactly as ferxai's `saliency` does (abs=True, logits, channels summed);
  ferxai: `cascade` + `make_explainer("saliency", ...)` + `rank_correlation` per step. The two
  randomise differently (Quantus: torch's reset_parameters, BatchNorm to weight 1, bias 0 and
  fresh running statistics; ferxai: Kaiming-uniform/sqrt(2) weights from its own seeded generator,
  BatchNorm scales 1 + N(0, 0.1), running statistics kept), so the aligned run hands Quantus the
  models of ferxai's cascade (its layer generator replaced for that call). ferxai's cascade steps
  over the 7 weight layers (a BatchNorm goes with the conv before it), Quantus' over the 13 modules
  with reset_parameters: 8 explanations against 14. Both are timed, and the speed-up is stated
  against Quantus on ferxai's 7 steps (the same work); per-step values are compared where the
  randomised layer sets coincide (ferxai's step X = Quantus after its module X).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

METHODS = ("saliency", "gradcam", "random")
DELETION_STEPS = 24          # 2304 pixels / 24 = 96 per step: Quantus needs features_in_step | pixels
FC_SUBSET, FC_SAMPLES = 64, 50  # ferxai's defaults (subset, samples) = Quantus' (subset_size, nr_runs)
ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)  # ferxai's default thresholds
ROAD_NOISE = 0.01
BATCH = 64
DEFAULT_CHECKPOINT = "/tmp/quantus-bench/best.pt"


LOADS: list = []  # 1-minute load average after each timed call: flags other work on the machine


def best_of(fn, repeats: int):
    """(best seconds, every timing, the last result)."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        LOADS.append(round(os.getloadavg()[0], 2))
    return min(times), times, result


def machine() -> dict:
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


# --------------------------------------------------------------------------------------------
# ferxai side (project venv)
# --------------------------------------------------------------------------------------------

def _train_fallback(steps: int, seed: int = 0):
    """fer_cnn trained for `steps` SGD steps of 32 synthetic faces (used only without a checkpoint)."""
    import torch

    from ferxai.classes import FER2013_CLASSES
    from ferxai.data.synthetic import SyntheticConfig, render_sample
    from ferxai.models import build_model, checkpoint_meta, default_normalization

    cfg = SyntheticConfig(seed=seed)
    n = 7 * 100
    images = np.stack([render_sample(cfg, i % 7, i // 7)[0] for i in range(n)]).astype(np.float32)[:, None] / 255
    labels = np.arange(n) % 7
    normalization = default_normalization("fer_cnn", 1)
    torch.manual_seed(seed)
    model = build_model("fer_cnn", 7, 1, 48, normalization=normalization)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(seed)
    x_all, y_all = torch.from_numpy(images), torch.from_numpy(labels)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, n, (32,), generator=g)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx]).backward()
        opt.step()
    meta = checkpoint_meta(arch="fer_cnn", classes=list(FER2013_CLASSES), in_channels=1, input_size=48,
                           normalization=normalization)
    return model.eval(), meta


def ferxai_side(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    from ferxai.assess.imputation import impute
    from ferxai.assess.metrics.deletion import deletion
    from ferxai.assess.metrics.faithfulness_correlation import faithfulness_correlation
    from ferxai.assess.metrics.road import road
    from ferxai.assess.metrics.sparseness import sparseness
    from ferxai.assess.pipeline import forward_layout
    from ferxai.assess.randomisation import cascade
    from ferxai.assess.removal import removal_curves
    from ferxai.assess.similarity import rank_correlation, ssim
    from ferxai.data.synthetic import SyntheticConfig, render_sample
    from ferxai.explain.base import SoftmaxOutput
    from ferxai.explain.registry import make_explainer
    from ferxai.models import load_checkpoint, save_checkpoint

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    checkpoint = Path(args.checkpoint)
    if checkpoint.is_file():
        model, meta = load_checkpoint(checkpoint)
        model_source = f"checkpoint {checkpoint} (epoch {meta.get('epoch')}, val accuracy {meta.get('val_accuracy')})"
    else:
        model, meta = _train_fallback(args.train_steps)
        model_source = f"no checkpoint at {checkpoint}: fer_cnn trained here for {args.train_steps} SGD steps"
    model = model.eval()
    save_checkpoint(work / "model.pt", model, meta)

    cfg = SyntheticConfig(seed=args.data_seed)
    n = args.images
    raw = np.stack([render_sample(cfg, i % 7, i // 7)[0] for i in range(n)])
    x = torch.from_numpy(raw.astype(np.float32)[:, None] / 255)
    labels = np.arange(n) % 7
    with torch.no_grad():
        targets = model(x).argmax(dim=1)
    maps = {m: make_explainer(m, model, arch="fer_cnn", output="logits", batch_size=n).attribute(x, targets).numpy()
            for m in METHODS}
    # the faithfulness jobs' forward: channels-last weights (ferxai.assess.pipeline.forward_layout)
    forward = SoftmaxOutput(forward_layout(copy.deepcopy(model))).eval()
    # the model's own share: one forward per perturbed copy at the batch size both sides use, with
    # ferxai's layout and with the plain one Quantus is handed; measured before any metric runs
    # (measured after them in the same process, the channels-last pass came out slower than the
    # plain one, against every separate measurement; the cause is not known)
    plain = SoftmaxOutput(model).eval()
    probe = torch.rand(BATCH, *x.shape[1:])
    floor = {}
    for name, fn in (("ferxai_layout", forward), ("plain_layout", plain)):
        with torch.no_grad():
            fn(probe)
            floor[name] = best_of(lambda: fn(probe), max(5, args.repeats))[0] / BATCH
    model_inputs = {"deletion": len(METHODS) * n * (DELETION_STEPS + 1),
                    "faithfulness_correlation": len(METHODS) * n * (FC_SAMPLES + 1),
                    "road": len(METHODS) * n * (2 * len(ROAD_PERCENTILES) + 1)}

    pixels = x.shape[2] * x.shape[3]
    timings, values = {}, {}

    def each(fn):
        return {m: fn(torch.from_numpy(maps[m])) for m in METHODS}

    # deletion
    t, ts, out = best_of(lambda: each(lambda a: deletion(forward, x, a, targets, steps=DELETION_STEPS,
                                                          baseline="black", order="most", batch_size=BATCH)),
                         args.repeats)
    timings["deletion"] = {"best_s": t, "all_s": ts}
    for m in METHODS:
        values[f"deletion/{m}"] = out[m].numpy()
        values[f"deletion_curve/{m}"] = removal_curves(forward, x, torch.from_numpy(maps[m]), targets,
                                                       mode="deletion", steps=DELETION_STEPS, baseline="black",
                                                       batch_size=BATCH).numpy()

    # faithfulness correlation (and its subsets, drawn as the function draws them, for the aligned run)
    t, ts, out = best_of(lambda: each(lambda a: faithfulness_correlation(
        forward, x, a, targets, subset=FC_SUBSET, samples=FC_SAMPLES, baseline="black", seed=0,
        batch_size=BATCH)), args.repeats)
    timings["faithfulness_correlation"] = {"best_s": t, "all_s": ts}
    for m in METHODS:
        values[f"faithfulness_correlation/{m}"] = out[m].numpy()
    # each image's subsets from its own generator (seed 0, offset 0), as the function draws them; the
    # aligned value check fails loudly if this copy of the draw ever differs from the function's
    values["fc_subsets"] = np.stack([torch.rand(FC_SAMPLES, pixels, generator=torch.Generator().manual_seed(i))
                                     .argsort(dim=1)[:, :FC_SUBSET].numpy() for i in range(n)])

    # ROAD, timed with its default noise; noise 0 for the value check
    t, ts, out = best_of(lambda: each(lambda a: road(forward, x, a, targets, percentiles=ROAD_PERCENTILES,
                                                      noise=ROAD_NOISE, seed=0, batch_size=BATCH)),
                         max(1, args.road_repeats))
    timings["road"] = {"best_s": t, "all_s": ts}
    img = x.numpy()
    for m in METHODS:
        values[f"road/{m}"] = out[m].numpy()
        values[f"road_noise0/{m}"] = road(forward, x, torch.from_numpy(maps[m]), targets,
                                          percentiles=ROAD_PERCENTILES, noise=0.0, seed=0, batch_size=BATCH).numpy()
        # the pixel sets ferxai's road removes (MoRF, then LeRF, at each percentile), as road.py picks them
        relevance = np.abs(maps[m]).astype(np.float32).reshape(n, pixels)
        removed = np.zeros((n, 2, len(ROAD_PERCENTILES), pixels), dtype=bool)
        imputed = np.zeros((n, 2, len(ROAD_PERCENTILES)) + img.shape[1:], dtype=np.float32)
        for i in range(n):
            for k, order in enumerate((relevance[i], -relevance[i])):
                for j, p in enumerate(ROAD_PERCENTILES):
                    removed[i, k, j] = order >= np.percentile(order, p)
                    # road.py keeps the image as it is where the set is every pixel (ties at the threshold)
                    imputed[i, k, j] = (img[i] if removed[i, k, j].all()
                                        else impute(img[i], removed[i, k, j].reshape(img.shape[2:]), 0.0))
        with torch.no_grad():
            predicted = model(torch.from_numpy(imputed.reshape(-1, *img.shape[1:]))).argmax(dim=1).numpy()
        values[f"road_removed/{m}"] = removed
        values[f"road_imputed0/{m}"] = imputed
        values[f"road_correct0/{m}"] = predicted.reshape(n, 2, len(ROAD_PERCENTILES)) == targets.numpy()[:, None, None]

    # sparseness
    t, ts, out = best_of(lambda: {m: sparseness(maps[m]) for m in METHODS}, args.repeats)
    timings["sparseness"] = {"best_s": t, "all_s": ts}
    for m in METHODS:
        values[f"sparseness/{m}"] = out[m]

    # cascading randomisation, saliency: original maps, then per step the randomised model's maps
    def randomisation():
        explain = lambda mod: make_explainer("saliency", mod, arch="fer_cnn", output="logits",  # noqa: E731
                                             batch_size=n).attribute(x, targets).numpy()
        original = explain(model)
        return {layer: rank_correlation(original, explain(randomised)) for layer, randomised in cascade(model, seed=0)}

    t, ts, out = best_of(randomisation, args.repeats)
    timings["mprt"] = {"best_s": t, "all_s": ts}
    layers = list(out)
    values["mprt"] = np.stack([out[layer] for layer in layers])  # (layers, N)
    steps = [(layer, {k: v.clone() for k, v in randomised.state_dict().items()}) for layer, randomised in cascade(model, seed=0)]
    torch.save(steps, work / "cascade.pt")
    original = make_explainer("saliency", model, arch="fer_cnn", output="logits", batch_size=n).attribute(x, targets).numpy()
    step_maps = [make_explainer("saliency", randomised, arch="fer_cnn", output="logits", batch_size=n)
                 .attribute(x, targets).numpy() for _, randomised in cascade(model, seed=0)]
    t_ssim, _, _ = best_of(lambda: [ssim(original, s) for s in step_maps], args.repeats)
    timings["mprt_ssim_extra"] = {"best_s": t_ssim, "note": "ferxai's pipeline also computes SSIM per step; not in the mprt timing"}

    np.savez_compressed(work / "inputs.npz", x=x.numpy(), targets=targets.numpy(), labels=labels,
                        **{f"map_{m}": maps[m] for m in METHODS})
    np.savez_compressed(work / "ferxai_values.npz", **values)
    info = {"side": "ferxai", "model": model_source, "images": n, "data_seed": args.data_seed,
            "methods": list(METHODS), "accuracy_vs_labels": float((targets.numpy() == labels).mean()),
            "threads": torch.get_num_threads(), "torch": torch.__version__, "repeats": args.repeats,
            "road_repeats": args.road_repeats, "mprt_layers": layers, "timings": timings, "machine": machine(),
            "forward_s_per_input": floor, "model_inputs": model_inputs,
            "load_after_each_timing": LOADS, "date": time.strftime("%Y-%m-%d")}
    (work / "ferxai.json").write_text(json.dumps(info, indent=2))
    print(json.dumps({k: round(v["best_s"], 4) for k, v in timings.items()}, indent=2))


# --------------------------------------------------------------------------------------------
# Quantus side (bench venv)
# --------------------------------------------------------------------------------------------

def quantus_side(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    import warnings

    if not hasattr(np, "trapz"):  # numpy 2.4 removed np.trapz, which Quantus 0.6's calculate_auc calls
        np.trapz = np.trapezoid
    warnings.filterwarnings("ignore")
    import captum.attr
    import quantus
    from quantus.functions.perturb_func import noisy_linear_imputation
    from quantus.helpers.model.pytorch_model import PyTorchModel

    from ferxai.models import load_checkpoint  # torch only: no cv2 import, no clash with opencv-python

    work = Path(args.workdir)
    model, _ = load_checkpoint(work / "model.pt")
    model = model.eval()
    data = np.load(work / "inputs.npz")
    fx = np.load(work / "ferxai_values.npz")
    x, y = data["x"], data["targets"]
    maps = {m: data[f"map_{m}"] for m in METHODS}
    n, pixels = len(x), x.shape[2] * x.shape[3]
    common = dict(channel_first=True, device="cpu", batch_size=BATCH)
    timings, values = {}, {}
    with torch.no_grad():
        f0 = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()[np.arange(n), y]
    values["f0"] = f0

    # PixelFlipping (= deletion), native: |map| order, Quantus' unstable argsort
    def pixel_flipping(a, auc=True, **kw):
        metric = quantus.PixelFlipping(features_in_step=pixels // DELETION_STEPS, perturb_baseline=0.0,
                                       return_auc_per_sample=auc, disable_warnings=True, **kw)
        return np.asarray(metric(model=model, x_batch=x, y_batch=y, a_batch=a, softmax=True, **common))

    t, ts, out = best_of(lambda: {m: pixel_flipping(maps[m], abs=True, normalise=False) for m in METHODS},
                         args.repeats)
    timings["deletion"] = {"best_s": t, "all_s": ts}
    for m in METHODS:
        values[f"deletion_auc_raw/{m}"] = out[m]
        curve = pixel_flipping(maps[m], auc=False, abs=True, normalise=False)
        values[f"deletion_curve_native/{m}"] = curve
        # aligned tie order: a key decreasing along ferxai's order (|map| descending, ties by pixel index)
        order = np.argsort(-np.abs(maps[m]).reshape(n, -1), axis=1, kind="stable")
        key = np.empty((n, pixels), dtype=np.float64)
        np.put_along_axis(key, order, np.arange(pixels, 0, -1, dtype=np.float64)[None].repeat(n, 0), axis=1)
        key = key.reshape(maps[m].shape)
        values[f"deletion_auc_aligned_raw/{m}"] = pixel_flipping(key, abs=False, normalise=False)
        values[f"deletion_curve_aligned/{m}"] = pixel_flipping(key, auc=False, abs=False, normalise=False)

    # FaithfulnessCorrelation, native (its own np.random subsets), then on ferxai's subsets
    def faithfulness(a):
        metric = quantus.FaithfulnessCorrelation(nr_runs=FC_SAMPLES, subset_size=FC_SUBSET, abs=False, normalise=False,
                                                 perturb_baseline=0.0, return_aggregate=False, disable_warnings=True)
        return np.asarray(metric(model=model, x_batch=x, y_batch=y, a_batch=a, softmax=True, **common), dtype=float)

    np.random.seed(0)
    t, ts, out = best_of(lambda: {m: faithfulness(maps[m]) for m in METHODS}, args.repeats)
    timings["faithfulness_correlation"] = {"best_s": t, "all_s": ts}
    subsets = fx["fc_subsets"]
    for m in METHODS:
        values[f"faithfulness_correlation_native/{m}"] = out[m]
        feed = iter([subsets[b, r] for r in range(FC_SAMPLES) for b in range(n)])  # Quantus: runs outer, images inner
        choice = np.random.choice
        np.random.choice = lambda *a, **k: next(feed)
        try:
            values[f"faithfulness_correlation_aligned/{m}"] = faithfulness(maps[m])
        finally:
            np.random.choice = choice

    # ROAD: timed MoRF (|map|) + LeRF (max |map| - |map|) at the matching percentages, noise 0.01
    quantus_percentages = [100 - p for p in ROAD_PERCENTILES]

    def road_native(a, percentages, noise):
        metric = quantus.ROAD(percentages=percentages, noise=noise, abs=False, normalise=False, disable_warnings=True)
        return metric(model=model, x_batch=x, y_batch=y, a_batch=a, softmax=True, **common)

    # LeRF as a key in reverse order (Quantus refuses all-negative maps, so not -|map|)
    reverse = {m: np.abs(maps[m]).max(axis=(1, 2), keepdims=True) - np.abs(maps[m]) for m in METHODS}
    t, ts, out = best_of(lambda: {m: (road_native(np.abs(maps[m]), quantus_percentages, ROAD_NOISE),
                                      road_native(reverse[m], quantus_percentages, ROAD_NOISE))
                                  for m in METHODS}, max(1, args.road_repeats))
    timings["road"] = {"best_s": t, "all_s": ts, "calls": "ROAD MoRF + ROAD LeRF per method"}
    for m in METHODS:
        values[f"road_quantus_morf_accuracy/{m}"] = np.array(list(out[m][0].values()))
        values[f"road_quantus_lerf_accuracy/{m}"] = np.array(list(out[m][1].values()))

    class ROADPerImage(quantus.ROAD):  # keeps the per-image flags Quantus averages away
        def custom_postprocess(self, **kwargs):
            pass

    for m in METHODS:
        removed = fx[f"road_removed/{m}"]           # (N, 2, P, pixels), ferxai's sets
        # Quantus' imputation on ferxai's exact sets, noise 0
        imputed = np.stack([[[x[i] if removed[i, k, j].all() else  # as ferxai: all pixels tied at the threshold
                              noisy_linear_imputation(arr=x[i], indices=np.flatnonzero(removed[i, k, j]), noise=0.0)
                              for j in range(len(ROAD_PERCENTILES))] for k in range(2)] for i in range(n)])
        values[f"road_imputation_maxdiff/{m}"] = np.abs(imputed - fx[f"road_imputed0/{m}"]).reshape(n, -1).max(axis=1)
        with torch.no_grad():
            after = torch.softmax(model(torch.from_numpy(imputed.reshape(-1, *x.shape[1:]).astype(np.float32))), dim=1)
        after = after.numpy().reshape(n, 2, len(ROAD_PERCENTILES), -1)[np.arange(n), :, :, y]
        change = after - f0[:, None, None]
        values[f"road_combined_from_quantus_imputation/{m}"] = ((change[:, 1] - change[:, 0]) / 2).mean(axis=1)
        # Quantus' own ROAD (MoRF), noise 0, percentages hitting ferxai's removed counts exactly
        counts = removed[:, 0].sum(axis=2)          # (N, P)
        percentages = [100 * int(c) / pixels + 1e-6 for c in counts[0]]
        metric = ROADPerImage(percentages=percentages, noise=0.0, abs=False, normalise=False, disable_warnings=True)
        metric(model=model, x_batch=x, y_batch=y, a_batch=np.abs(maps[m]), softmax=True, **common)
        flags = np.asarray(metric.evaluation_scores[0]).astype(bool)  # (N, P)
        order = np.argsort(-np.abs(maps[m]).reshape(n, -1), axis=1)
        same = np.array([[counts[i, j] == counts[0, j] and removed[i, 0, j, order[i, :counts[0, j]]].all()
                          for j in range(len(percentages))] for i in range(n)])
        values[f"road_quantus_flags0/{m}"] = flags
        values[f"road_same_sets/{m}"] = same

    # Sparseness (Quantus defaults)
    def sparse(a):
        metric = quantus.Sparseness(disable_warnings=True)
        return np.asarray(metric(model=None, x_batch=x, y_batch=y, a_batch=a, **common), dtype=float)

    t, ts, out = best_of(lambda: {m: sparse(maps[m]) for m in METHODS}, args.repeats)
    timings["sparseness"] = {"best_s": t, "all_s": ts}
    for m in METHODS:
        values[f"sparseness/{m}"] = out[m]

    # MPRT with captum Saliency called as ferxai's saliency method calls it
    def saliency_explain(model, inputs, targets, **kwargs):
        inputs = torch.as_tensor(inputs, dtype=torch.float32)
        targets = torch.as_tensor(targets, dtype=torch.long)
        return captum.attr.Saliency(model).attribute(inputs, target=targets, abs=True).sum(dim=1).detach().numpy()

    def mprt():
        metric = quantus.MPRT(layer_order="top_down", seed=42, disable_warnings=True, return_aggregate=False)
        return metric(model=model, x_batch=x, y_batch=y, a_batch=maps["saliency"], explain_func=saliency_explain,
                      softmax=False, **common)

    t, ts, out = best_of(mprt, args.repeats)
    timings["mprt"] = {"best_s": t, "all_s": ts}
    layers_native = [k for k in out if k != "original"]
    values["mprt_native"] = np.array([out[k] for k in layers_native])
    values["mprt_native_original"] = np.array(out["original"])
    steps = torch.load(work / "cascade.pt", weights_only=True)

    def ferxai_steps(self, order="top_down", seed=42):
        for layer, state in steps:
            randomised = copy.deepcopy(self.model)
            randomised.load_state_dict(state)
            yield layer, randomised.eval()

    native_generator = PyTorchModel.get_random_layer_generator
    PyTorchModel.get_random_layer_generator = ferxai_steps
    try:  # timed too: the same 7 + 1 explanations as ferxai's cascade (Quantus' own goes over 13 modules)
        t, ts, aligned = best_of(mprt, args.repeats)
        timings["mprt_same_steps"] = {"best_s": t, "all_s": ts}
    finally:
        PyTorchModel.get_random_layer_generator = native_generator
    layers_aligned = [k for k in aligned if k != "original"]
    values["mprt_aligned"] = np.array([aligned[k] for k in layers_aligned])

    np.savez_compressed(work / "quantus_values.npz", **values)
    info = {"side": "quantus", "quantus": quantus.__version__, "torch": torch.__version__, "numpy": np.__version__,
            "threads": torch.get_num_threads(), "repeats": args.repeats, "road_repeats": args.road_repeats,
            "mprt_layers_native": layers_native, "mprt_layers_aligned": layers_aligned,
            "road_percentages_aligned_example": percentages, "timings": timings, "machine": machine(),
            "load_after_each_timing": LOADS,
            "date": time.strftime("%Y-%m-%d")}
    (work / "quantus.json").write_text(json.dumps(info, indent=2))
    print(json.dumps({k: round(v["best_s"], 4) for k, v in timings.items()}, indent=2))


# --------------------------------------------------------------------------------------------
# comparison (either venv: numpy and scipy only)
# --------------------------------------------------------------------------------------------

def _maxdiff(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    both = np.isfinite(a) & np.isfinite(b)
    if not (np.isfinite(a) == np.isfinite(b)).all():
        return float("inf")
    return float(np.abs(a[both] - b[both]).max()) if both.any() else 0.0


def _spearman(a, b) -> float:
    from scipy import stats

    a, b = np.asarray(a, float).ravel(), np.asarray(b, float).ravel()
    keep = np.isfinite(a) & np.isfinite(b)
    return float(stats.spearmanr(a[keep], b[keep])[0])


def compare(args) -> dict:
    work = Path(args.workdir)
    fi, qi = json.loads((work / "ferxai.json").read_text()), json.loads((work / "quantus.json").read_text())
    fx, qx = np.load(work / "ferxai_values.npz"), np.load(work / "quantus_values.npz")
    n, methods = fi["images"], fi["methods"]
    rows, checks = [], {}

    def cat(store, key):
        return np.concatenate([store[f"{key}/{m}"].ravel() for m in methods])

    # deletion: ferxai area = (Quantus AUC + (f0 + f1) / 2) / K
    f0 = qx["f0"]

    def converted(raw_key, curve_key):
        return np.concatenate([(qx[f"{raw_key}/{m}"] + (f0 + qx[f"{curve_key}/{m}"][:, 0]) / 2) / DELETION_STEPS
                               for m in methods])

    ferxai_del = cat(fx, "deletion")
    aligned = converted("deletion_auc_aligned_raw", "deletion_curve_aligned")
    native = converted("deletion_auc_raw", "deletion_curve_native")
    curves_f = np.concatenate([fx[f"deletion_curve/{m}"][:, 1:] for m in methods])
    checks["deletion"] = {
        "aligned_max_abs_diff": _maxdiff(ferxai_del, aligned),
        "aligned_curve_max_abs_diff": _maxdiff(curves_f, np.concatenate([qx[f"deletion_curve_aligned/{m}"] for m in methods])),
        "native_max_abs_diff": _maxdiff(ferxai_del, native),
        "native_max_abs_diff_per_method": {m: _maxdiff(fx[f"deletion/{m}"], converted("deletion_auc_raw", "deletion_curve_native")[i * n:(i + 1) * n])
                                           for i, m in enumerate(methods)},
        "native_spearman": _spearman(ferxai_del, native), "tolerance": 1e-5}
    # faithfulness correlation
    fc = cat(fx, "faithfulness_correlation")
    checks["faithfulness_correlation"] = {
        "aligned_max_abs_diff": _maxdiff(fc, cat(qx, "faithfulness_correlation_aligned")),
        "native_spearman": _spearman(fc, cat(qx, "faithfulness_correlation_native")),
        "native_means": {m: [float(np.nanmean(fx[f"faithfulness_correlation/{m}"])),
                             float(np.nanmean(qx[f"faithfulness_correlation_native/{m}"]))] for m in methods},
        "tolerance": 1e-4}
    # ROAD
    per_method = {}
    for m in methods:
        same = qx[f"road_same_sets/{m}"]
        flags_f, flags_q = fx[f"road_correct0/{m}"][:, 0], qx[f"road_quantus_flags0/{m}"]
        per_method[m] = {
            "quantus_morf_accuracy_noise0_max_abs_diff": _maxdiff(flags_f.mean(axis=0), flags_q.mean(axis=0)),
            "sets_equal_fraction": float(same.mean()),
            "flags_agreement_where_sets_equal": float((flags_f[same] == flags_q[same]).mean()),
            "flags_agreement_all": float((flags_f == flags_q).mean()),
            "ferxai_sets_of_every_pixel": int(fx[f"road_removed/{m}"].all(axis=3).sum()),
            "ferxai_road_mean": float(np.nanmean(fx[f"road/{m}"])),
            "quantus_morf_accuracy_noise001": qx[f"road_quantus_morf_accuracy/{m}"].tolist(),
            "quantus_lerf_accuracy_noise001": qx[f"road_quantus_lerf_accuracy/{m}"].tolist()}
    tie_free = [m for m in methods if per_method[m]["sets_equal_fraction"] == 1.0]
    checks["road"] = {
        "imputation_max_abs_pixel_diff": float(cat(qx, "road_imputation_maxdiff").max()),
        "combined_noise0_max_abs_diff": _maxdiff(cat(fx, "road_noise0"), cat(qx, "road_combined_from_quantus_imputation")),
        "accuracy_max_abs_diff_tie_free_methods": max(per_method[m]["quantus_morf_accuracy_noise0_max_abs_diff"]
                                                      for m in tie_free) if tie_free else None,
        "tie_free_methods": tie_free, "per_method": per_method, "tolerance": 1e-5}
    # sparseness
    checks["sparseness"] = {"max_abs_diff": _maxdiff(cat(fx, "sparseness"), cat(qx, "sparseness")), "tolerance": 1e-5}
    # MPRT
    mf, ma, mn = fx["mprt"], qx["mprt_aligned"], qx["mprt_native"]
    checks["mprt"] = {
        "aligned_max_abs_diff": _maxdiff(mf, ma),
        "steps_match_aligned": fi["mprt_layers"] == qi["mprt_layers_aligned"],
        "ferxai_steps": fi["mprt_layers"], "quantus_layers": qi["mprt_layers_native"],
        # ferxai's step X re-initialises X with its norm layers and everything after: Quantus' state
        # after its layer X (it goes module by module, norms included)
        "native_per_step_mean": {layer: [float(np.nanmean(mf[i])), float(np.nanmean(mn[qi["mprt_layers_native"].index(layer)]))]
                                 for i, layer in enumerate(fi["mprt_layers"])},
        "native_spearman_per_image_values": _spearman(mf, np.stack([mn[qi["mprt_layers_native"].index(layer)]
                                                                    for layer in fi["mprt_layers"]])),
        "quantus_original_mean": float(np.nanmean(qx["mprt_native_original"])),
        "tolerance": 1e-4}

    def row(metric, label, images, diff, tol, note, quantus_metric=None):
        tf, tq = fi["timings"][metric]["best_s"], qi["timings"][quantus_metric or metric]["best_s"]
        inputs = fi.get("model_inputs", {}).get(metric)
        floor = {k: inputs * v for k, v in fi.get("forward_s_per_input", {}).items()} if inputs else {}
        rows.append({"metric": label, "images": images, "ferxai_s": tf, "quantus_s": tq, "speedup": tq / tf,
                     "model_inputs": inputs, "model_floor_s": floor,
                     "agreement": diff, "tolerance": tol, "note": note})

    c = checks
    row("deletion", "deletion / PixelFlipping (24 steps)", f"{len(methods)}×{n}",
        f"{c['deletion']['aligned_max_abs_diff']:.1e} aligned; native {c['deletion']['native_max_abs_diff']:.1e}",
        "1e-5", "AUC convention converted; baseline 0; tie order aligned")
    row("faithfulness_correlation", "faithfulness correlation (64 px × 50)", f"{len(methods)}×{n}",
        f"{c['faithfulness_correlation']['aligned_max_abs_diff']:.1e} aligned; native ρ {c['faithfulness_correlation']['native_spearman']:.3f}",
        "1e-4", "same subsets fed to Quantus")
    row("road", "ROAD (9 percentiles, MoRF + LeRF)", f"{len(methods)}×{n}",
        f"imputation {c['road']['imputation_max_abs_pixel_diff']:.1e}; combined {c['road']['combined_noise0_max_abs_diff']:.1e}; "
        f"accuracy {c['road']['accuracy_max_abs_diff_tie_free_methods']:.1e} ({', '.join(c['road']['tie_free_methods'])})",
        "1e-5", "different definitions; checked at noise 0")
    row("sparseness", "sparseness (Gini)", f"{len(methods)}×{n}", f"{c['sparseness']['max_abs_diff']:.1e}", "1e-5",
        "Quantus adds 1e-7")
    row("mprt", "randomisation / MPRT (saliency, 7 steps)", f"{n}",
        f"{c['mprt']['aligned_max_abs_diff']:.1e} aligned; native ρ {c['mprt']['native_spearman_per_image_values']:.3f}",
        "1e-4", "randomisation differs; aligned on ferxai's models; Quantus on the same 7 steps", "mprt_same_steps")
    row("mprt", "randomisation / MPRT, Quantus' own 13 module steps", f"{n}", "(as above)", "1e-4",
        "Quantus explains 14 times, ferxai 8")
    result = {"date": fi["date"], "ferxai": fi, "quantus": qi, "checks": checks, "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"{'metric':45} {'images':>7} {'ferxai s':>9} {'Quantus s':>10} {'speed-up':>9} {'floor s':>8}  agreement")
    for r in rows:
        floor = r["model_floor_s"].get("ferxai_layout")
        print(f"{r['metric']:45} {r['images']:>7} {r['ferxai_s']:9.3f} {r['quantus_s']:10.3f} {r['speedup']:8.2f}× "
              f"{'' if floor is None else f'{floor:8.3f}':>8}  {r['agreement']} (tol {r['tolerance']})")
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--side", choices=("ferxai", "quantus"))
    parser.add_argument("--compare", action="store_true")
    parser.add_argument("--workdir", default="/tmp/quantus-bench")
    parser.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--data-seed", type=int, default=2026)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--road-repeats", type=int, default=2)
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    if args.side == "ferxai":
        ferxai_side(args)
    elif args.side == "quantus":
        quantus_side(args)
    if args.compare:
        compare(args)
    if not (args.side or args.compare):
        parser.error("give --side ferxai, --side quantus or --compare")


if __name__ == "__main__":
    sys.exit(main())
