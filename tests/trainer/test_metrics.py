import math

import numpy as np
import pytest
import torch

from trainer.errors import TrainerError
from trainer.metrics import confusion_matrix, per_class_recall, uar, war


def _naive(y_true, y_pred, n):
    cm = [[0] * n for _ in range(n)]
    for t, p in zip(y_true, y_pred):
        cm[t][p] += 1
    recalls = []
    for c in range(n):
        total = sum(cm[c])
        recalls.append(100.0 * cm[c][c] / total if total else None)
    present = [r for r in recalls if r is not None]
    correct = sum(1 for t, p in zip(y_true, y_pred) if t == p)
    return cm, recalls, sum(present) / len(present), 100.0 * correct / len(y_true)


@pytest.mark.parametrize("seed", range(8))
def test_against_naive_reference(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 12))
    size = int(rng.integers(1, 300))
    y_true = rng.integers(0, n, size).tolist()
    y_pred = [t if rng.random() < 0.4 else int(rng.integers(0, n)) for t in y_true]
    cm, recalls, ref_uar, ref_war = _naive(y_true, y_pred, n)
    assert confusion_matrix(y_true, y_pred, n).tolist() == cm
    got = per_class_recall(y_true, y_pred, n)
    for g, r in zip(got, recalls):
        assert (math.isnan(g) and r is None) or g == pytest.approx(r)
    assert uar(y_true, y_pred, n) == pytest.approx(ref_uar)
    assert war(y_true, y_pred) == pytest.approx(ref_war)
    from trainer.scoring import split_metrics

    logits = torch.nn.functional.one_hot(torch.tensor(y_pred), n).float()  # (N, C), argmax = y_pred
    split = split_metrics(logits, y_true, n)
    assert split["confusion"] == cm
    assert split["uar"] == uar(y_true, y_pred, n) and split["war"] == war(y_true, y_pred, n)


def test_metrics_of_an_empty_confusion_are_nan():
    from trainer.metrics import uar_from_confusion, war_from_confusion

    cm = np.zeros((3, 3), dtype=np.int64)
    assert math.isnan(uar_from_confusion(cm)) and math.isnan(war_from_confusion(cm))


def test_uar_ignores_absent_classes_and_accepts_tensors():
    y_true = torch.tensor([0, 0, 1, 1])
    y_pred = torch.tensor([0, 2, 1, 1])
    assert uar(y_true, y_pred, 7) == pytest.approx(75.0)  # mean of 50 and 100; classes 2..6 absent
    assert war(y_true, y_pred, 7) == pytest.approx(75.0)
    assert np.isnan(per_class_recall(y_true, y_pred, 7)[2])


def test_uar_differs_from_war_on_imbalance():
    y_true = [0] * 9 + [1]
    y_pred = [0] * 10
    assert war(y_true, y_pred) == pytest.approx(90.0)
    assert uar(y_true, y_pred, 2) == pytest.approx(50.0)


def test_bad_inputs():
    with pytest.raises(TrainerError, match="differ in length"):
        confusion_matrix([0, 1], [0], 2)
    with pytest.raises(TrainerError, match="outside 0..1"):
        confusion_matrix([0, 2], [0, 1], 2)
    with pytest.raises(TrainerError, match="integer"):
        war([0.5, 1.0], [0, 1])
    assert math.isnan(war([], []))
