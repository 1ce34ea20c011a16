"""One metric of several experiments side by side, per method: the known-answer experiments
compare the same methods on the same images under two models (the shortcut model and the clean
one) or against two masks (the mark and the facial features).

    python -m ferxai.assess.compare --metric relevance_mass shortcut_fer_cnn_cues clean_fer_cnn_cues

reads `results/<experiment>/assess/<condition>/<method>/<metric>.csv` (the per-image files of the
scoring stage) and prints a Markdown table: per method, each experiment's mean with its 95 %
bootstrap interval (ferxai.assess.intervals), and, for the first two experiments, whether their
intervals are separated. Torch-free.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ferxai.assess.files import column, per_image_file, read_table
from ferxai.assess.intervals import Estimate, bootstrap_mean


def methods_of(root: str | os.PathLike, condition: str, metric: str) -> list[str]:
    """Methods with a per-image file of `metric` under `condition`, in name order."""
    base = Path(root) / condition
    return sorted(p.parent.name for p in base.glob(f"*/{metric}.csv")) if base.is_dir() else []


def compare(roots: Sequence[str | os.PathLike], metric: str, condition: str = "clean",
            methods: Sequence[str] | None = None, resamples: int = 1000, seed: int = 0
            ) -> dict[str, list[Estimate | None]]:
    """method -> one Estimate per root (None where that root has no file for the method)."""
    if methods is None:
        methods = sorted(set().union(*(methods_of(r, condition, metric) for r in roots)))
    out: dict[str, list[Estimate | None]] = {}
    for method in methods:
        row = []
        for root in roots:
            path = per_image_file(str(root), condition, method, metric)
            row.append(bootstrap_mean(column(read_table(path), "value"), resamples=resamples, seed=seed)
                       if Path(path).is_file() else None)
        out[method] = row
    return out


def separated(a: Estimate | None, b: Estimate | None) -> str:
    """'higher' / 'lower' when a's interval lies wholly above / below b's, else 'overlap'."""
    if a is None or b is None or not (np.isfinite(a.low) and np.isfinite(b.low)):
        return ""
    if a.low > b.high:
        return "higher"
    if a.high < b.low:
        return "lower"
    return "overlap"


def markdown(table: dict[str, list[Estimate | None]], names: Sequence[str], metric: str) -> str:
    head = ["method", *(f"{n}: {metric}" for n in names)] + (["first vs second"] if len(names) > 1 else [])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method, row in table.items():
        cells = [method] + ["" if e is None or e.n == 0 else f"{e.mean:.3f} [{e.low:.3f}, {e.high:.3f}]" for e in row]
        if len(names) > 1:
            cells.append(separated(row[0], row[1]))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("experiments", nargs="+", help="experiment names (results/<name>/assess)")
    parser.add_argument("--metric", required=True, action="append",
                        help="a metric label of the assess section (repeat for one table per metric)")
    parser.add_argument("--condition", default="clean")
    parser.add_argument("--results", default="results")
    args = parser.parse_args(argv)
    roots = [Path(args.results) / e / "assess" for e in args.experiments]
    missing = [str(r) for r in roots if not r.is_dir()]
    if missing:
        parser.error(f"no scores under {', '.join(missing)}")
    print("\n".join(markdown(compare(roots, metric, args.condition), args.experiments, metric)
                    for metric in args.metric), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
