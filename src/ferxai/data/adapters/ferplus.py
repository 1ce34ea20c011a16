"""Adapter for FER+: FER2013's pixels relabelled by ten crowd votes per image.

``fer2013new.csv`` (Usage, Image name, neutral, happiness, surprise, sadness, anger, disgust,
fear, contempt, unknown, NF) has one row per ``fer2013.csv`` row, in the same order. Each row's
winner is the column with most votes, ties going to the earlier column (emotions come before
unknown and NF). Rows are dropped, not rejected, when nobody voted, when unknown or NF wins, or
when ``label_mode`` finds no label:

* ``majority`` (default): the top emotion needs more than half of all ten columns' votes.
* ``plurality``: the top emotion, ties broken by FER+ column order.
* ``drop_ties``: the top emotion, but rows whose top count is shared are dropped.

Dropped rows are listed in ``AdapterResult.dropped`` with one of the reasons in ``DROP_REASONS``.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ferxai.classes import FERPLUS_CLASSES, FERPLUS_NON_CLASSES
from ferxai.data.adapters.fer2013_csv import USAGE_SPLITS, fer_row, load_fer2013_table, usage_problem
from ferxai.data.images import csv_row_ref
from ferxai.data.manifest import AdapterResult, ManifestError
from ferxai.data.options import OptionError, check_value, option

LABEL_MODES: tuple[str, ...] = option("ferplus", "label_mode").choices
VOTE_COLUMNS: tuple[str, ...] = (*FERPLUS_CLASSES, *FERPLUS_NON_CLASSES)
DROP_REASONS: tuple[str, ...] = ("no votes", "unknown wins", "NF wins", "no majority", "tie")


def read_ferplus(
    fer2013_csv: str | os.PathLike,
    ferplus_csv: str | os.PathLike,
    label_mode: str = "majority",
) -> AdapterResult:
    """Manifest rows labelled from FER+ votes; pixels are referenced in ``fer2013_csv``.

    Rows with bad pixels, non-integer or negative votes, or an unknown Usage are rejected with
    their 1-based row number. The two files must have the same number of data rows.
    """
    try:
        check_value(option("ferplus", "label_mode"), label_mode)
    except OptionError as err:
        raise ManifestError(f"ferplus dataset: {err}") from None
    table = load_fer2013_table(fer2013_csv)
    votes_frame = _read_votes(ferplus_csv)
    if len(votes_frame) != len(table.reasons):
        raise ManifestError(f"{os.fspath(fer2013_csv)} has {len(table.reasons)} data rows but "
                            f"{os.fspath(ferplus_csv)} has {len(votes_frame)}; "
                            "FER+ rows must align 1:1 with FER2013 rows")

    votes = votes_frame[list(VOTE_COLUMNS)].apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    bad_votes = (votes.isna() | (votes < 0) | (votes % 1 != 0)).to_numpy()
    counts = votes.fillna(0).to_numpy(dtype=np.int64)
    labels, drop = _vote_labels(counts, label_mode)

    usage = votes_frame["Usage"].tolist()
    old_usage = table.columns["Usage"].tolist() if "Usage" in table.columns else None
    result = AdapterResult(classes=list(FERPLUS_CLASSES))
    width = len(str(len(usage)))
    for i in range(len(usage)):
        row = i + 1
        source = csv_row_ref(fer2013_csv, row)
        problems = []
        if table.reasons[i]:
            problems.append(table.reasons[i])
        if bad_votes[i].any():
            col = VOTE_COLUMNS[int(np.argmax(bad_votes[i]))]
            problems.append(f"{os.fspath(ferplus_csv)} vote {col!r} is "
                            f"{votes_frame[col].iloc[i]!r}, not a non-negative integer")
        split = USAGE_SPLITS.get(usage[i].strip())
        if split is None:
            problems.append(f"{os.fspath(ferplus_csv)} {usage_problem(usage[i])}")
        elif old_usage is not None and old_usage[i].strip() != usage[i].strip():
            # Cheap check that the two files really are aligned row for row.
            problems.append(f"Usage differs: {old_usage[i]!r} in {os.fspath(fer2013_csv)}, "
                            f"{usage[i]!r} in {os.fspath(ferplus_csv)}")
        if problems:
            result.rejects.append({"source": source, "row": row, "reason": "; ".join(problems)})
        elif drop[i]:
            result.dropped.append({"source": source, "row": row, "reason": drop[i]})
        else:
            label = int(labels[i])
            result.rows.append(fer_row(table, i, width, source, label, FERPLUS_CLASSES[label], split))
    return result


def _read_votes(path: str | os.PathLike) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise ManifestError(f"FER+ votes file {os.fspath(path)} does not exist") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise ManifestError(f"{os.fspath(path)}: cannot parse as CSV: {err}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in ("Usage", *VOTE_COLUMNS) if c not in frame.columns]
    if missing:
        raise ManifestError(f"{os.fspath(path)}: missing FER+ column(s) {missing}")
    return frame


def _vote_labels(counts: np.ndarray, mode: str) -> tuple[np.ndarray, list[str]]:
    """Per row: the FER+ class index and the drop reason ("" when kept), vectorised over rows."""
    n_classes = len(FERPLUS_CLASSES)
    total = counts.sum(axis=1)
    winner = counts.argmax(axis=1)  # first maximum, i.e. ties go to the earlier column
    top = counts.max(axis=1)
    emotion = counts[:, :n_classes]
    label = emotion.argmax(axis=1)
    shared = (counts == top[:, None]).sum(axis=1) > 1
    reasons = np.full(len(counts), "", dtype=object)
    if mode == "majority":
        reasons[~(2 * emotion.max(axis=1) > total)] = "no majority"
    elif mode == "drop_ties":
        reasons[shared] = "tie"
    # Later assignments win: a row where NF wins is reported as such, not as "no majority".
    for k, name in enumerate(FERPLUS_NON_CLASSES):
        reasons[winner == n_classes + k] = f"{name} wins"
    reasons[total == 0] = "no votes"
    return label, reasons.tolist()
