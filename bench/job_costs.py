"""Fixed cost against compute, per job kind, for a finished workflow run.

    .venv/bin/python bench/job_costs.py [--workdir .] [--repeats 3] [--json bench/results/job_costs.json]

Run after `make run` (or any `snakemake` run) in the same folder. For every rule it reads:
- wall time per job: Snakemake's `benchmark:` files (benchmarks/**.tsv, column `s`);
- compute of the explanation jobs: the seconds the attribution calls took (the "computed N
  images in S s" line of each shard job's log) and the timed repetitions of the batch-size search
  (`timed_seconds` of each candidate in preflight/<method>.json; its set-up and warm-up call count
  as fixed cost);
- fixed cost measured here: a fresh interpreter importing what the rule's script imports (for the
  attribution rules also the method's own module) and, for rules that run a model, loading the
  checkpoint, timed from outside the process (median of `--repeats`).
Then the explanation stage's share of job time spent computing attributions: sum of compute over
sum of wall of every explanation job (select_samples to method_grids). The scoring jobs
(assess_*) are reported likewise, their compute being the metric calls each job logged.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import re
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXPLAIN_RULES = ("select_samples", "explain_inputs", "preflight", "attribute", "gather_attributions",
                 "explanation_store", "method_grids")
ASSESS_RULES = ("assess_localisation", "assess_complexity", "assess_preflight", "assess_faithfulness",
                "assess_sensitivity", "assess_gather", "assess_randomisation", "assess_robustness", "assess_scores")
MODEL_RULES = {"train", "evaluate", "explain_inputs", "preflight", "attribute", "import_checkpoint",
               "assess_preflight", "assess_faithfulness", "assess_sensitivity", "assess_randomisation"}
SCRIPT_OF = {"explanation_store": "explanation_store.py", "method_grids": "method_grids.py",
             "assess_localisation": "assess_maps.py", "assess_complexity": "assess_maps.py"}


def rule_of(path: Path, root: Path) -> tuple[str, dict[str, str]]:
    """Rule name and wildcards of a benchmark file, from the layout in workflow/rules/*.smk."""
    parts = path.relative_to(root).with_suffix("").parts
    if len(parts) == 1:  # runs_table
        return parts[0], {}
    if parts[0] == "data":
        return parts[-1], {"dataset": parts[1]}
    experiment = parts[0]
    if parts[1] == "assess":  # workflow/rules/assess.smk
        if len(parts) == 3:
            return f"assess_{parts[2]}", {"experiment": experiment}
        if len(parts) == 4:
            return "assess_randomisation", {"experiment": experiment, "method": parts[2]}
        family, _, shard = parts[4].partition("-")
        return f"assess_{family}", {"experiment": experiment, "condition": parts[2], "method": parts[3],
                                    "shard": shard}
    if len(parts) == 2:
        return parts[1], {"experiment": experiment}
    if len(parts) == 3:
        return {"store": "explanation_store"}.get(parts[2], parts[2]), {"experiment": experiment}
    if parts[2] == "preflight":
        return "preflight", {"experiment": experiment, "method": parts[3]}
    if len(parts) == 4:
        return {"grids": "method_grids", "gather": "gather_attributions"}[parts[3]], {
            "experiment": experiment, "condition": parts[2]}
    condition, method, leaf = parts[2], parts[3], parts[4]
    return "attribute", {"experiment": experiment, "condition": condition, "method": method,
                         "shard": leaf.split("-", 1)[1]}


def wall_seconds(tsv: Path) -> float:
    with tsv.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return float(rows[-1]["s"])


def compute_seconds(workdir: Path, rule: str, wc: dict[str, str]) -> float | None:
    explain = workdir / "results" / wc.get("experiment", "") / "explain"
    logs = workdir / "logs" / wc.get("experiment", "") / "explain"
    assess_logs = workdir / "logs" / wc.get("experiment", "") / "assess"
    if rule in ("assess_faithfulness", "assess_sensitivity"):
        family = rule.split("_", 1)[1]
        return _logged_metrics(assess_logs / wc["condition"] / wc["method"] / f"{family}-{wc['shard']}.log")
    if rule == "assess_randomisation":
        return _logged_metrics(assess_logs / wc["method"] / "randomisation.log")
    if rule == "attribute":
        return _logged_compute(logs / wc["condition"] / wc["method"] / f"shard-{wc['shard']}.log")
    if rule == "preflight":
        # the timed repetitions of the batch-size search count as computing attributions; the
        # first candidate's set-up (library import, hooks) and warm-up call count as fixed cost
        record = json.loads((explain / "preflight" / f"{wc['method']}.json").read_text())
        search = sum(float(c.get("timed_seconds", 0.0)) for c in record["candidates"])
        return search + (_logged_compute(logs / "preflight" / f"{wc['method']}.log") or 0.0)
    return None


COMPUTED = re.compile(r"shard \d+: computed \d+ images in ([0-9.]+) s")


def _logged_compute(log: Path) -> float | None:
    """Seconds of the attribution calls, as the shard job logged them (ferxai.explain.pipeline)."""
    if not log.exists():
        return None
    found = COMPUTED.findall(log.read_text(errors="replace"))
    return float(found[-1]) if found else None


METRIC_TIME = re.compile(r"(?:: \d+ images in|, \d+ steps, in) ([0-9.]+) s")


def _logged_metrics(log: Path) -> float | None:
    """Seconds of the metric calls a scoring job logged (ferxai.assess.pipeline), summed."""
    if not log.exists():
        return None
    found = METRIC_TIME.findall(log.read_text(errors="replace"))
    return sum(map(float, found)) if found else 0.0


def script_imports(script: Path) -> list[str]:
    tree = ast.parse(script.read_text())
    return [ast.unparse(node) for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]


def fixed_cost(lines: list[str], repeats: int) -> float:
    code = "\n".join(lines)
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=REPO)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("."))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    workdir = args.workdir.resolve()
    sys.path.insert(0, str(REPO / "src"))
    import yaml

    from ferxai.explain import catalog
    from ferxai.settings import ExplainSettings

    config = yaml.safe_load((workdir / "config" / "config.yaml").read_text())
    explain = ExplainSettings.from_dict(config.get("explain"))
    labels = {label: (entry or {}).get("method", label) for label, entry in explain.methods.items()}

    jobs: dict[str, list[tuple[float, float | None, dict]]] = defaultdict(list)
    root = workdir / "benchmarks"
    for tsv in sorted(root.rglob("*.tsv")):
        rule, wc = rule_of(tsv, root)
        jobs[rule].append((wall_seconds(tsv), compute_seconds(workdir, rule, wc), wc))

    checkpoint = next((workdir / "results").glob("*/model/best.pt"), None)
    load = ["from ferxai.models import load_checkpoint", f"load_checkpoint({str(checkpoint)!r})"]
    rows = []
    for rule, entries in sorted(jobs.items()):
        script = REPO / "workflow" / "scripts" / SCRIPT_OF.get(rule, f"{rule}.py")
        lines = script_imports(script) if script.exists() else []
        if rule in MODEL_RULES and checkpoint is not None:
            lines += load
        if rule in ("preflight", "attribute"):
            # each method's own library: one measurement per library, weighted by its jobs
            by_library: dict[str, float] = {}
            fixed_per_job = []
            for _, _, wc in entries:
                method = catalog.get(labels[wc["method"]])
                library = method.library or "ferxai"
                if library not in by_library:
                    module = method.implementation.split(":")[0]
                    by_library[library] = fixed_cost(lines + [f"import {module}"], args.repeats)
                fixed_per_job.append(by_library[library])
            fixed = statistics.median(fixed_per_job)
        else:
            fixed = fixed_cost(lines, args.repeats) if lines else None
        walls = [w for w, _, _ in entries]
        computes = [c for _, c, _ in entries if c is not None]
        rows.append({"rule": rule, "jobs": len(entries), "wall_median_s": statistics.median(walls),
                     "wall_total_s": sum(walls), "fixed_median_s": fixed,
                     "compute_median_s": statistics.median(computes) if computes else None,
                     "compute_total_s": sum(computes) if computes else None})

    assess_rows = [r for r in rows if r["rule"] in ASSESS_RULES]
    explain_rows = [r for r in rows if r["rule"] in EXPLAIN_RULES]
    wall = sum(r["wall_total_s"] for r in explain_rows)
    compute = sum(r["compute_total_s"] or 0.0 for r in explain_rows)
    summary = {"explain_jobs": sum(r["jobs"] for r in explain_rows), "explain_wall_total_s": wall,
               "explain_compute_total_s": compute, "compute_share": compute / wall if wall else None,
               "assess_jobs": sum(r["jobs"] for r in assess_rows),
               "assess_wall_total_s": sum(r["wall_total_s"] for r in assess_rows),
               "assess_compute_total_s": sum(r["compute_total_s"] or 0.0 for r in assess_rows),
               "jobs": sum(r["jobs"] for r in rows)}

    print("| rule | jobs | wall per job (median s) | fixed cost (s) | compute per job (median s) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        fixed = "" if r["fixed_median_s"] is None else f"{r['fixed_median_s']:.2f}"
        comp = "" if r["compute_median_s"] is None else f"{r['compute_median_s']:.2f}"
        print(f"| {r['rule']} | {r['jobs']} | {r['wall_median_s']:.2f} | {fixed} | {comp} |")
    print(f"\nexplanation stage: {summary['explain_jobs']} jobs, {wall:.1f} s of job wall time, "
          f"{compute:.1f} s computing attributions ({100 * (summary['compute_share'] or 0):.0f} %)")
    if assess_rows:
        print(f"scoring stage: {summary['assess_jobs']} jobs, {summary['assess_wall_total_s']:.1f} s of job wall "
              f"time, {summary['assess_compute_total_s']:.1f} s in metric calls")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"rows": rows, "summary": summary}, indent=1) + "\n")


if __name__ == "__main__":
    main()
