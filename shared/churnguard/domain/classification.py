"""Classification metrics in plain numpy, so evaluation and drift checks run without scikit-learn.

Unit tests check each against scikit-learn's implementation.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def average_ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    ranks = np.empty(len(x), dtype=np.float64)
    # Tied values share the mean of the ranks they span.
    boundaries = np.flatnonzero(np.diff(xs)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(xs)]))
    mean_rank = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(np.asarray(p, dtype=np.float64))
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """PR-AUC as average precision (the step-wise sum scikit-learn uses)."""
    y = np.asarray(y).astype(bool)
    if not y.any():
        return float("nan")
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    ps, ys = np.asarray(p)[order], y[order]
    distinct = np.flatnonzero(np.diff(ps)) if len(ps) > 1 else np.array([], dtype=int)
    idx = np.concatenate((distinct, [len(ps) - 1]))
    tps = np.cumsum(ys)[idx]
    fps = idx + 1 - tps
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    recall_prev = np.concatenate(([0.0], recall[:-1]))
    return float(np.sum((recall - recall_prev) * precision))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2))


def calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over equal-width probability bins."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            total += m.sum() * abs(p[m].mean() - y[m].mean())
    return float(total / len(p))


def confusion(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, int]:
    y = np.asarray(y).astype(bool)
    pred = np.asarray(p) >= threshold
    return {
        "tp": int((pred & y).sum()),
        "fp": int((pred & ~y).sum()),
        "tn": int((~pred & ~y).sum()),
        "fn": int((~pred & y).sum()),
    }


def f1_at(y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    c = confusion(y, p, threshold)
    denom = 2 * c["tp"] + c["fp"] + c["fn"]
    return 2 * c["tp"] / denom if denom else 0.0


def best_f1_threshold(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """The threshold on p that maximises F1, and that F1."""
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    ps, ys = np.asarray(p)[order], y[order]
    tps = np.cumsum(ys)
    k = np.arange(1, len(ps) + 1)
    f1 = 2 * tps / (k + ys.sum())
    # Only cut between distinct scores.
    valid = np.concatenate((np.diff(ps) != 0, [True]))
    f1 = np.where(valid, f1, -1)
    i = int(np.argmax(f1))
    return float(ps[i]), float(f1[i])


def best_value_threshold(
    y: np.ndarray, p: np.ndarray, offer_cost: float, customer_value: float, save_rate: float
) -> tuple[float, float]:
    """Threshold maximising realised retention value on labelled data, and the value per customer.

    Targeting a customer costs ``offer_cost``; a churner who is targeted stays with
    probability ``save_rate`` and is then worth ``customer_value``.
    """
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    ps, ys = np.asarray(p)[order], y[order]
    gain = np.cumsum(ys * save_rate * customer_value - offer_cost)
    valid = np.concatenate((np.diff(ps) != 0, [True]))
    gain = np.where(valid, gain, -np.inf)
    i = int(np.argmax(gain))
    if gain[i] <= 0:  # targeting nobody is better
        return 1.0, 0.0
    return float(ps[i]), float(gain[i] / len(ps))


def summarise(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, Any]:
    return {
        "roc_auc": roc_auc(y, p),
        "pr_auc": average_precision(y, p),
        "brier": brier(y, p),
        "calibration_error": calibration_error(y, p),
        "f1": f1_at(y, p, threshold),
        "confusion_matrix": confusion(y, p, threshold),
    }
