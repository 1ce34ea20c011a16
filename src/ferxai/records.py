"""Run records: what each experiment ran with and what it produced, in one place.

Per experiment, ``results/runs/<experiment>.json`` (``write_record``): its name, dataset, model,
the resolved configuration and its hash, the git commit of the checkout, the test metrics of
``eval/test_summary.json``, every row of ``assess/scores.csv``, the paths of its outputs and a
status saying what is missing or failed. Across experiments (``write_runs``):

    results/runs.csv         one row per experiment (RUN_COLUMNS, then test/<metric> columns, then
                             path/<output> columns)
    results/runs_scores.csv  one row per (experiment, method, condition, metric): experiment,
                             config_hash and the columns of that experiment's scores.csv

Scores are a long companion table rather than ``score/<condition>/<method>/<metric>`` columns of
runs.csv: the default configuration alone would make 34 methods x 16 metrics = 544 mean columns
(three times that with the interval bounds, which a mean must not be read without), experiments
can score different methods and metrics so a wide table would be mostly blanks whose columns change
whenever any experiment's configuration does, and a long table is what pandas or SQL pivot from
(``pivot_table(index="experiment", columns=["condition", "method", "metric"], values="mean")``).
MLflow (``ferxai.tracking``), which stores metrics as key/value pairs anyway, gets the wide keys.

An experiment is never dropped: one whose test metrics or scores are missing has ``status``
"incomplete" and names them in ``missing``; one whose methods failed (``explain.on_error: record``)
has "methods failed" and lists them in ``failed_methods`` (the reasons are in runs_scores.csv).
In the workflow the record's inputs are the files it reads, so they exist when it runs; a record
built by hand (``build_record``) from a partial results tree says what is absent.

Stdlib only at import: the Snakefile calls ``resolved_config`` on every ``snakemake`` call.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

RECORDS_DIR = "results/runs"
RUNS_CSV = "results/runs.csv"
RUN_SCORES_CSV = "results/runs_scores.csv"
MLFLOW_RECEIPT = "results/runs_mlflow.json"  # the MLflow run of every experiment (ferxai.tracking)

# The identifying and status columns of runs.csv, in order; test/<metric> and path/<output> follow.
RUN_COLUMNS = ("experiment", "dataset", "model", "arch", "model_from", "config_hash", "git_commit", "git_dirty",
               "status", "missing", "scores_status", "failed_methods", "scores")
# The outputs whose paths a record lists, in order (path/<name> columns); "" where not made.
PATHS = ("model", "test_summary", "predictions", "eval_plots", "explain_store", "explain_dir", "scores",
         "scores_store", "assess_dir", "record")
# The files among them a record is built from (the rule's inputs), which must exist; the others are
# the folders they are in and files written beside them, possibly later (the evaluation plots).
BUILT_FROM = ("model", "test_summary", "predictions", "explain_store", "scores")
UNKNOWN = "unknown"

__all__ = ["BUILT_FROM", "GitState", "MLFLOW_RECEIPT", "PATHS", "RECORDS_DIR", "RUNS_CSV", "RUN_COLUMNS", "RUN_SCORES_CSV", "build_record",
           "config_hash", "experiment_paths", "git_state", "read_record", "record_experiment", "record_file",
           "resolved_config", "run_row", "test_metrics", "write_record", "write_runs"]


def record_file(experiment: str) -> str:
    return f"{RECORDS_DIR}/{experiment}.json"


def resolved_config(config: Mapping[str, Any], experiment: str) -> dict[str, Any]:
    """Everything in the configuration that decides `experiment`'s results, resolved.

    Covered: the experiment's own entry (``experiments.<name>``); what ``ferxai.config.
    experiment_settings`` resolves from it (dataset and model names, the model's entry, the
    training settings with the experiment's overrides merged in, ``model_from`` and any other
    cross reference it resolves); the dataset's entry (``datasets.<dataset>``: format, adapter
    options, splits); and the ``evaluate``, ``explain`` and ``assess`` settings with every unset key
    filled from ferxai.settings, methods as ``ferxai.config.explain_methods`` and metrics as
    ``ferxai.config.assess_metrics`` resolve them (``assess`` is None when the section is absent:
    nothing is scored).

    `config` is the configuration as the workflow holds it, after config/schema.yaml's defaults
    were filled in (Snakemake's ``validate``), so writing a default out does not change the hash.

    Not covered: ``resources`` (threads, memory, GPUs: where jobs run, not what they compute),
    other experiments, datasets and models, file paths, and the code (the record's git commit and
    the rules' code fingerprints cover that). The checkpoint's own ``config_hash`` (in
    test_summary.json) covers only the model and training settings.
    """
    from ferxai.config import assess_metrics, experiment_settings, explain_methods
    from ferxai.settings import AssessSettings, EvaluateSettings, ExplainSettings

    settings = experiment_settings(config, experiment)
    explain = ExplainSettings.from_dict(config.get("explain")).to_dict()
    explain["methods"] = explain_methods(config)
    assess = None
    if "assess" in config:
        assess = AssessSettings.from_dict(config.get("assess")).to_dict()
        assess["metrics"] = assess_metrics(config)
    resolved = {
        "experiment": json.loads(json.dumps(config["experiments"][experiment], default=str)),
        **settings,
        "dataset_config": config["datasets"][settings["dataset"]],
        "evaluate": EvaluateSettings.from_dict(config.get("evaluate")).to_dict(),
        "explain": explain,
        "assess": assess,
    }
    # plain JSON values (tuples as lists), so the param Snakemake records equals the record's copy
    return json.loads(json.dumps(resolved, default=str))


def config_hash(resolved: Mapping[str, Any]) -> str:
    """The hash of a `resolved_config`: 16 hex digits of SHA-256 over its key-sorted JSON."""
    from ferxai.settings import config_hash as settings_hash

    return settings_hash(resolved)


def experiment_paths(experiment: str, inputs: Mapping[str, str]) -> dict[str, str]:
    """The output paths of a record (PATHS): the files it was built from (`inputs`: model,
    test_summary, predictions, and where the configuration makes them explain_store, scores),
    their folders and the files written beside them; "" for what this experiment does not make."""
    root = f"results/{experiment}"
    paths = {name: "" for name in PATHS}
    paths.update({k: str(v) for k, v in inputs.items() if k in PATHS})
    if paths["test_summary"]:
        paths["eval_plots"] = f"{root}/eval/plots"
    if paths["explain_store"]:
        paths["explain_dir"] = f"{root}/explain"
    if paths["scores"]:
        paths["scores_store"] = f"{root}/assess/scores.zarr"
        paths["assess_dir"] = f"{root}/assess"
    paths["record"] = record_file(experiment)
    return paths


@dataclass(frozen=True)
class GitState:
    """The checkout's commit ("unknown" outside a git repository) and whether tracked files differ
    from it (None: not known, e.g. git is not installed)."""

    commit: str = UNKNOWN
    dirty: bool | None = None


_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")


def _git_dir(start: Path) -> tuple[Path, Path] | None:
    """(work tree, git dir) of the repository holding `start`: a `.git` folder, or a `.git` file
    (``gitdir: ...``) as worktrees and submodules have."""
    for folder in (start, *start.parents):
        dotgit = folder / ".git"
        if dotgit.is_dir():
            return folder, dotgit
        if dotgit.is_file():
            text = dotgit.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:"):].strip())
                return folder, (target if target.is_absolute() else folder / target)
    return None


def _head_commit(gitdir: Path) -> str | None:
    """HEAD's commit read from the repository's files (loose ref, then packed-refs), or None."""
    try:
        head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head if _SHA.fullmatch(head) else None
        ref = head[len("ref:"):].strip()
        common = gitdir
        if (gitdir / "commondir").is_file():  # a linked worktree: refs live in the main repository
            common = gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()
        for base in (gitdir, common):
            loose = base / ref
            if loose.is_file():
                sha = loose.read_text(encoding="utf-8").strip()
                return sha if _SHA.fullmatch(sha) else None
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                sha, _, name = line.partition(" ")
                if name.strip() == ref and _SHA.fullmatch(sha):
                    return sha
    except OSError:
        return None
    return None  # an unborn branch: no commit yet


def _git(worktree: Path, *args: str) -> str | None:
    """Output of ``git args`` in `worktree`, or None when git is missing or fails. With
    --no-optional-locks: a status must not take index.lock from someone committing meanwhile."""
    try:
        proc = subprocess.run(["git", "--no-optional-locks", "-C", str(worktree), *args], capture_output=True,
                              text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def git_state(start: str | os.PathLike[str]) -> GitState:
    """The commit of the git checkout holding `start`, read from its .git files (no git program
    needed), else from ``git rev-parse HEAD``; and whether tracked files have uncommitted changes
    (``git status``, untracked files not counted; None without git). Outside a repository:
    commit "unknown", dirty None."""
    found = _git_dir(Path(start).resolve())
    if found is None:
        return GitState()
    worktree, gitdir = found
    commit = _head_commit(gitdir)
    if commit is None:
        out = _git(worktree, "rev-parse", "--verify", "HEAD")
        commit = out.strip() if out and _SHA.fullmatch(out.strip()) else UNKNOWN
    status = _git(worktree, "status", "--porcelain", "--untracked-files=no")
    return GitState(commit, None if status is None else bool(status.strip()))


def test_metrics(summary: Mapping[str, Any]) -> dict[str, float | int]:
    """The numeric top-level values of a test_summary.json (accuracy, macro_f1, macro_precision,
    macro_recall, weighted_f1, num_samples, the checkpoint's epoch; for images without classes
    n and mean_confidence), in the file's order. Per-class values stay in the file."""
    return {key: value for key, value in summary.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)}


def _read_scores(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def build_record(experiment: str, resolved: Mapping[str, Any], paths: Mapping[str, str],
                 git: GitState = GitState(), root: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """The record of one experiment from its files (`paths` as `experiment_paths` gives them,
    relative to `root`). A file it is built from (BUILT_FROM) that the configuration makes (its
    path is not "") but that is absent is named in ``missing`` and makes the status "incomplete";
    methods whose scores say "failed" are listed with their reason and make it "methods failed"."""
    root = Path(root)
    missing = [name for name in BUILT_FROM if paths.get(name) and not (root / paths[name]).exists()]
    metrics: dict[str, Any] = {}
    if paths.get("test_summary") and "test_summary" not in missing:
        metrics = test_metrics(json.loads((root / paths["test_summary"]).read_text(encoding="utf-8")))
    scores: list[dict[str, str]] = []
    if not paths.get("scores"):
        scores_status = "not configured"
    elif "scores" in missing:
        scores_status = "missing"
    else:
        scores = _read_scores(root / paths["scores"])
        scores_status = "ok"
    failed: dict[str, str] = {}
    for row in scores:
        if row.get("status") == "failed":
            failed.setdefault(row["method"], row.get("reason", ""))
    if failed:
        scores_status = "methods failed"
    status = "incomplete" if missing else "methods failed" if failed else "ok"
    return {
        "experiment": experiment,
        "dataset": resolved["dataset"],
        "model": resolved["model_name"],
        "arch": resolved["model"]["arch"],
        "model_from": resolved.get("model_from") or "",
        "config_hash": config_hash(resolved),
        "git_commit": git.commit,
        "git_dirty": git.dirty,
        "status": status,
        "missing": missing,
        "scores_status": scores_status,
        "failed_methods": failed,
        "test": metrics,
        "scores": scores,
        "paths": dict(paths),
        "config": dict(resolved),
    }


def write_record(path: str | os.PathLike[str], record: Mapping[str, Any]) -> None:
    from ferxai.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(record, indent=1, sort_keys=True) + "\n")


def record_experiment(experiment: str, resolved: Mapping[str, Any], inputs: Mapping[str, str],
                      out: str | os.PathLike[str], checkout: str | os.PathLike[str]) -> dict[str, Any]:
    """Build `experiment`'s record from its files (`inputs`, named as in PATHS), with the git state
    of the checkout holding `checkout`, and write it to `out`."""
    import logging

    record = build_record(experiment, resolved, experiment_paths(experiment, inputs), git_state(checkout))
    write_record(out, record)
    logging.getLogger(__name__).info("%s: %s, config %s, commit %s, %d scores", experiment, record["status"],
                                     record["config_hash"], record["git_commit"], len(record["scores"]))
    return record


def read_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if value != value else repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join(map(str, value))
    if isinstance(value, Mapping):
        return ";".join(map(str, value))
    return str(value)


def _csv(columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(row.get(c)) for c in columns] for row in rows])
    return buffer.getvalue()


def run_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record as a runs.csv row: RUN_COLUMNS (``scores``: how many score rows it has; lists as
    ';'-joined names), test/<metric>, path/<output>."""
    row = {c: record.get(c) for c in RUN_COLUMNS}
    row["scores"] = len(record.get("scores") or [])
    row.update({f"test/{k}": v for k, v in (record.get("test") or {}).items()})
    row.update({f"path/{k}": record["paths"].get(k, "") for k in PATHS})
    return row


def write_runs(records: Sequence[Mapping[str, Any]], runs_csv: str | os.PathLike[str],
               scores_csv: str | os.PathLike[str]) -> None:
    """runs.csv (one row per record, in the given order) and runs_scores.csv (every score row of
    every record, prefixed by experiment and config_hash). Test-metric columns are the union over
    the records in first-seen order; a record without a value leaves its cell empty."""
    from ferxai.atomic import write_text_atomic

    names = [r["experiment"] for r in records]
    if len(set(names)) != len(names):
        raise ValueError(f"two records of one experiment: {sorted(n for n in set(names) if names.count(n) > 1)}")
    rows = [run_row(r) for r in records]
    tests = list(dict.fromkeys(f"test/{k}" for r in records for k in (r.get("test") or {})))
    write_text_atomic(runs_csv, _csv([*RUN_COLUMNS, *tests, *(f"path/{k}" for k in PATHS)], rows))
    score_columns = list(dict.fromkeys(k for r in records for s in r.get("scores") or [] for k in s))
    score_rows = [{"experiment": r["experiment"], "config_hash": r["config_hash"], **s}
                  for r in records for s in r.get("scores") or []]
    write_text_atomic(scores_csv, _csv(["experiment", "config_hash", *score_columns], score_rows))
