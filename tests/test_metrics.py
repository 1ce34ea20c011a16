"""Metrics against hand-computed cases and an explicit-loop reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ferxai.metrics import classification_summary, confusion_matrix, macro_f1, summary_from_confusion


def test_confusion_matrix_rows_true_cols_pred() -> None:
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    expected = np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype.kind == "i"


def test_hand_computed_with_never_predicted_and_never_present_class() -> None:
    # Class 0 "a": 3 true, 2 predicted correctly, 1 called "b".
    # Class 1 "b": 2 true, both predicted correctly; also receives 1 from "a".
    # Class 2 "c": 1 true, never predicted (predicted as "b").
    # Class 3 "d": never present, never predicted.
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 1, 1]
    s = classification_summary(y_true, y_pred, ["a", "b", "c", "d"])
    pc = s["per_class"]
    assert pc["a"] == pytest.approx({"precision": 1.0, "recall": 2 / 3, "f1": 0.8, "support": 3})
    assert pc["b"] == pytest.approx({"precision": 0.5, "recall": 1.0, "f1": 2 / 3, "support": 2})
    assert pc["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert pc["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert s["accuracy"] == pytest.approx(4 / 6)
    assert s["num_samples"] == 6
    # Macro means run over all four listed classes, the absent "d" included.
    assert s["macro_f1"] == pytest.approx((0.8 + 2 / 3) / 4)
    assert s["macro_precision"] == pytest.approx(1.5 / 4)
    assert s["macro_recall"] == pytest.approx((2 / 3 + 1.0) / 4)
    assert s["weighted_f1"] == pytest.approx((0.8 * 3 + 2 / 3 * 2) / 6)
    assert macro_f1(y_true, y_pred, 4) == pytest.approx(s["macro_f1"])


def test_perfect_prediction() -> None:
    y = [0, 1, 2, 2, 1]
    s = classification_summary(y, y, ["x", "y", "z"])
    for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1"):
        assert s[key] == 1.0
    assert macro_f1(y, y, 3) == 1.0


def test_all_wrong() -> None:
    s = classification_summary([0, 1, 2], [1, 2, 0], ["x", "y", "z"])
    for key in ("accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1"):
        assert s[key] == 0.0
    assert all(c["support"] == 1 for c in s["per_class"].values())


def test_empty_input_scores_zero() -> None:
    s = classification_summary([], [], ["x", "y"])
    assert s["num_samples"] == 0 and s["accuracy"] == 0.0 and s["macro_f1"] == 0.0
    np.testing.assert_array_equal(confusion_matrix([], [], 2), np.zeros((2, 2)))


def test_summary_is_json_serialisable_plain_types() -> None:
    s = classification_summary(np.array([0, 1, 1]), np.array([0, 1, 0]), ("p", "q"))
    assert json.loads(json.dumps(s)) == s
    assert type(s["num_samples"]) is int and type(s["per_class"]["p"]["support"]) is int
    assert type(s["accuracy"]) is float


def _reference(y_true: list[int], y_pred: list[int], k: int) -> dict[str, object]:
    """Scores by explicit loops and textbook formulas, sharing no code with the library."""
    per_class = []
    for c in range(k):
        tp = fp = fn = 0
        for t, p in zip(y_true, y_pred):
            if t == c and p == c:
                tp += 1
            elif p == c:
                fp += 1
            elif t == c:
                fn += 1
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per_class.append((prec, rec, f1, tp + fn))
    n = len(y_true)
    return {
        "accuracy": sum(t == p for t, p in zip(y_true, y_pred)) / n,
        "macro_precision": sum(c[0] for c in per_class) / k,
        "macro_recall": sum(c[1] for c in per_class) / k,
        "macro_f1": sum(c[2] for c in per_class) / k,
        "weighted_f1": sum(c[2] * c[3] for c in per_class) / n,
        "per_class": per_class,
    }


@pytest.mark.parametrize("seed", range(20))
def test_agrees_with_loop_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 9))
    n = int(rng.integers(1, 60))
    # Skewed class probabilities so some classes are often absent or never predicted.
    probs = rng.dirichlet(np.full(k, 0.5))
    y_true = rng.choice(k, size=n, p=probs).tolist()
    y_pred = rng.choice(k, size=n, p=probs).tolist()
    names = [f"c{i}" for i in range(k)]

    ref = _reference(y_true, y_pred, k)
    got = classification_summary(y_true, y_pred, names)
    for key in ("accuracy", "macro_precision", "macro_recall", "macro_f1", "weighted_f1"):
        assert got[key] == pytest.approx(ref[key], abs=1e-12), key
    for i, name in enumerate(names):
        prec, rec, f1, support = ref["per_class"][i]
        assert got["per_class"][name] == pytest.approx(
            {"precision": prec, "recall": rec, "f1": f1, "support": support}, abs=1e-12
        )
    assert macro_f1(y_true, y_pred, k) == pytest.approx(ref["macro_f1"], abs=1e-12)

    cm = confusion_matrix(y_true, y_pred, k)
    loop_cm = np.zeros((k, k), dtype=int)
    for t, p in zip(y_true, y_pred):
        loop_cm[t, p] += 1
    np.testing.assert_array_equal(cm, loop_cm)
    assert summary_from_confusion(cm, names) == got


def test_length_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in length: 3 vs 2"):
        confusion_matrix([0, 1, 0], [0, 1], 2)


@pytest.mark.parametrize(
    ("y_true", "y_pred", "pattern"),
    [
        ([0, 5, 1], [0, 1, 1], r"y_true has label 5 at index 1, outside \[0, 2\]"),
        ([0, 1, 1], [0, 1, -1], r"y_pred has label -1 at index 2"),
        ([0, 1.5], [0, 1], r"y_true must hold integer class indices, got 1\.5 at index 1"),
        (["a", "b"], [0, 1], r"y_true must hold integer class indices"),
        ([[0, 1]], [[0, 1]], r"y_true must be 1-D"),
    ],
)
def test_invalid_labels(y_true: list, y_pred: list, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        confusion_matrix(y_true, y_pred, 3)


def test_integral_floats_accepted() -> None:
    np.testing.assert_array_equal(confusion_matrix([0.0, 1.0], [1, 1], 2), [[0, 1], [0, 1]])


def test_summary_label_outside_class_names() -> None:
    with pytest.raises(ValueError, match="label 2"):
        classification_summary([0, 2], [0, 1], ["a", "b"])


@pytest.mark.parametrize(
    ("names", "pattern"),
    [([], "empty"), (["a", "a"], "duplicate name 'a'"), ("ab", "single string")],
)
def test_bad_class_names(names: object, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        classification_summary([0], [0], names)  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0, -1, 2.0, True])
def test_bad_num_classes(k: object) -> None:
    with pytest.raises(ValueError, match="num_classes"):
        macro_f1([0], [0], k)  # type: ignore[arg-type]


def test_summary_from_confusion_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="3 classes but 2 class names"):
        summary_from_confusion(np.eye(3, dtype=int), ["a", "b"])
