"""Classification metrics for DFER: WAR (accuracy) and UAR (mean per-class recall), in percent.

Conventions:
- `confusion_matrix[t, p]` counts clips of true class t predicted as p, shape (n_classes, n_classes).
- `per_class_recall` is in percent, NaN for a class with no clips in `y_true`.
- `uar` is the mean of the per-class recalls over the classes present in `y_true` (a class with no
  clips has no recall, so it is left out of the mean rather than counted as 0 or 100). On a full
  test split every class is present and this is the usual mean over all classes.
- `war` is the percentage of clips predicted correctly. Empty inputs give NaN.
Inputs may be lists, numpy arrays or torch tensors of integer labels.
"""

from __future__ import annotations

import numpy as np

from trainer.errors import MetricsError


def _labels(values, name: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise MetricsError(f"{name} must be a 1-d sequence of labels, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise MetricsError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def confusion_matrix(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts `(n_classes, n_classes)` int64, rows = true class, columns = predicted class."""
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise MetricsError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    if n_classes < 1:
        raise MetricsError(f"n_classes must be >= 1, got {n_classes}")
    for name, arr in (("y_true", t), ("y_pred", p)):
        if arr.size and (arr.min() < 0 or arr.max() >= n_classes):
            raise MetricsError(f"{name} has labels outside 0..{n_classes - 1}: "
                               f"min {arr.min()}, max {arr.max()}")
    flat = np.bincount(t * n_classes + p, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def _n_classes(y_true, y_pred, n_classes: int | None) -> int:
    if n_classes is not None:
        return n_classes
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    return int(max(t.max(initial=0), p.max(initial=0))) + 1


def per_class_recall(y_true, y_pred, n_classes: int | None = None) -> np.ndarray:
    """Recall of each class in percent `(n_classes,)` float64; NaN where the class has no clips."""
    cm = confusion_matrix(y_true, y_pred, _n_classes(y_true, y_pred, n_classes))
    return recall_from_confusion(cm)


def recall_from_confusion(cm: np.ndarray) -> np.ndarray:
    support = cm.sum(axis=1).astype(np.float64)  # (n_classes,)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, 100.0 * np.diag(cm) / support, np.nan)


def uar_from_confusion(cm: np.ndarray) -> float:
    """UAR in percent of a confusion matrix: mean recall over the classes that have clips."""
    recalls = recall_from_confusion(cm)
    present = recalls[~np.isnan(recalls)]
    return float(present.mean()) if present.size else float("nan")


def war_from_confusion(cm: np.ndarray) -> float:
    """WAR (accuracy) in percent of a confusion matrix; NaN when it counts no clips."""
    total = int(cm.sum())
    return float(100.0 * (int(np.trace(cm)) / total)) if total else float("nan")


def uar(y_true, y_pred, n_classes: int | None = None) -> float:
    """Unweighted average recall in percent over the classes present in `y_true`."""
    return uar_from_confusion(confusion_matrix(y_true, y_pred, _n_classes(y_true, y_pred, n_classes)))


def war(y_true, y_pred, n_classes: int | None = None) -> float:
    """Weighted average recall (plain accuracy) in percent; `n_classes` only validates labels."""
    t, p = _labels(y_true, "y_true"), _labels(y_pred, "y_pred")
    if n_classes is not None:
        confusion_matrix(t, p, n_classes)  # same checks as everywhere else
    elif t.shape != p.shape:
        raise MetricsError(f"y_true and y_pred differ in length: {t.size} vs {p.size}")
    return float(100.0 * np.mean(t == p)) if t.size else float("nan")
