"""The run's facts for the report: git commit, resolved config, package versions, the device each
training ran on, and the wall time per rule from the jobs' `benchmark:` files."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from ferxai.report.html import badge, para, pre, section, table, write_page

# Distributions whose versions decide the results (the pins of pyproject.toml, and the workflow's).
PACKAGES = ("torch", "torchvision", "numpy", "pandas", "captum", "zennit", "shap", "lime", "scikit-image",
            "zarr", "matplotlib", "pillow", "snakemake")
DEVICE_LINE = re.compile(r"training on (\S+) \(amp=(\w+)\)")


def git_commit(root: str | os.PathLike) -> str:
    """HEAD of the checkout at `root` ("+ uncommitted changes" when the tree differs from it),
    or a sentence saying why there is none."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", os.fspath(root), *args], capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    try:
        if git("rev-parse", "--show-toplevel") != os.path.realpath(root):
            return "not a git checkout"
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.SubprocessError):
        return "not a git checkout"
    return commit + (" + uncommitted changes" if dirty else "")


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str]:
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def training_device(train_log: str | os.PathLike) -> str:
    """The device a training job reported it used (ferxai.train logs "training on <device>")."""
    try:
        text = Path(train_log).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"unknown ({train_log} is missing)"
    found = DEVICE_LINE.search(text)
    return f"{found.group(1)} (mixed precision {'on' if found.group(2) == 'True' else 'off'})" if found else \
        f"unknown (no device line in {train_log})"


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"\{([^{}]+)\}", pattern)
    regex = "".join(re.escape(p) if i % 2 == 0 else "[^/]+" for i, p in enumerate(parts))
    return re.compile(regex + r"\Z")


@dataclass
class RuleTime:
    rule: str
    jobs: int
    total_s: float
    max_s: float
    max_rss_mb: float


def rule_times(root: str | os.PathLike, patterns: Mapping[str, str]) -> tuple[list[RuleTime], list[str]]:
    """Wall time per rule from every benchmark file under `root` (`patterns`: rule -> its
    `benchmark:` path pattern), slowest first; and the files no pattern matched."""
    regexes = [(rule, _pattern_regex(p), len(re.sub(r"\{[^{}]+\}", "", p))) for rule, p in patterns.items()]
    times: dict[str, list[tuple[float, float]]] = {}
    unmatched = []
    for path in sorted(Path(root).rglob("*.tsv")):
        name = path.as_posix()
        matches = sorted((-literal, rule) for rule, rx, literal in regexes if rx.match(name))
        if not matches:
            unmatched.append(name)
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        if len(lines) < 2:
            raise ValueError(f"{name}: benchmark file without a data row")
        header, values = lines[0].split("\t"), lines[-1].split("\t")
        row = dict(zip(header, values))
        try:
            seconds = float(row["s"])
            rss = float(row.get("max_rss", "nan")) if row.get("max_rss", "-") != "-" else float("nan")
        except (KeyError, ValueError) as err:
            raise ValueError(f"{name}: unreadable benchmark row ({err})") from None
        times.setdefault(matches[0][1], []).append((seconds, rss))
    out = [RuleTime(rule, len(v), sum(s for s, _ in v), max(s for s, _ in v), max(r for _, r in v))
           for rule, v in times.items()]
    return sorted(out, key=lambda t: -t.total_s), unmatched


def experiment_rows(summaries: Mapping[str, str], not_scored: Mapping[str, str | None]) -> list[tuple]:
    """(experiment, accuracy, macro-F1, scores) per experiment; scores is where they are, or why
    there are none: an experiment without scores is listed as such, never dropped."""
    from ferxai.report.experiment import read_json

    rows = []
    for name, path in summaries.items():
        found = read_json(path)
        metrics = [float(found[k]) if isinstance(found.get(k), (int, float)) else "no classes"
                   for k in ("accuracy", "macro_f1")]
        reason = not_scored[name]
        rows.append((name, *metrics, badge(True, f"results/{name}/assess/scores.csv") if reason is None
                     else badge(False, f"none: {reason}")))
    return rows


def facts_page(path: str | os.PathLike, config: Mapping[str, Any], commit: str, train_logs: Mapping[str, str],
               benchmarks: str | os.PathLike, patterns: Mapping[str, str], summaries: Mapping[str, str],
               not_scored: Mapping[str, str | None]) -> None:
    """`summaries`: experiment -> its test_summary.json; `not_scored`: experiment -> why it has no
    scores, or None."""
    times, unmatched = rule_times(benchmarks, patterns)
    total = sum(t.total_s for t in times)
    parts = [
        section("Source", table(["what", "value"], [
            ("git commit", commit),
            ("python", f"{platform.python_version()} ({platform.python_implementation()})"),
            ("machine", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores"),
        ])),
        section("Device", table(["experiment", "training ran on", "configured (train / evaluate / explain)"], [
            (name, training_device(log) if log else "not trained here (imported or model_from)",
             " / ".join(str((config.get(stage) or {}).get("device", "auto")) for stage in ("train", "evaluate", "explain")))
            for name, log in train_logs.items()])),
        section("Experiments", table(["experiment", "test accuracy", "test macro-F1", "explanation scores"],
                                     experiment_rows(summaries, not_scored))),
        section("Wall time per rule",
                para(f"From the benchmark files under {benchmarks}/ (one per job): {total:.0f} s of job time "
                     "in all, slowest rule first. Jobs that ran in parallel overlap, so the run took less."),
                table(["rule", "jobs", "total s", "slowest job s", "max RSS MB"],
                      [(t.rule, t.jobs, round(t.total_s, 1), round(t.max_s, 1), round(t.max_rss_mb, 0))
                       for t in times], empty="no benchmark files found"),
                para("Files no rule's benchmark pattern matches (left out above): " + ", ".join(unmatched))
                if unmatched else ""),
        section("Package versions", table(["package", "version"], package_versions().items())),
        section("Resolved configuration", para("config/config.yaml with any --configfile and --config "
                                               "overrides applied, as the jobs saw it."),
                pre(yaml.safe_dump(dict(config), sort_keys=False, default_flow_style=None, width=100))),
    ]
    write_page(path, "Run facts", *parts)
