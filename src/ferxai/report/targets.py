"""The report's own items (workflow/rules/report.smk) and whether an experiment is scored, from
the configuration alone (no Snakemake): the rules, the `report` DVC stage and the tests share them.

    python -m ferxai.report.targets [--config config/config.yaml]   # print the report items
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

ROOT = "report"  # beside results/, so that DVC's report stage can own it (results/ is its dependency)
RUN_FACTS = f"{ROOT}/run_facts.html"


def dataset_items(dataset: str) -> dict[str, str]:
    root = f"{ROOT}/data/{dataset}"
    return {"counts": f"{root}/class_counts.png", "samples": f"{root}/samples.png",
            "findings": f"{root}/findings.html"}


def experiment_items(experiment: str) -> dict[str, str]:
    root = f"{ROOT}/experiments/{experiment}"
    return {"per_class": f"{root}/per_class.png", "settings": f"{root}/training_settings.html",
            "methods": f"{root}/methods.html", "reliability": f"{root}/metric_reliability.html"}


def conditions_figure(experiment: str) -> str:
    return f"{ROOT}/experiments/{experiment}/conditions.png"


def condition_items(config: Mapping[str, Any], experiment: str) -> list[str]:
    """The figure of one image under every noise condition, for an explained experiment with two
    or more explain.conditions; [] otherwise."""
    from ferxai.config import explained
    from ferxai.settings import ExplainSettings

    explain = ExplainSettings.from_dict(config.get("explain"))
    if len(explain.conditions) < 2 or not explain.methods or not explained(config, experiment):
        return []
    return [conditions_figure(experiment)]


def not_scored(config: Mapping[str, Any], experiment: str) -> str | None:
    """Why `experiment`'s explanations have no scores, or None when they are scored."""
    from ferxai.settings import AssessSettings, ExplainSettings
    from ferxai.stage_files import assess_targets

    if assess_targets(config, experiment):
        return None
    if model_for := ((config.get("experiments") or {}).get(experiment) or {}).get("model_for"):
        return (f"this is the model that explains method {model_for['method']!r} of experiment "
                f"{model_for['experiment']!r} (decorrelate); it explains nothing itself.")
    if not ExplainSettings.from_dict(config.get("explain")).methods:
        return "no explanation method is configured (explain.methods)."
    if "assess" not in config:
        return "the configuration has no assess section, so no scoring job ran."
    assess = AssessSettings.from_dict(config.get("assess"))
    if not (assess.metrics or assess.randomisation.images > 0):
        return "assess configures no metric and no randomisation check."
    return "the configuration asks for no scores."


def report_targets(config: Mapping[str, Any]) -> list[str]:
    targets = [f for d in sorted(config.get("datasets") or {}) for f in dataset_items(d).values()]
    from ferxai.config import explained

    targets += [f for e in sorted(config.get("experiments") or {}) if explained(config, e)
                for f in experiment_items(e).values()]
    targets += [f for e in sorted(config.get("experiments") or {}) for f in condition_items(config, e)]
    return targets + [RUN_FACTS]


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args(argv)
    with open(args.config, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    print(" ".join(report_targets(config)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
