"""Small helpers for the DVC pipeline (dvc.yaml) that runs the Snakemake workflow stage by stage.

``explain-targets EXPERIMENT``: print the files the explain stage asks Snakemake for, i.e. the
explanation part of the workflow's ``all`` target for one experiment (store.zarr, one grids
folder per noise condition, one gallery per condition and method). DVC's templating cannot loop
over the configured conditions and methods, so the stage's command gets them from here.

``assess-targets EXPERIMENT``: likewise the scorecard's files (scores.csv, scores.json,
metric_reliability.csv and the figures the configuration makes), which ask for every scoring job.

``record-targets``: the run record of every configured experiment (results/runs/<experiment>.json),
which the DVC stage of the runs tables marks up to date before building them.

``epoch-table LOG CSV``: write the JSON-lines training log as a CSV table, one row per epoch,
because ``dvc plots`` reads JSON, YAML, CSV and TSV but not JSON lines.

    python -m ferxai.stage_files explain-targets synthetic_fer_cnn [--config config/config.yaml]
    python -m ferxai.stage_files epoch-table results/x/model/train_log.jsonl results/x/model/train_log.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["assess_figures", "assess_targets", "explain_targets", "write_epoch_table"]


def explain_targets(config: Mapping[str, Any], experiment: str) -> list[str]:
    """Explanation outputs of `experiment` that the workflow's `all` target asks for.

    Mirrors the explanation part of ``experiment_targets`` in workflow/rules/common.smk (unset
    keys as ferxai.settings.ExplainSettings fills them); no methods configured means no targets.
    """
    if experiment not in (config.get("experiments") or {}):
        raise KeyError(f"experiment {experiment!r} is not in the configuration")
    from ferxai.settings import ExplainSettings

    explain = ExplainSettings.from_dict(config.get("explain"))
    methods = list(explain.methods)
    # the model-only experiments of a decorrelated one (ferxai.config.expand_decorrelated)
    if not methods or (config["experiments"][experiment] or {}).get("model_for"):
        return []
    root = f"results/{experiment}/explain"
    targets = [f"{root}/store.zarr"]
    for condition in explain.conditions:
        targets.append(f"{root}/{condition}/grids")
        targets += [f"{root}/{condition}/{method}/gallery.png" for method in methods]
    return targets


def assess_targets(config: Mapping[str, Any], experiment: str) -> list[str]:
    """The scorecard of `experiment` (workflow/rules/assess.smk), which asks for every scoring job:
    scores.csv, metric_reliability.csv and the figures the configuration makes. None when no
    method is explained, or no metric and no randomisation check is configured."""
    if experiment not in (config.get("experiments") or {}):
        raise KeyError(f"experiment {experiment!r} is not in the configuration")
    from ferxai.settings import AssessSettings, ExplainSettings

    explain = ExplainSettings.from_dict(config.get("explain"))
    assess = AssessSettings.from_dict(config.get("assess"))
    # no `assess:` section, no scoring (a configuration written before the stage existed)
    if "assess" not in config or not explain_targets(config, experiment) or not (
            assess.metrics or assess.randomisation.images > 0):
        return []
    root = f"results/{experiment}/assess"
    from ferxai.config import assess_metrics

    zoom = [f"{root}/mask_zoom.png"] if any(spec["family"] == "localisation"
                                            for spec in assess_metrics(config).values()) else []
    return ([f"{root}/scores.csv", f"results/{experiment}/scores.json", f"{root}/metric_reliability.csv"]
            + [f"{root}/{f}.png" for f in assess_figures(config)] + zoom)


def assess_figures(config: Mapping[str, Any]) -> list[str]:
    """Names of the scorecard's figures (ferxai.plots.assess) this configuration makes."""
    from ferxai.settings import AssessSettings, ExplainSettings

    figures = ["leaderboard", "faithfulness_vs_cost"]
    if AssessSettings.from_dict(config.get("assess")).randomisation.images > 0:
        figures.append("sanity_checks")
    if len(ExplainSettings.from_dict(config.get("explain")).conditions) > 1:
        figures.append("robustness")
    return figures


def write_epoch_table(log: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """One CSV row per record of a training log (``train_log.jsonl``), columns in log order."""
    from ferxai.plots.evaluation import read_train_log

    records = read_train_log(log)
    if not records:
        raise ValueError(f"{log}: no epochs logged")
    columns = list(dict.fromkeys(key for record in records for key in record))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(records)
    return out


def _print_targets(args: argparse.Namespace, targets_of: Any, nothing: str) -> int:
    """Print the experiment's targets on one line, or say why there are none and return 1
    (printing nothing would make `snakemake $(...)` build the default target instead)."""
    import yaml

    with open(args.config, encoding="utf-8") as handle:
        config = yaml.safe_load(handle) or {}
    try:
        found = targets_of(config, args.experiment)
    except KeyError as err:
        print(f"{args.config}: {err.args[0]}", file=sys.stderr)
        return 1
    if not found:
        print(f"{args.config}: {nothing}", file=sys.stderr)
        return 1
    print(" ".join(found))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ferxai.stage_files", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    targets = sub.add_parser("explain-targets", help="print one experiment's explanation targets")
    targets.add_argument("experiment")
    targets.add_argument("--config", default="config/config.yaml")
    scored = sub.add_parser("assess-targets", help="print one experiment's scorecard targets")
    scored.add_argument("experiment")
    scored.add_argument("--config", default="config/config.yaml")
    records = sub.add_parser("record-targets", help="print every experiment's run record")
    records.add_argument("--config", default="config/config.yaml")
    table = sub.add_parser("epoch-table", help="write a training log (JSON lines) as CSV")
    table.add_argument("log")
    table.add_argument("csv")
    args = parser.parse_args(argv)

    if args.command == "assess-targets":
        return _print_targets(args, assess_targets, "nothing to score (explain.methods, and assess.metrics or "
                                                    "assess.randomisation.images)")
    if args.command == "record-targets":
        import yaml

        from ferxai.records import record_file

        with open(args.config, encoding="utf-8") as handle:
            experiments = (yaml.safe_load(handle) or {}).get("experiments") or {}
        if not experiments:
            print(f"{args.config}: no experiments", file=sys.stderr)
            return 1
        print(" ".join(record_file(e) for e in sorted(experiments)))
        return 0
    if args.command == "explain-targets":
        return _print_targets(args, explain_targets, "no explanation methods configured (explain.methods)")
    write_epoch_table(args.log, args.csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
