"""Which test images get explained, and how they are cut into shards.

`select_samples` reads the evaluation's predictions (`results/<exp>/eval/predictions.csv`, one
row per test image: id, label, prediction, confidence, correct, prob_<class>...) and picks, per
true class (ascending label), in the order the sets are given:

high_confidence
    the `num_each` *correct* predictions with the highest confidence;
low_confidence
    the `num_each` images with the lowest confidence among *all* images of the class, correct or
    not (what the model is least sure about, whichever way it went);
misclassified
    the `num_each` mistakes with the highest confidence (most confidently wrong first).

A class with fewer candidates contributes what it has (a class without mistakes contributes no
misclassified row). Ties in confidence keep file order (stable sort), so the result is a pure
function of the predictions file. An image picked by several sets appears once, at its first
position, with its sets joined by ";" in the order of `sets` (e.g. "low_confidence;misclassified").

Images without a class (label UNLABELLED: a user's folder explained with their own checkpoint) are
grouped by *predicted* class instead: high_confidence takes the most confident predictions,
low_confidence the least confident, and misclassified finds nothing (no truth to be wrong about).

scope="all" takes the whole test split in file order, with set "all".

The row position in the returned frame is the image's *index in the selection*: shards are
contiguous ranges of it and noise is seeded from it (see `ferxai.explain.noise`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ferxai.classes import UNLABELLED
from ferxai.settings import ExplainSettings

SETS = ("high_confidence", "low_confidence", "misclassified")
SCOPES = ("sets", "all")
SET_SEPARATOR = ";"
LEADING_COLUMNS = ["id", "label", "prediction", "confidence", "set"]


def _check_predictions(predictions: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in ("id", "label", "prediction", "confidence") if c not in predictions.columns]
    if missing:
        raise ValueError(f"predictions: missing columns {missing} (have {list(predictions.columns)})")
    frame = predictions.reset_index(drop=True).copy()
    frame["id"] = frame["id"].astype(str)
    dup = frame["id"][frame["id"].duplicated()]
    if len(dup):
        raise ValueError(f"predictions: duplicate image id {dup.iloc[0]!r}; ids must be unique")
    for col in ("label", "prediction"):
        frame[col] = pd.to_numeric(frame[col], errors="raise").astype(np.int64)
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="raise").astype(float)
    if "correct" in frame.columns:
        correct = frame["correct"]
        if correct.dtype == object:  # read back from CSV as strings in some pandas versions
            correct = correct.astype(str).str.lower().isin(["true", "1"])
        frame["correct"] = correct.astype(bool)
    else:
        frame["correct"] = frame["label"] == frame["prediction"]
    return frame


def _pick(group: pd.DataFrame, which: str, num_each: int, labelled: bool = True) -> list[int]:
    """Row positions (index labels of `group`) picked by one set for one class."""
    if not labelled and which == "misclassified":
        return []
    if which == "high_confidence":
        cand = group[group["correct"]] if labelled else group
        order = cand.sort_values("confidence", ascending=False, kind="mergesort")
    elif which == "low_confidence":
        order = group.sort_values("confidence", ascending=True, kind="mergesort")
    else:  # misclassified
        cand = group[~group["correct"]]
        order = cand.sort_values("confidence", ascending=False, kind="mergesort")
    return order.index[:num_each].tolist()


def select_samples(
    predictions: pd.DataFrame,
    sets: Sequence[str] = ExplainSettings.sets,
    num_each: int = ExplainSettings.num_each,
    scope: str = ExplainSettings.scope,
) -> pd.DataFrame:
    """The images to explain: columns id, label, prediction, confidence, set, then the other
    columns of `predictions` (label_name, prediction_name, correct, prob_<class>...) unchanged.

    See the module docstring for the rules; the index is 0..n-1 (index in the selection).
    """
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {list(SCOPES)}, got {scope!r}")
    frame = _check_predictions(predictions)
    rest = [c for c in frame.columns if c not in LEADING_COLUMNS]
    if scope == "all":
        out = frame.assign(set="all")
        return out[LEADING_COLUMNS + rest].reset_index(drop=True)

    if isinstance(sets, str):
        sets = [sets]
    sets = list(sets)
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        raise ValueError(f"unknown sample set(s) {unknown}; valid: {', '.join(SETS)}")
    if not sets:
        raise ValueError("no sample sets given (scope 'sets' needs at least one of "
                         f"{', '.join(SETS)}; use scope 'all' for the whole test split)")
    sets = list(dict.fromkeys(sets))  # drop repeats, keep order
    if int(num_each) != num_each or num_each < 1:
        raise ValueError(f"num_each must be an integer >= 1, got {num_each!r}")
    num_each = int(num_each)

    order: list[int] = []
    membership: dict[int, list[str]] = {}
    unlabelled = frame["label"] == UNLABELLED
    if unlabelled.any() and not unlabelled.all():
        raise ValueError("predictions: some images have a class and some not; a test split is either labelled or not")
    labelled = not unlabelled.any()
    for _, group in frame.groupby("label" if labelled else "prediction", sort=True):
        for which in sets:
            for row in _pick(group, which, num_each, labelled):
                if row not in membership:
                    membership[row] = []
                    order.append(row)
                membership[row].append(which)
    out = frame.loc[order].copy()
    out["set"] = [SET_SEPARATOR.join(membership[row]) for row in order]
    return out[LEADING_COLUMNS + rest].reset_index(drop=True)


def samples_like(predictions: pd.DataFrame, reference: pd.DataFrame, where: str = "reference") -> pd.DataFrame:
    """The images another experiment selected (`reference`: its samples, same order and sets), with
    this model's own predictions for them: two models' maps of one image can then be compared.
    Fails naming `where` if a selected image is not among `predictions`."""
    frame = _check_predictions(predictions).set_index("id", drop=False)
    ids = reference["id"].astype(str)
    missing = ids[~ids.isin(frame.index)]
    if len(missing):
        raise ValueError(f"{where}: {len(missing)} selected images are not among this experiment's test "
                         f"predictions, e.g. {missing.iloc[0]!r}; compare_to needs the same test split")
    rest = [c for c in frame.columns if c not in LEADING_COLUMNS]
    out = frame.loc[ids.tolist()].assign(set=reference["set"].astype(str).to_numpy())
    return out[LEADING_COLUMNS + rest].reset_index(drop=True)


def in_set(selection: pd.DataFrame, name: str) -> np.ndarray:
    """Boolean mask of the rows of `selection` that belong to set `name` (sets may be joined by ";")."""
    return selection["set"].astype(str).str.split(SET_SEPARATOR).apply(lambda s: name in s).to_numpy(bool)
