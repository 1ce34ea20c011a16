"""Where the scoring stage's files live and how a per-image score table is written and read.

Stdlib only at import (numpy inside the functions that need it): the Snakefile names these paths
on every call.

    results/<experiment>/assess/<condition>/<method>/<metric>.csv     id, set, value
    results/<experiment>/assess/<condition>/<method>/<family>/shard-<k>.csv
                                   id, set, one column per metric (faithfulness, sensitivity: per shard)
    results/<experiment>/assess/<first condition>/<method>/randomisation.csv
                                   id, set, step, layer, rank_correlation, ssim, top_k_iou
    results/<experiment>/assess/<noise condition>/<method>/robustness.csv
                                   id, set, rank_correlation, top_k_iou   (against the first condition)
"""

from __future__ import annotations

import csv
import io
import math
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np

RANDOMISATION = "randomisation"
ROBUSTNESS = "robustness"
AGREEMENT = "agreement"  # compare_to: maps against another experiment's (ferxai.assess.agreement)
SIMILARITIES = ("rank_correlation", "ssim", "top_k_iou")
ROBUSTNESS_SIMILARITIES = ("rank_correlation", "top_k_iou")


def per_image_file(root: str, condition: str, method: str, name: str) -> str:
    """`name`: a metric label, "randomisation" or "robustness"."""
    return f"{root}/{condition}/{method}/{name}.csv"


def shard_scores_file(root: str, condition: str, method: str, family: str, shard: int | str) -> str:
    """One shard's scores of a model-running family (every metric of the family, one column each),
    gathered into the per-image files by the experiment's gather job."""
    return f"{root}/{condition}/{method}/{family}/shard-{shard}.csv"


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def write_table(path: str | os.PathLike, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A CSV with `columns`; floats written exactly (repr), NaN as an empty cell."""
    from ferxai.atomic import write_text_atomic

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([[_cell(v) for v in row] for row in rows])
    write_text_atomic(path, buffer.getvalue())


def write_per_image(path: str | os.PathLike, ids: Sequence[str], sets: Sequence[str], values: np.ndarray) -> None:
    import numpy as np

    values = np.asarray(values, dtype=np.float64).ravel()
    if len(values) != len(ids):
        raise ValueError(f"{path}: {len(values)} values for {len(ids)} images")
    write_table(path, ("id", "set", "value"), [(i, s, float(v)) for i, s, v in zip(ids, sets, values)])


def read_table(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def column(rows: Sequence[Mapping[str, str]], name: str) -> np.ndarray:
    """A numeric column, empty cells as NaN."""
    import numpy as np

    return np.array([float(r[name]) if r[name] != "" else np.nan for r in rows], dtype=np.float64)


__all__ = ["AGREEMENT", "RANDOMISATION", "ROBUSTNESS", "ROBUSTNESS_SIMILARITIES", "SIMILARITIES", "column",
           "per_image_file", "read_table", "shard_scores_file", "write_per_image", "write_table"]
