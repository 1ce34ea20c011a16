"""Train/val/test splits of a manifest: stratified by label, subject-disjoint, source splits honoured.

Allocation rule (`make_splits`), in this order:

1. **Source splits.** With ``use_source_split`` and at least one non-empty ``source_split``, rows
   labelled ``val`` or ``test`` stay there. Rows labelled ``train`` stay in train too, unless the
   source lacks a ``val`` (or ``test``) part: then that part is carved out of the source-train rows
   (e.g. FER2013 image folders give train/test only). Carving keeps the ratio between train and
   each carved part at ``(1 - val_fraction - test_fraction) : val_fraction : test_fraction``, so
   with a train/test source, ``val_fraction / (1 - test_fraction)`` of source-train goes to val.
   The source's own test part is never touched.
2. **Unlabelled rows** (empty ``source_split``, or every row when ``use_source_split`` is off or no
   row has a source split) are allocated on their own over train/val/test with the target
   fractions, so each source keeps roughly the target proportions even in a mixed manifest.
3. **Groups.** Rows that share a subject (when ``group_by_subject`` and the subject is known) or a
   ``content_hash`` are one group and always land in the same split, so neither a person nor a
   re-encoded copy of an image is in two splits through our allocation. A group that already has
   rows in a split (fixed by the source, or placed from an earlier pool) follows them when it may.
   Remaining groups are placed greedily, largest first (ties in seeded random order), into the
   split whose per-class shortfall they reduce most, then improved by moving or swapping groups
   while that lowers the squared per-class shortfall (an empty class/split cell costs extra);
   single rows fill what is left per class exactly. Seeded with ``numpy.random.default_rng(seed)``.
4. **Per-class quotas.** Each class is split by controlled rounding: class quotas add up to the
   class size and split totals to the rounded target totals. A class with at least as many images
   as there are splits gets one image in every split. A smaller class gets at most one image per
   split, the first in train: 1 image -> train; 2 images -> train + val or test, whichever the split
   totals need more (test on a tie), so a dataset of tiny classes still gets a non-empty val.
   Single rows meet the quotas exactly; subject groups only approximate them.

A manifest whose every row has label UNLABELLED (-1: a user's images without classes, explained with
their own checkpoint) goes to test whole; train and val stay empty. Mixing such rows with labelled
ones is an error.

Nothing is moved to repair the source: a subject the source puts in two splits is reported in
``subject_leaks`` (and warned about when ``group_by_subject``), identical pixels in two splits in
``duplicates`` (the later copies are dropped from val/test only with
``drop_cross_split_duplicates``), and identical pixels under two labels in ``label_conflicts``
(label noise, warned about; such copies share one split, so they are no leak).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ferxai.classes import UNLABELLED, UNLABELLED_NAME

SPLITS: tuple[str, ...] = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2
# Who gets the scarce images of a tiny class first; also breaks ties. Test before val because an
# image in test is measured, one in val only steers early stopping.
_PRIORITY: tuple[int, ...] = (TRAIN, TEST, VAL)
_REQUIRED_COLUMNS: tuple[str, ...] = ("id", "label", "label_name", "subject", "source_split", "content_hash")
_MAX_SEARCH_PASSES = 20
_MAX_SWAP_GROUPS = 2000  # pairwise swaps cost O(groups^2 x classes) per pass


class SplitError(ValueError):
    """Invalid split settings or a manifest that cannot be split; the message names the field."""


class SplitWarning(UserWarning):
    """The split is usable but not what was asked for (leaks, duplicates, an empty split)."""


@dataclass
class SplitResult:
    """Manifest rows per split (original columns and order) plus the reports written beside them."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    summary: pd.DataFrame        # label_name, train, val, test, total; last row label_name == "total"
    duplicates: pd.DataFrame     # content_hash, ids, splits, dropped (ids ";"-joined)
    subject_leaks: pd.DataFrame  # subject, splits, n_train, n_val, n_test
    label_conflicts: pd.DataFrame  # content_hash, ids, label_names, splits (ids/names ";"-joined)

    def frames(self) -> dict[str, pd.DataFrame]:
        """Every table by the file stem `write_splits` gives it."""
        return {"train": self.train, "val": self.val, "test": self.test, "summary": self.summary,
                "duplicates": self.duplicates, "subject_leaks": self.subject_leaks,
                "label_conflicts": self.label_conflicts}


def make_splits(
    manifest: pd.DataFrame,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    use_source_split: bool = True,
    group_by_subject: bool = True,
    drop_cross_split_duplicates: bool = False,
) -> SplitResult:
    """Split manifest rows into train/val/test by the rule in this module's docstring.

    Fractions are of the rows being allocated (see the module docstring for source splits).
    Raises :class:`SplitError` for fractions outside [0, 1), fractions adding up to 1 or more,
    a manifest that lacks columns, has duplicate ids, unknown ``source_split`` values, fewer rows
    than requested splits, or would leave train empty. Warns (:class:`SplitWarning`) about subject
    leaks, cross-split duplicates and a val/test that ends empty although its fraction is positive.
    """
    v = _check_fraction("val_fraction", val_fraction)
    t = _check_fraction("test_fraction", test_fraction)
    if v + t >= 1:
        raise SplitError(f"splits.val_fraction + splits.test_fraction must be < 1: got {v} + {t}")
    df = _check_manifest(manifest)
    if _without_classes(df):
        return _all_in_test(df)
    n = len(df)
    wanted = 1 + (v > 0) + (t > 0)
    if n < wanted:
        raise SplitError(f"manifest has {n} row(s); train/val/test with these fractions need at least {wanted}")

    classes, y = np.unique(df["label"].to_numpy(), return_inverse=True)
    y = y.astype(np.int64)
    subjects = df["subject"].to_numpy(dtype=object)
    source = _source_splits(df) if use_source_split else np.full(n, "", dtype=object)
    comp = _components(df, group_by_subject)
    rng = np.random.default_rng(seed)
    base = np.array([1.0 - v - t, v, t])

    assigned = np.full(n, -1, dtype=np.int64)
    rows_all = np.arange(n)
    pools: list[tuple[np.ndarray, tuple[int, ...]]] = []
    present = {s for s in source if s}
    for k, name in enumerate(SPLITS):
        fixed = rows_all[source == name]
        if name == "train" and len(fixed):
            missing = tuple(s for s in (VAL, TEST) if SPLITS[s] not in present)
            if missing:  # carve the absent parts out of source-train; source val/test stay as given
                pools.append((fixed, (TRAIN, *missing)))
                continue
        assigned[fixed] = k
    free = rows_all[source == ""]
    if len(free):
        pools.append((free, (TRAIN, VAL, TEST)))

    for rows, allowed in pools:  # carve pool first, so unlabelled rows can follow its subjects
        allowed = tuple(s for s in _PRIORITY if s in allowed and base[s] > 0)
        _allocate(rows, allowed, base, y, len(classes), comp, assigned, rng)

    duplicates, dropped = _cross_split_duplicates(df, assigned, drop_cross_split_duplicates)
    keep = ~np.isin(np.arange(n), dropped)
    leaks = _subject_leaks(subjects, assigned)
    conflicts = _label_conflicts(df, assigned)

    parts = [df[(assigned == k) & keep].reset_index(drop=True) for k in range(3)]
    if parts[TRAIN].empty:
        raise SplitError("no rows ended in train: the source splits leave nothing to train on "
                         "(set splits.use_source_split: false to re-split)")
    for k, frac in ((VAL, v), (TEST, t)):
        if frac > 0 and parts[k].empty:
            warnings.warn(f"{SPLITS[k]} split is empty although splits.{SPLITS[k]}_fraction={frac}: "
                          f"too few rows or subjects", SplitWarning, stacklevel=2)
    if group_by_subject and len(leaks):
        warnings.warn(f"{len(leaks)} subject(s) appear in more than one split because the source splits "
                      f"put them there (e.g. {leaks['subject'].iloc[0]!r} in {leaks['splits'].iloc[0]}); "
                      f"kept as given, see subject_leaks", SplitWarning, stacklevel=2)
    if len(duplicates):
        action = "dropped from val/test" if drop_cross_split_duplicates else "kept"
        warnings.warn(f"{len(duplicates)} image content hash(es) occur in more than one split ({action}); "
                      f"see duplicates", SplitWarning, stacklevel=2)
    if len(conflicts):
        first = conflicts.iloc[0]
        warnings.warn(f"{len(conflicts)} image(s) occur under more than one class (same pixels, different "
                      f"labels: label noise, e.g. ids {first['ids']} labelled {first['label_names']}); "
                      f"kept as given, see label_conflicts", SplitWarning, stacklevel=2)

    summary = _summary(df, y, classes, assigned, keep)
    return SplitResult(parts[TRAIN], parts[VAL], parts[TEST], summary, duplicates, leaks, conflicts)


def _without_classes(df: pd.DataFrame) -> bool:
    """True when no row has a class; SplitError when some have one and some not."""
    missing = df["label"].astype(np.int64) == UNLABELLED
    if missing.any() and not missing.all():
        raise SplitError(f"manifest mixes images without a class (label {UNLABELLED}, e.g. id="
                         f"{df.loc[missing, 'id'].iloc[0]!r}) with labelled ones (e.g. id={df.loc[~missing, 'id'].iloc[0]!r})")
    return bool(missing.all())


def _all_in_test(df: pd.DataFrame) -> SplitResult:
    n = len(df)
    assigned = np.full(n, TEST, dtype=np.int64)
    duplicates, _ = _cross_split_duplicates(df, assigned, drop=False)
    leaks = _subject_leaks(df["subject"].to_numpy(dtype=object), assigned)
    summary = pd.DataFrame([[UNLABELLED_NAME, 0, 0, n, n], ["total", 0, 0, n, n]],
                           columns=["label_name", *SPLITS, "total"])
    empty = df.iloc[:0].reset_index(drop=True)
    return SplitResult(empty, empty.copy(), df.reset_index(drop=True), summary, duplicates, leaks,
                       _label_conflicts(df, assigned))


def write_splits(result: SplitResult, out_dir: str | Path) -> None:
    """Write train/val/test/summary/duplicates/subject_leaks/label_conflicts as CSV files into `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stem, frame in result.frames().items():
        frame.to_csv(out / f"{stem}.csv", index=False)


# ---------------------------------------------------------------------------------------------
# Validation


def _check_fraction(name: str, value: object) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SplitError(f"splits.{name} must be a number in [0,1): got {value!r}") from None
    if isinstance(value, bool) or not 0.0 <= x < 1.0:  # `not` form also rejects NaN
        raise SplitError(f"splits.{name} must be in [0,1): got {value!r}")
    return x


def _check_manifest(manifest: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(manifest, pd.DataFrame):
        raise SplitError(f"manifest must be a pandas DataFrame: got {type(manifest).__name__}")
    missing = [c for c in _REQUIRED_COLUMNS if c not in manifest.columns]
    if missing:
        raise SplitError(f"manifest lacks columns {missing}")
    if manifest.empty:
        raise SplitError("manifest is empty: nothing to split")
    if manifest["id"].duplicated().any():
        dup = manifest.loc[manifest["id"].duplicated(), "id"].iloc[0]
        raise SplitError(f"duplicate image id {dup!r} in manifest")
    if manifest["label"].isna().any():
        raise SplitError(f"manifest row id={manifest.loc[manifest['label'].isna(), 'id'].iloc[0]!r} has no label")
    df = manifest.reset_index(drop=True).copy()
    # CSV/parquet round trips turn empty strings into NaN; empty means unknown either way.
    for col in ("subject", "source_split", "content_hash"):
        df[col] = df[col].fillna("").astype(str).str.strip()
    return df


def _source_splits(df: pd.DataFrame) -> np.ndarray:
    src = df["source_split"].str.lower()
    bad = ~src.isin(("",) + SPLITS)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise SplitError(f"manifest source_split must be train, val, test or empty: got "
                         f"{df['source_split'].iloc[i]!r} (id={df['id'].iloc[i]!r})")
    return src.to_numpy(dtype=object)


# ---------------------------------------------------------------------------------------------
# Grouping


def _components(df: pd.DataFrame, by_subject: bool) -> np.ndarray:
    """Component id per row: rows linked by equal subject (if used) or equal content_hash."""
    n = len(df)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    columns = (["subject"] if by_subject else []) + ["content_hash"]
    linked = False
    for col in columns:
        values = df[col].to_numpy(dtype=object)
        known = np.flatnonzero(values != "")
        codes, _ = pd.factorize(values[known])
        order = np.argsort(codes, kind="stable")
        same = np.flatnonzero(codes[order][1:] == codes[order][:-1])
        for j in same:  # consecutive rows with one key: union them
            a, b = find(int(known[order[j]])), find(int(known[order[j + 1]]))
            if a != b:
                parent[b] = a
                linked = True
    if not linked:
        return np.arange(n)
    roots = np.fromiter((find(i) for i in range(n)), dtype=np.int64, count=n)
    return pd.factorize(roots)[0]


# ---------------------------------------------------------------------------------------------
# Allocation


def _allocate(rows: np.ndarray, allowed: tuple[int, ...], base: np.ndarray, y: np.ndarray,
              n_classes: int, comp: np.ndarray, assigned: np.ndarray, rng: np.random.Generator) -> None:
    """Assign `rows` (one pool) to the `allowed` splits in place in `assigned`."""
    if len(allowed) == 1:
        assigned[rows] = allowed[0]
        return
    weights = np.zeros(3)
    weights[list(allowed)] = base[list(allowed)] / base[list(allowed)].sum()
    counts = np.bincount(y[rows], minlength=n_classes)
    quota = _quotas(counts, weights, allowed)

    # Splits each component already occupies (source-fixed rows, earlier pools): it follows them.
    done = assigned >= 0
    occupied = np.zeros((comp.max() + 1, 3), dtype=np.int64)
    np.add.at(occupied, (comp[done], assigned[done]), 1)

    alloc = np.zeros((3, n_classes), dtype=np.int64)
    pool_comp = comp[rows]
    order = np.argsort(pool_comp, kind="stable")
    bounds = np.flatnonzero(np.diff(pool_comp[order])) + 1
    groups: list[np.ndarray] = []
    singles: list[int] = []
    for members in np.split(rows[order], bounds):
        where = occupied[comp[members[0]], list(allowed)]
        if where.any():
            # Most-occupied split wins; argmax keeps _PRIORITY order on ties.
            s = allowed[int(np.argmax(where))]
            assigned[members] = s
            np.add.at(alloc[s], y[members], 1)
        elif len(members) == 1:
            singles.append(int(members[0]))
        else:
            groups.append(members)

    singles_arr = np.asarray(singles, dtype=np.int64)
    single_counts = np.bincount(y[singles_arr], minlength=n_classes)
    if groups:
        _place_groups(groups, allowed, weights, quota, single_counts, y, n_classes, alloc, assigned, rng)

    # Single rows split exactly: per class, fill the largest shortfalls first.
    for c in range(n_classes):
        members = singles_arr[y[singles_arr] == c]
        if not len(members):
            continue
        take = _fill(quota[:, c] - alloc[:, c], len(members), allowed)
        members = members[rng.permutation(len(members))]
        start = 0
        for s in range(3):
            assigned[members[start:start + take[s]]] = s
            start += take[s]
        alloc[:, c] += take


def _place_groups(groups: list[np.ndarray], allowed: tuple[int, ...], weights: np.ndarray,
                  quota: np.ndarray, single_counts: np.ndarray, y: np.ndarray, n_classes: int,
                  alloc: np.ndarray, assigned: np.ndarray, rng: np.random.Generator) -> None:
    """Greedy stratified group assignment, then group moves and swaps while they lower the cost."""
    gc = np.zeros((len(groups), n_classes), dtype=np.int64)
    for g, members in enumerate(groups):
        np.add.at(gc[g], y[members], 1)
    sizes = gc.sum(1)
    # Groups aim at the quota minus what single rows will bring in proportion; the single rows
    # then fill the remaining shortfall exactly.
    target = quota - weights[:, None] * single_counts[None, :]
    # A quota >= 1 that no single row can satisfy must come from a group: an empty cell costs as
    # much as misplacing a typical group, so coverage wins over small count errors.
    required = (quota >= 1) & (single_counts[None, :] == 0)
    penalty = float(np.median(sizes)) ** 2 * 4

    def cost(rows: np.ndarray, s: int) -> np.ndarray:
        """Cost of split `s` holding class counts `rows` (last axis: classes; any leading axes)."""
        return ((rows - target[s]) ** 2).sum(-1) + penalty * (required[s] & (rows == 0)).sum(-1)

    perm = rng.permutation(len(groups))
    visit = perm[np.argsort(-sizes[perm], kind="stable")]  # largest first, random among equals
    place = np.empty(len(groups), dtype=np.int64)
    for g in visit:
        deltas = [cost(alloc[s] + gc[g], s) - cost(alloc[s], s) for s in allowed]
        s = allowed[int(np.argmin(deltas))]
        place[g] = s
        alloc[s] += gc[g]

    for _ in range(_MAX_SEARCH_PASSES):
        moved = False
        for g in visit:
            a = place[g]
            leave = cost(alloc[a] - gc[g], a) - cost(alloc[a], a)
            gains = [leave + cost(alloc[b] + gc[g], b) - cost(alloc[b], b) if b != a else 0.0 for b in allowed]
            best = int(np.argmin(gains))
            if gains[best] < -1e-9:
                b = allowed[best]
                alloc[a] -= gc[g]
                alloc[b] += gc[g]
                place[g] = b
                moved = True
        if len(groups) <= _MAX_SWAP_GROUPS:
            # Exchanging two groups fixes imbalances that no single move can once every split is
            # near its size; evaluated against all partners of `g` at once.
            for g in visit:
                a = place[g]
                for b in allowed:
                    partners = np.flatnonzero(place == b)
                    if b == a or not len(partners):
                        continue
                    d = gc[partners] - gc[g]  # what split a gains (and b loses) by the exchange
                    gain = (cost(alloc[a] + d, a) - cost(alloc[a], a)
                            + cost(alloc[b] - d, b) - cost(alloc[b], b))
                    j = int(np.argmin(gain))
                    if gain[j] < -1e-9:
                        h = partners[j]
                        alloc[a] += d[j]
                        alloc[b] -= d[j]
                        place[g], place[h] = b, a
                        moved = True
                        break
        if not moved:
            break
    for g, members in enumerate(groups):
        assigned[members] = place[g]


def _quotas(counts: np.ndarray, weights: np.ndarray, allowed: tuple[int, ...]) -> np.ndarray:
    """Per-split, per-class image counts: controlled rounding of counts x weights (see module doc)."""
    k = len(allowed)
    idx = list(allowed)  # in _PRIORITY order, so argmax/argmin ties favour train, then test
    raw = weights[idx][:, None] * counts[None, :]
    cap = np.where(counts <= k, 1, counts)[None, :].repeat(k, 0)
    low = np.zeros_like(cap)
    low[:, counts >= k] = 1
    low[0, counts >= 1] = 1  # allowed[0] is train
    q = np.clip(np.floor(raw).astype(np.int64), low, cap)
    for c in range(len(counts)):  # lower bounds may overshoot a small class: give back the excess
        while q[:, c].sum() > counts[c]:
            over = np.where(q[:, c] > low[:, c], q[:, c] - raw[:, c], -np.inf)
            q[int(np.argmax(over)), c] -= 1
    need = _largest_remainder(int(counts.sum()), weights[idx]) - q.sum(1)
    residual = counts - q.sum(0)
    while residual.sum() > 0:
        open_ = (residual[None, :] > 0) & (q < cap)
        if not open_.any():  # cannot happen while caps sum to >= counts; guard the loop anyway
            break
        gap = np.where(open_, raw - q, -np.inf)
        wanted = np.where(need[:, None] > 0, gap, -np.inf)
        score = wanted if np.isfinite(wanted).any() else gap
        s, c = np.unravel_index(int(np.argmax(score)), score.shape)
        q[s, c] += 1
        need[s] -= 1
        residual[c] -= 1
    out = np.zeros((3, len(counts)), dtype=np.int64)
    out[idx] = q
    return out


def _largest_remainder(total: int, weights: np.ndarray) -> np.ndarray:
    raw = weights * total
    q = np.floor(raw).astype(np.int64)
    extra = np.argsort(-(raw - q), kind="stable")[: total - int(q.sum())]
    q[extra] += 1
    return q


def _fill(deficit: np.ndarray, n: int, allowed: tuple[int, ...]) -> np.ndarray:
    """Split `n` rows over `allowed` splits, one at a time to the largest remaining deficit."""
    take = np.zeros(3, dtype=np.int64)
    d = {s: int(deficit[s]) for s in allowed}
    if all(x >= 0 for x in d.values()) and sum(d.values()) == n:  # the common case: exact quotas
        for s, x in d.items():
            take[s] = x
        return take
    for _ in range(n):
        s = max(allowed, key=lambda s: d[s])  # first max in _PRIORITY order
        take[s] += 1
        d[s] -= 1
    return take


# ---------------------------------------------------------------------------------------------
# Reports


def _cross_split_duplicates(df: pd.DataFrame, assigned: np.ndarray, drop: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Content-hash groups spanning splits; with `drop`, rows not in the group's first split."""
    columns = ["content_hash", "ids", "splits", "dropped"]
    hashes = df["content_hash"].to_numpy(dtype=object)
    known = hashes != ""
    frame = pd.DataFrame({"h": hashes[known], "s": assigned[known], "i": np.flatnonzero(known)})
    spread = frame.groupby("h", sort=False)["s"].transform("nunique") > 1
    records, dropped = [], []
    for h, grp in frame[spread].groupby("h", sort=False):
        first = grp["s"].min()  # train < val < test: the copy kept is the one in the earliest split
        gone = grp["i"][grp["s"] > first].to_numpy() if drop else np.array([], dtype=np.int64)
        dropped.extend(gone.tolist())
        records.append({
            "content_hash": h,
            "ids": ";".join(df["id"].iloc[grp["i"]].astype(str)),
            "splits": ";".join(SPLITS[s] for s in sorted(set(grp["s"]))),
            "dropped": ";".join(df["id"].iloc[gone].astype(str)),
        })
    return pd.DataFrame(records, columns=columns), np.asarray(dropped, dtype=np.int64)


def _label_conflicts(df: pd.DataFrame, assigned: np.ndarray) -> pd.DataFrame:
    """Content-hash groups whose rows carry more than one label.

    Grouping keeps such copies in one split, so they are no leak; but one image cannot be two
    classes, so they are label noise and reported apart from cross-split duplicates.
    """
    columns = ["content_hash", "ids", "label_names", "splits"]
    known = df["content_hash"].to_numpy(dtype=object) != ""
    frame = df.loc[known, ["content_hash", "id", "label", "label_name"]].assign(s=assigned[known])
    mixed = frame.groupby("content_hash", sort=False)["label"].transform("nunique") > 1
    records = []
    for h, grp in frame[mixed].groupby("content_hash", sort=False):
        records.append({
            "content_hash": h,
            "ids": ";".join(grp["id"].astype(str)),
            "label_names": ";".join(dict.fromkeys(grp["label_name"].astype(str))),
            "splits": ";".join(SPLITS[s] for s in sorted(set(grp["s"]))),
        })
    return pd.DataFrame(records, columns=columns)


def _subject_leaks(subjects: np.ndarray, assigned: np.ndarray) -> pd.DataFrame:
    columns = ["subject", "splits", "n_train", "n_val", "n_test"]
    known = subjects != ""
    if not known.any():
        return pd.DataFrame(columns=columns)
    counts = pd.crosstab(subjects[known], assigned[known]).reindex(columns=range(3), fill_value=0)
    counts = counts[(counts > 0).sum(1) > 1]
    return pd.DataFrame({
        "subject": counts.index.astype(str),
        "splits": [";".join(SPLITS[s] for s in range(3) if r[s] > 0) for r in counts.to_numpy()],
        "n_train": counts[TRAIN].to_numpy(), "n_val": counts[VAL].to_numpy(), "n_test": counts[TEST].to_numpy(),
    }, columns=columns)


def _summary(df: pd.DataFrame, y: np.ndarray, classes: np.ndarray, assigned: np.ndarray, keep: np.ndarray) -> pd.DataFrame:
    names = df.groupby(y)["label_name"].first()
    table = np.zeros((len(classes), 3), dtype=np.int64)
    np.add.at(table, (y[keep], assigned[keep]), 1)
    summary = pd.DataFrame(table, columns=list(SPLITS))
    summary.insert(0, "label_name", [str(names.get(c, classes[c])) for c in range(len(classes))])
    summary["total"] = table.sum(1)
    total = pd.DataFrame([["total", *table.sum(0), int(table.sum())]], columns=summary.columns)
    return pd.concat([summary, total], ignore_index=True)
