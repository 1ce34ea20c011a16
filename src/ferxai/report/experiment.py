"""Report items of an experiment: per-class precision/recall/F1, the resolved training settings,
and every explanation method's status (explained, failed and why, scored or not)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ferxai.report.data import read_rows
from ferxai.report.html import Raw, badge, esc, para, section, table, write_page

PER_CLASS_METRICS = ("precision", "recall", "f1")
METRIC_COLOURS = {"precision": "#4c72b0", "recall": "#dd8452", "f1": "#55a868"}


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        try:
            value = json.load(handle)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, found {type(value).__name__}")
    return value


def plot_per_class(summary: Mapping[str, Any], experiment: str, where: str = "test_summary.json") -> Figure:
    """Grouped bars of each class's precision, recall and F1 on the test split (support in the
    tick labels); the title has accuracy and macro-F1."""
    per_class = summary.get("per_class")
    fig = Figure(figsize=(7.5, 3.8), layout="constrained")
    ax = fig.add_subplot()
    if not per_class:  # a user's images without classes: predictions only
        ax.set_axis_off()
        ax.text(0.5, 0.5, f"experiment {experiment}: no classes, so no per-class scores", ha="center")
        return fig
    names = list(per_class)
    for name in names:
        missing = [k for k in (*PER_CLASS_METRICS, "support") if k not in per_class[name]]
        if missing:
            raise ValueError(f"{where}: per_class.{name} lacks {missing}")
    x = np.arange(len(names))
    width = 0.8 / len(PER_CLASS_METRICS)
    for k, metric in enumerate(PER_CLASS_METRICS):
        ax.bar(x + (k - 1) * width, [float(per_class[n][metric]) for n in names], width,
               label=metric, color=METRIC_COLOURS[metric])
    ax.set_xticks(x, [f"{n}\n(n={int(per_class[n]['support'])})" for n in names], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("score on the test split")
    ax.set_xlabel("true class (support)")
    ax.set_title(f"{experiment}: per-class precision, recall and F1 — accuracy "
                 f"{float(summary['accuracy']):.3f}, macro-F1 {float(summary['macro_f1']):.3f}", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(axis="y", alpha=0.3)
    return fig


def _flat(prefix: str, value: Any) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        return [item for k, v in value.items() for item in _flat(f"{prefix}.{k}" if prefix else str(k), v)]
    return [(prefix, json.dumps(value) if isinstance(value, (list, dict)) else value)]


def settings_page(path: str | os.PathLike, experiment: str, settings: Mapping[str, Any]) -> None:
    """The experiment's resolved settings (config defaults with its own overrides applied)."""
    model = settings.get("model") or {}
    if model.get("checkpoint"):
        how = f"imported from the checkpoint {model['checkpoint']}: not trained here, training settings unused."
    elif settings.get("model_from"):
        how = f"the model of experiment {settings['model_from']}: not trained here."
    else:
        how = "trained here with the settings below."
    parts = [para(f"Dataset {settings.get('dataset')}, model {settings.get('model_name', model.get('arch'))}: {how}"),
             section("Model", table(["setting", "value"], _flat("", model))),
             section("Training", table(["setting", "value"], _flat("", settings.get("train") or {})))]
    write_page(path, f"Experiment {experiment}: resolved training settings", *parts)


def method_status(methods: Mapping[str, Mapping[str, Any]], conditions: Sequence[str],
                  preflights: Mapping[str, str], attributions: Mapping[tuple[str, str], str],
                  scores_csv: str | None) -> list[dict[str, Any]]:
    """Per method: family, seconds per image, per condition ok or the reason it failed, and how
    its scores came out (None when the experiment is not scored)."""
    from ferxai.explain.shard_files import load_shard_meta

    scores: dict[str, list[dict[str, str]]] = {}
    if scores_csv is not None:
        for row in read_rows(scores_csv, ("method", "condition", "metric", "family", "status", "reason")):
            if row["family"] != "cost":
                scores.setdefault(row["method"], []).append(row)
    out = []
    for label, spec in methods.items():
        record = read_json(preflights[label])
        failures = {}
        family = model = ""
        for condition in conditions:
            meta = load_shard_meta(attributions[condition, label])
            family = family or str(meta.get("family", ""))
            model = model or str(meta.get("model", ""))
            if meta.get("failed"):
                failures[condition] = str(meta["failed"])
        rows = scores.get(label, [])
        out.append({
            "method": label, "registry": spec.get("method", label), "family": family, "model": model,
            "seconds_per_image": record.get("sec_per_image"), "preflight_failed": record.get("failed") or "",
            "failures": failures,
            "scores": None if scores_csv is None else {
                "ok": sum(r["status"] == "ok" for r in rows),
                "failed": sorted({r["reason"] for r in rows if r["status"] == "failed"}),
                "empty": sorted({f"{r['metric']} ({r['condition']})" for r in rows if r["status"] == "no values"}),
            },
        })
    return out


def methods_page(path: str | os.PathLike, experiment: str, status: Sequence[Mapping[str, Any]],
                 conditions: Sequence[str], not_scored: str | None) -> None:
    """Which methods failed and why, first; then every method's status per condition."""
    failed = [s for s in status if s["failures"] or s["preflight_failed"]]
    parts = []
    if not status:
        parts.append(para("No explanation method is configured (explain.methods), so nothing was explained."))
    elif failed:
        parts.append(f'<p>{badge(False, f"{len(failed)} of {len(status)} methods failed")} — the run kept going '
                     "(explain.on_error: record); their maps are blank, they are left out of the grids and "
                     "ranked nowhere.</p>")
        parts.append(table(["method", "condition", "reason"],
                           [(s["method"], c, r) for s in failed
                            for c, r in (s["failures"] or {conditions[0]: s["preflight_failed"]}).items()]))
    else:
        parts.append(f"<p>{badge(True, f'all {len(status)} methods explained every image')} under "
                     f"{', '.join(conditions)}.</p>")
    if not_scored:
        parts.append(f"<p>{badge(False, 'explanations not scored')} — {not_scored}</p>")
    rows = []
    for s in status:
        cells = [badge(c not in s["failures"], "ok" if c not in s["failures"] else "failed") for c in conditions]
        sc = s["scores"]
        if sc is None:
            scored = "not scored"
        elif sc["failed"]:
            scored = Raw(badge(False, "failed: " + "; ".join(sc["failed"])))
        else:
            scored = f"{sc['ok']} scores" + (f"; no values: {', '.join(sc['empty'])}" if sc["empty"] else "")
        seconds = s["seconds_per_image"]
        rows.append([s["method"], s["registry"], s["family"], *cells,
                     float(seconds) if isinstance(seconds, (int, float)) else "", scored, s.get("model", "")])
    if status:
        # the model column tells a decorrelated experiment's methods apart (explain.decorrelate)
        parts.append(section("Every method", table(["method", "catalog name", "family", *conditions,
                                                    "seconds / image", "scores", "model"], rows)))
    write_page(path, f"Experiment {experiment}: explanation methods that ran, failed or were not scored", *parts)


RELIABILITY_COLUMNS = ("metric", "condition", "family", "random_last", "random_beaten_by", "random_rank",
                       "edge_rank", "edge_beaten_by", "stability_tau")


def reliability_page(path: str | os.PathLike, experiment: str, reliability_csv: str | None,
                     not_scored: str | None) -> None:
    """How far to trust each explanation metric (assess/metric_reliability.csv): metrics that do
    not put the `random` control last first, then every metric."""
    title = f"Experiment {experiment}: how far each explanation metric can be trusted"
    if reliability_csv is None:
        write_page(path, title, f"<p>{badge(False, 'explanations not scored')} — {not_scored}</p>")
        return
    rows = read_rows(reliability_csv, RELIABILITY_COLUMNS)

    def share(text: str) -> str:
        return f"{float(text):.0%}" if text not in ("", "nan") else ""

    weak = [r for r in rows if r["random_last"] != "True"]
    parts = [para("A metric earns trust when it ranks the random control (seeded noise) below every method "
                  "that looks at the model, with separated intervals; when it does not rank edge (Sobel "
                  "magnitude of the image: structure, no model) near the top; and when its ordering of the "
                  "methods is stable under bootstrap resampling of the images (mean Kendall τ; 1 = always "
                  "the same order).")]
    if weak:
        parts.append(f"<p>{badge(False, f'{len(weak)} of {len(rows)} metrics do not put random last')}: "
                     f"{esc(', '.join(sorted({r['metric'] for r in weak})))}. Read their rankings with care.</p>")
    elif rows:
        parts.append(f"<p>{badge(True, f'all {len(rows)} metrics put random last')}</p>")
    parts.append(table(["metric", "condition", "family", "random last", "methods beating random", "random rank",
                        "edge rank", "methods beating edge", "stability τ"],
                       [(r["metric"], r["condition"], r["family"], r["random_last"], share(r["random_beaten_by"]),
                         r["random_rank"], r["edge_rank"], share(r["edge_beaten_by"]),
                         f"{float(r['stability_tau']):.2f}" if r["stability_tau"] not in ("", "nan") else "")
                        for r in rows], empty="no metric configured"))
    write_page(path, title, *parts)


def write_experiment_report(experiment: str, summary_json: str, settings: Mapping[str, Any],
                            methods: Mapping[str, Mapping[str, Any]], conditions: Sequence[str],
                            preflights: Mapping[str, str], attributions: Mapping[tuple[str, str], str],
                            scores_csv: str | None, not_scored: str | None,
                            per_class_png: str, settings_html: str, methods_html: str,
                            reliability_csv: str | None = None, reliability_html: str | None = None) -> None:
    from ferxai.plots.evaluation import save_figure

    save_figure(plot_per_class(read_json(summary_json), experiment, summary_json), per_class_png)
    settings_page(settings_html, experiment, settings)
    status = method_status(methods, conditions, preflights, attributions, scores_csv)
    methods_page(methods_html, experiment, status, conditions, not_scored)
    if reliability_html is not None:
        reliability_page(reliability_html, experiment, reliability_csv, not_scored)
