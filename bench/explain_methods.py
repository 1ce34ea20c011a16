"""Attribution throughput per method: preflight batching vs a one-image-at-a-time loop, and
efficiency against the ceiling (model passes needed x the best per-image pass time).

    python bench/explain_methods.py --arch fer_cnn --images 16 --threads 2 --repeats 3 --out bench/results/explain_fer_cnn.json
    python bench/explain_methods.py --arch resnet18 --images 4 --threads 2 --out bench/results/explain_resnet18.json

Method parameters are the default config's (config/config.yaml, explain.methods). The model has
random weights: speed does not depend on what a model learned. The one-image loop explains each
image alone with the model batch its library uses by default (captum gradient methods: all of an
image's steps/samples at once; captum Occlusion/FeatureAblation/ShapleyValueSampling:
perturbations_per_eval=1; lime: batch_size=10; methods ferxai implements itself: one input per
forward), the way the original runner scripts called them.

`naive_efficiency` is the loop's own efficiency against the same ceiling: the speed-up batching
can still buy is at most efficiency / naive_efficiency ≤ 1 / naive_efficiency.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from ferxai.data.synthetic import SyntheticConfig, render_sample
from ferxai.explain.pipeline import build_explainer
from ferxai.explain.preflight import images_per_call, run_preflight
from ferxai.models import build_model
from ferxai.settings import ExplainSettings

# Model batch the libraries use by default when called once per image (see module docstring).
NAIVE_BATCH = {"occlusion": 1, "feature_ablation": 1, "shapley_sampling": 1, "lime": 10,
               "meaningful_perturbation": 1, "prediction_difference": 1, "rise": 1}
FORWARD_ONLY = {"occlusion", "feature_ablation", "lime", "shap", "shapley_sampling", "prediction_difference",
                "rise", "eigencam", "ablationcam", "scorecam"}


def per_image_pass_time(model, x, backward: bool, sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256)) -> float:
    """Best seconds per image over batch sizes and both memory layouts, for forward or forward+backward.

    Both layouts, because methods that build their inputs from numpy arrays (LIME, SHAP, RISE...)
    hand the model channels-last tensors, which this CPU's convolutions run up to ~2x faster: a
    ceiling from contiguous inputs only would flatter those methods with efficiencies above 1.
    """
    best = float("inf")
    for b, layout in ((b, layout) for b in sizes for layout in (torch.contiguous_format, torch.channels_last)):
        xb = x[torch.arange(b) % len(x)].contiguous(memory_format=layout).requires_grad_(backward)
        reps = max(2, 256 // b)
        for i in range(reps + 1):
            if i == 1:
                start = time.perf_counter()
            if backward:
                model(xb).sum().backward()
            else:
                with torch.no_grad():
                    model(xb)
        best = min(best, (time.perf_counter() - start) / (reps * b))
    return best


def run_method(explainer, x, t) -> float:
    per_call = images_per_call(explainer.batch_size, explainer.model_inputs_per_image())
    explainer.attribute(x[:per_call], t[:per_call])  # warm-up: first-call set-up is not throughput
    start = time.perf_counter()
    for s in range(0, len(x), per_call):
        explainer.attribute(x[s:s + per_call], t[s:s + per_call])
    return (time.perf_counter() - start) / len(x)


def naive(explainer_factory, name, passes, x, t) -> float:
    batch = NAIVE_BATCH.get(name, max(1, int(round(passes))))
    explainer = explainer_factory(batch)
    explainer.attribute(x[:1], t[:1])  # warm-up, as for the batched run
    start = time.perf_counter()
    for i in range(len(x)):
        explainer.attribute(x[i:i + 1], t[i:i + 1])
    return (time.perf_counter() - start) / len(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="fer_cnn")
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--methods", default="", help="comma-separated labels (default: all configured)")
    ap.add_argument("--config", default="config/config.yaml")
    ap.add_argument("--repeats", type=int, default=1,
                    help="time the batched run and the loop this many times each, alternating, and keep "
                         "each one's fastest (other processes only ever slow a run down)")
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = yaml.safe_load(Path(args.config).read_text())
    methods = {k: dict(v or {}) for k, v in cfg["explain"]["methods"].items()}
    if args.methods:
        methods = {k: methods[k] for k in args.methods.split(",")}
    syn = SyntheticConfig(size=48)
    images = np.stack([render_sample(syn, i % 7, i)[0] for i in range(args.images)])[:, None]
    x = torch.from_numpy(images).float() / 255
    t = torch.arange(args.images) % 7
    model = build_model(args.arch, num_classes=7, in_channels=1, input_size=48).eval()
    meta = {"arch": args.arch}
    refs = {"mean_image": x.mean(0).numpy(), "class_means": x[:7].numpy(), "reference_images": images}
    fwd = per_image_pass_time(model, x, backward=False)
    fwd_bwd = per_image_pass_time(model, x, backward=True)
    print(f"{args.arch}: best forward {1000 * fwd:.3f} ms/image, forward+backward {1000 * fwd_bwd:.3f} ms/image")
    rows = []
    for label, params in methods.items():
        spec = {"method": params.pop("method", label), "params": params}

        def make(batch_size, spec=spec):
            return build_explainer(model, meta, spec, ExplainSettings(output="logits"), refs, batch_size, torch.device("cpu"))

        try:
            pre = run_preflight(make, x, t, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256), min_seconds=0.3)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other methods
            print(f"{label}: {type(exc).__name__}: {exc}")
            rows.append({"method": label, "error": f"{type(exc).__name__}: {exc}"})
            continue
        explainer = make(pre.batch_size)
        passes = explainer.passes_per_image()
        batched, loop = float("inf"), float("inf")
        for _ in range(max(1, args.repeats)):
            torch.manual_seed(0)
            batched = min(batched, run_method(explainer, x, t))
            torch.manual_seed(0)
            loop = min(loop, naive(make, spec["method"], passes, x, t))
        unit = fwd if spec["method"] in FORWARD_ONLY else fwd_bwd
        row = {"method": label, "batch_size": pre.batch_size, "passes_per_image": passes,
               "images_per_s": 1 / batched, "naive_images_per_s": 1 / loop, "speedup": loop / batched,
               "efficiency": passes * unit / batched, "naive_efficiency": passes * unit / loop,
               "ceiling_pass": "forward" if unit is fwd else "forward+backward"}
        rows.append(row)
        print(f"{label:28s} b={pre.batch_size:4d} {row['images_per_s']:9.2f} img/s  naive {row['naive_images_per_s']:9.2f}"
              f"  x{row['speedup']:5.2f}  efficiency {row['efficiency']:.2f} (loop {row['naive_efficiency']:.2f})", flush=True)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"arch": args.arch, "images": args.images, "threads": args.threads,
                                              "repeats": args.repeats,
                                              "forward_ms": 1000 * fwd, "forward_backward_ms": 1000 * fwd_bwd,
                                              "methods": rows}, indent=1))


if __name__ == "__main__":
    main()
