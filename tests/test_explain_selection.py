import numpy as np
import pandas as pd
import pytest

from ferxai.explain.selection import in_set, select_samples
from ferxai.explain.shards import largest_shard, shard_range, shard_ranges
from ferxai.explain.targets import resolve_targets

CLASSES = ["angry", "happy", "sad"]


def _predictions():
    # class 0 (angry): 6 images, two mistakes; class 1 (happy): 3 images, no mistakes;
    # class 2 (sad): 1 image, a mistake.
    rows = [
        # id,        label, pred, conf
        ("a/1.png", 0, 0, 0.90),
        ("a/2.png", 0, 0, 0.95),
        ("a/3.png", 0, 1, 0.80),  # wrong, confident
        ("a/4.png", 0, 0, 0.40),
        ("a/5.png", 0, 2, 0.35),  # wrong, unsure
        ("a/6.png", 0, 0, 0.60),
        ("h/1.png", 1, 1, 0.99),
        ("h/2.png", 1, 1, 0.70),
        ("h/3.png", 1, 1, 0.85),
        ("s/1.png", 2, 0, 0.50),  # wrong
    ]
    frame = pd.DataFrame(rows, columns=["id", "label", "prediction", "confidence"])
    frame["label_name"] = [CLASSES[i] for i in frame["label"]]
    frame["correct"] = frame["label"] == frame["prediction"]
    frame["prob_angry"] = 0.1
    return frame


def test_select_samples_sets_and_order():
    sel = select_samples(_predictions(), num_each=2)
    assert list(sel.columns[:5]) == ["id", "label", "prediction", "confidence", "set"]
    assert {"label_name", "correct", "prob_angry"} <= set(sel.columns)
    got = list(zip(sel["id"], sel["set"]))
    assert got == [
        # angry: high (correct, conf desc), low (all, conf asc), misclassified (conf desc)
        ("a/2.png", "high_confidence"),
        ("a/1.png", "high_confidence"),
        ("a/5.png", "low_confidence;misclassified"),  # in two sets: once, sets joined
        ("a/4.png", "low_confidence"),
        ("a/3.png", "misclassified"),
        # happy: no mistakes -> no misclassified rows
        ("h/1.png", "high_confidence"),
        ("h/3.png", "high_confidence;low_confidence"),
        ("h/2.png", "low_confidence"),
        # sad: one image, wrong -> no high_confidence row
        ("s/1.png", "low_confidence;misclassified"),
    ]
    assert sel.index.tolist() == list(range(len(sel)))
    assert in_set(sel, "misclassified").sum() == 3
    assert in_set(sel, "low_confidence").tolist()[2] and not in_set(sel, "low_confidence").tolist()[0]


def test_select_samples_subset_of_sets_and_fewer_than_num_each():
    sel = select_samples(_predictions(), sets=["misclassified"], num_each=5)
    assert sel["id"].tolist() == ["a/3.png", "a/5.png", "s/1.png"]
    assert set(sel["set"]) == {"misclassified"}
    sel = select_samples(_predictions(), sets=["high_confidence"], num_each=10)
    assert sel["id"].tolist() == ["a/2.png", "a/1.png", "a/6.png", "a/4.png", "h/1.png", "h/3.png", "h/2.png"]


def test_select_samples_ties_keep_file_order_and_correct_is_derived():
    frame = pd.DataFrame({"id": ["x", "y", "z"], "label": [0, 0, 0], "prediction": [0, 0, 0],
                          "confidence": [0.5, 0.5, 0.5]})
    sel = select_samples(frame, sets=["high_confidence"], num_each=2)
    assert sel["id"].tolist() == ["x", "y"]


def test_select_samples_scope_all_and_csv_round_trip(tmp_path):
    path = tmp_path / "predictions.csv"
    _predictions().to_csv(path, index=False)
    frame = pd.read_csv(path)
    sel = select_samples(frame, scope="all")
    assert sel["id"].tolist() == frame["id"].tolist()
    assert set(sel["set"]) == {"all"}
    assert select_samples(frame, num_each=2)["id"].tolist() == select_samples(_predictions(), num_each=2)["id"].tolist()


@pytest.mark.parametrize("kwargs, match", [
    ({"sets": ["nope"]}, "nope"),
    ({"sets": []}, "no sample sets"),
    ({"num_each": 0}, "num_each"),
    ({"scope": "some"}, "scope"),
])
def test_select_samples_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        select_samples(_predictions(), **kwargs)


def test_select_samples_rejects_duplicates_and_missing_columns():
    frame = _predictions()
    with pytest.raises(ValueError, match="duplicate"):
        select_samples(pd.concat([frame, frame.iloc[:1]]))
    with pytest.raises(ValueError, match="confidence"):
        select_samples(frame.drop(columns="confidence"))


@pytest.mark.parametrize("n, count", [(0, 1), (0, 3), (1, 3), (9, 3), (10, 3), (5, 1), (64, 5)])
def test_shard_ranges_cover_exactly_in_near_equal_parts(n, count):
    ranges = shard_ranges(n, count)
    assert len(ranges) == count
    covered = [i for start, stop in ranges for i in range(start, stop)]
    assert covered == list(range(n))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    assert largest_shard(n, count) == sizes[0]
    assert all(ranges[k][1] == ranges[k + 1][0] for k in range(count - 1))
    assert [shard_range(n, count, k) for k in range(count)] == ranges


def test_shard_ranges_by_hand():
    assert shard_ranges(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert shard_ranges(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]  # more shards than images


def test_shard_errors():
    with pytest.raises(ValueError, match="shards must be"):
        shard_ranges(10, 0)
    with pytest.raises(ValueError, match="shards 0..2"):
        shard_range(10, 3, 3)


def test_resolve_targets():
    labels, preds = np.array([0, 1, 2]), np.array([1, 1, 0])
    assert resolve_targets("predicted", labels, preds, CLASSES).tolist() == [1, 1, 0]
    assert resolve_targets("true", labels, preds, CLASSES).tolist() == [0, 1, 2]
    out = resolve_targets("class", labels, preds, CLASSES, "sad")
    assert out.tolist() == [2, 2, 2] and out.dtype == np.int64
    with pytest.raises(ValueError, match="'surprised'.*angry, happy, sad"):
        resolve_targets("class", labels, preds, CLASSES, "surprised")
    with pytest.raises(ValueError, match="needs a class name"):
        resolve_targets("class", labels, preds, CLASSES)
    with pytest.raises(ValueError, match="only used with target 'class'"):
        resolve_targets("true", labels, preds, CLASSES, "sad")
    with pytest.raises(ValueError, match="unknown explanation target 'gt'"):
        resolve_targets("gt", labels, preds, CLASSES)
    with pytest.raises(ValueError, match="out of range"):
        resolve_targets("true", np.array([0, 3, 1]), preds, CLASSES)


def test_shard_runtime_has_headroom_and_a_floor():
    from ferxai.explain.preflight import PreflightResult
    from ferxai.explain.shards import shard_runtime_minutes

    assert shard_runtime_minutes(0.001, 64) == 2                 # floor for quick methods
    assert shard_runtime_minutes(2.0, 64) == 7                   # 2 s x 64 x 3 = 6.4 min, rounded up
    assert shard_runtime_minutes(2.0, 64, safety=1.0) == 3
    result = PreflightResult.__new__(PreflightResult)
    result.sec_per_image = 2.0
    assert result.runtime_minutes(64) == shard_runtime_minutes(2.0, 64)  # one formula for both callers
