"""A tiny copy of the workflow in a temporary folder, run by the real snakemake (shared by DAG tests)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake"]

TINY = {
    "datasets": {
        "tiny": {
            "format": "synthetic",
            "options": {"n_per_class": 14, "size": 32, "seed": 1},
            "splits": {"val_fraction": 0.2, "test_fraction": 0.2},
        }
    },
    "models": {"cnn": {"arch": "fer_cnn", "input_size": 32, "channels": 1, "options": {"widths": [8, 16, 16]}}},
    "train": {"epochs": 2, "batch_size": 16, "device": "cpu"},
    "evaluate": {"batch_size": 64, "device": "cpu"},
    "experiments": {"tiny_cnn": {"dataset": "tiny", "model": "cnn"}},
    "explain": {
        "num_each": 1, "shards": 2, "device": "cpu",
        "preflight": {"batch_sizes": [2, 8], "memory_budget_mb": 2000, "min_seconds": 0.02},
        "methods": {"saliency": {}, "gradcam": {}},
    },
    "resources": {"train": {"gpu": 0, "threads": 1}, "evaluate": {"gpu": 0, "threads": 1},
                  "explain": {"gpu": 0, "threads": 1}},
}
EXPLAIN_RULES = {"select_samples", "explain_inputs", "preflight", "attribute", "gather_attributions",
                 "explanation_store", "method_grids"}


def make_workdir(tmp: Path, cfg: dict) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("Snakefile", "workflow", "config", "envs"):
        src = Path(REPO) / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp / name)
    write_config(tmp, cfg)
    return tmp


def write_config(workdir: Path, cfg: dict) -> None:
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(cfg))


def snakemake(workdir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    proc = subprocess.run([*SNAKEMAKE, "--cores", "1", *args], cwd=workdir, capture_output=True, text=True,
                          env=env)
    if proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def planned_rules(workdir: Path) -> set[str]:
    """Rules a dry run would execute (from its job-stats table), minus the `all` target."""
    out = snakemake(workdir, "--dry-run").stdout
    if "Nothing to be done" in out:
        return set()
    table = out.split("Job stats:", 1)[1].split("total", 1)[0]
    rules = set(re.findall(r"^(\w+)\s+\d+\s*$", table, flags=re.M))
    return rules - {"all", "job"}


def planned_jobs(workdir: Path) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry run would execute, minus the `all` target; "" for a job
    without wildcards (e.g. the cross-experiment run table)."""
    out = snakemake(workdir, "--dry-run").stdout
    jobs = []
    for rule, block in re.findall(r"^rule (\w+):\n((?:    .*\n?)*)", out, flags=re.M):
        if rule == "all":
            continue
        wildcards = re.search(r"^    wildcards: (.*)$", block, flags=re.M)
        jobs.append((rule, wildcards.group(1) if wildcards else ""))
    return sorted(jobs)


def current_config(workdir: Path) -> dict:
    return yaml.safe_load((workdir / "config" / "config.yaml").read_text())


def add_default_profile(workdir: Path) -> Path:
    """Copy profiles/default too, so that snakemake applies it as it does in a checkout
    (rerun-incomplete, keep-going). Not done by make_workdir: most DAG tests are about the
    workflow alone and must not depend on profile defaults."""
    shutil.copytree(Path(REPO) / "profiles" / "default", workdir / "profiles" / "default")
    return workdir


def finished_rules(snakemake_output: str) -> list[str]:
    """Rule names of the jobs a snakemake run reports as finished, in order (minus `all`)."""
    return [r for r in re.findall(r"Finished jobid: \d+ \(Rule: (\w+)\)", snakemake_output) if r != "all"]


def add_library(workdir: Path) -> Path:
    """Copy src/ (without bytecode) too, so the copy is self-contained like a clone: the workflow
    puts <workdir>/src first on PYTHONPATH, and tools that hash the library (DVC) find it."""
    shutil.copytree(Path(REPO) / "src", workdir / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    return workdir
