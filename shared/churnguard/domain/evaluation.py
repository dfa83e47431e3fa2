"""The promotion gate: challenger against champion on the same fresh held-out rows.

Both models score the same labelled rows. The gate passes only when every check holds:
- enough evidence: at least ``min_rows`` rows with ``min_class_count`` of each outcome;
- the challenger's ROC-AUC is at least ``min_auc`` and its calibration error at most
  ``max_calibration_error`` (guardrails that hold with or without a champion);
- against a champion: the lower end of a paired-bootstrap confidence interval of
  AUC(challenger) - AUC(champion) is at least ``-auc_margin`` (0.01 by default: "not worse by more
  than a hundredth, with 95% confidence"; set ``auc_margin`` to 0 or below to demand a proven gain);
- no other metric (PR-AUC, Brier, calibration error) worse than the champion's beyond its margin.

The bootstrap is paired: each resample reweights the same rows for both models, so the interval
reflects the models' difference, not the sample's difficulty.

    result = evaluate(y, p_challenger, p_champion, GateConfig(), thresholds=(0.31, 0.29))
    result.passed, result.reasons
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from churnguard.domain import classification as M
from churnguard.domain.mapping import check_settings

# Metric: (higher is better?, default margin)
COMPARED = {"pr_auc": True, "brier": False, "calibration_error": False}


@dataclass(frozen=True)
class GateConfig:
    """``GateConfig.from_dict({"min_auc": 0.75})``."""

    min_rows: int = 200
    min_class_count: int = 20
    min_auc: float = 0.70
    max_calibration_error: float = 0.08
    auc_margin: float = 0.01
    pr_auc_margin: float = 0.02
    brier_margin: float = 0.005
    calibration_error_margin: float = 0.02
    n_bootstrap: int = 1000
    confidence: float = 0.95
    seed: int = 0

    def __post_init__(self) -> None:
        check_settings(
            "gate",
            [
                (not 0 < self.confidence < 1, "confidence must be in (0, 1)"),
                (self.n_bootstrap < 100, "n_bootstrap must be at least 100 for a usable interval"),
                (self.min_rows < 2 or self.min_class_count < 1, "min_rows must be >= 2 and min_class_count >= 1"),
            ],
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GateConfig:
        from churnguard.domain.mapping import dataclass_from_mapping

        return dataclass_from_mapping(cls, data, "gate settings")

    def margin(self, metric: str) -> float:
        return float(getattr(self, f"{metric}_margin"))


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class Evaluation:
    passed: bool
    reasons: list[str]
    checks: list[Check]
    rows: int
    positives: int
    challenger: dict[str, Any]
    champion: dict[str, Any] | None
    auc_difference: dict[str, Any] | None
    curves: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, curves: bool = True) -> dict[str, Any]:
        d = asdict(self)
        if not curves:
            d.pop("curves")
        return _finite(d)

    def summary(self) -> dict[str, Any]:
        """What the state machine and the registry carry: small, no curves."""
        keys = ("roc_auc", "pr_auc", "brier", "calibration_error")
        return _finite(
            {
                "passed": self.passed,
                "reasons": self.reasons,
                "rows": self.rows,
                "challenger": {k: self.challenger.get(k) for k in keys},
                "champion": {k: self.champion.get(k) for k in keys} if self.champion else None,
                "auc_difference": self.auc_difference,
            }
        )


def _finite(obj: Any) -> Any:
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ----- statistics --------------------------------------------------------------------------------
def weighted_auc(y: np.ndarray, p: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC-AUC under each row of ``weights`` (shape (B, n)); ties count one half, as in ``metrics.roc_auc``.

    A bootstrap resample is a vector of multinomial counts, so B resamples cost one sort and a few
    cumulative sums instead of B sorts.
    """
    y = np.asarray(y).astype(bool)
    order = np.argsort(np.asarray(p, dtype=np.float64), kind="mergesort")
    ps, ys = np.asarray(p, dtype=np.float64)[order], y[order]
    W = np.atleast_2d(weights)[:, order].astype(np.float64)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ps)) + 1))
    pos = np.add.reduceat(W * ys, starts, axis=1)
    neg = np.add.reduceat(W * ~ys, starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    num = np.sum(pos * (neg_below + 0.5 * neg), axis=1)
    den = pos.sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def paired_bootstrap_auc_difference(
    y: np.ndarray,
    p_a: np.ndarray,
    p_b: np.ndarray,
    n_bootstrap: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    chunk: int = 250,
) -> dict[str, Any]:
    """Percentile interval of AUC(a) - AUC(b) over paired bootstrap resamples of the same rows."""
    y = np.asarray(y).astype(bool)
    n = len(y)
    rng = np.random.default_rng(seed)
    diffs: list[np.ndarray] = []
    done = 0
    while done < n_bootstrap:
        b = min(chunk, n_bootstrap - done)
        W = rng.multinomial(n, np.full(n, 1.0 / n), size=b)
        diffs.append(weighted_auc(y, p_a, W) - weighted_auc(y, p_b, W))
        done += b
    d = np.concatenate(diffs)
    d = d[np.isfinite(d)]  # a resample without both classes has no AUC
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    return {
        "estimate": M.roc_auc(y, p_a) - M.roc_auc(y, p_b),
        "low": float(np.quantile(d, lo_q)),
        "high": float(np.quantile(d, hi_q)),
        "confidence": confidence,
        "resamples": int(d.size),
        "share_not_better": float(np.mean(d <= 0)),
    }


# ----- curves for the report ---------------------------------------------------------------------
def _thin(xs: np.ndarray, ys: np.ndarray, points: int = 200) -> tuple[list[float], list[float]]:
    if len(xs) > points:
        idx = np.unique(np.linspace(0, len(xs) - 1, points).round().astype(int))
        xs, ys = xs[idx], ys[idx]
    return [round(float(v), 5) for v in xs], [round(float(v), 5) for v in ys]


def roc_curve(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    ps, ys = np.asarray(p)[order], y[order]
    cut = np.concatenate((np.flatnonzero(np.diff(ps)), [len(ps) - 1]))
    tps, fps = np.cumsum(ys)[cut], (cut + 1) - np.cumsum(ys)[cut]
    tpr = np.concatenate(([0.0], tps / max(ys.sum(), 1)))
    fpr = np.concatenate(([0.0], fps / max((~ys).sum(), 1)))
    x, yy = _thin(fpr, tpr)
    return {"x": x, "y": yy}


def pr_curve(y: np.ndarray, p: np.ndarray) -> dict[str, list[float]]:
    y = np.asarray(y).astype(bool)
    order = np.argsort(-np.asarray(p, dtype=np.float64), kind="mergesort")
    ps, ys = np.asarray(p)[order], y[order]
    cut = np.concatenate((np.flatnonzero(np.diff(ps)), [len(ps) - 1]))
    tps = np.cumsum(ys)[cut]
    precision = tps / (cut + 1)
    recall = tps / max(ys.sum(), 1)
    x, yy = _thin(recall, precision)
    return {"x": x, "y": yy}


def reliability(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, list[Any]]:
    """Mean predicted probability against the observed churn rate, per equal-width bin."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    which = np.clip((p * bins).astype(int), 0, bins - 1)
    xs: list[float] = []
    ys: list[float] = []
    ns: list[int] = []
    for b in range(bins):
        m = which == b
        if m.any():
            xs.append(round(float(p[m].mean()), 5))
            ys.append(round(float(y[m].mean()), 5))
            ns.append(int(m.sum()))
    return {"x": xs, "y": ys, "n": ns}


# ----- the gate ----------------------------------------------------------------------------------
def evaluate(
    y: np.ndarray,
    p_challenger: np.ndarray,
    p_champion: np.ndarray | None,
    config: GateConfig | None = None,
    thresholds: tuple[float, float | None] = (0.5, None),
    feature_importance: Mapping[str, float] | None = None,
) -> Evaluation:
    """Decide whether the challenger may replace the champion (``p_champion=None``: no champion yet)."""
    cfg = config or GateConfig()
    y = np.asarray(y).astype(bool)
    pc = np.asarray(p_challenger, dtype=np.float64)
    if len(pc) != len(y) or (p_champion is not None and len(p_champion) != len(y)):
        raise ValueError("labels and both models' scores must cover the same rows")
    n, pos = int(len(y)), int(y.sum())
    checks: list[Check] = []
    enough = n >= cfg.min_rows and min(pos, n - pos) >= cfg.min_class_count
    checks.append(
        Check(
            "evidence",
            enough,
            f"{n} held-out rows, {pos} churned (need {cfg.min_rows} rows and {cfg.min_class_count} of each outcome)",
        )
    )
    challenger = M.summarise(y, pc, thresholds[0]) if n and pos and pos < n else {}
    champion = None
    diff = None
    if p_champion is not None and challenger:
        pb = np.asarray(p_champion, dtype=np.float64)
        champion = M.summarise(y, pb, thresholds[1] if thresholds[1] is not None else thresholds[0])
    if enough:
        auc, ece = challenger["roc_auc"], challenger["calibration_error"]
        checks.append(
            Check("minimum ROC-AUC", auc >= cfg.min_auc, f"challenger ROC-AUC {auc:.4f} (minimum {cfg.min_auc:g})")
        )
        checks.append(
            Check(
                "calibration",
                ece <= cfg.max_calibration_error,
                f"challenger calibration error {ece:.4f} (maximum {cfg.max_calibration_error:g})",
            )
        )
        if champion is not None:
            diff = paired_bootstrap_auc_difference(
                y, pc, np.asarray(p_champion, dtype=np.float64), cfg.n_bootstrap, cfg.confidence, cfg.seed
            )
            checks.append(
                Check(
                    "ROC-AUC against champion",
                    diff["low"] >= -cfg.auc_margin,
                    f"AUC difference {diff['estimate']:+.4f}, {cfg.confidence:.0%} interval [{diff['low']:+.4f}, "
                    f"{diff['high']:+.4f}]; its lower end must be >= {-cfg.auc_margin:+g}",
                )
            )
            for metric, higher_better in COMPARED.items():
                a, b, margin = challenger[metric], champion[metric], cfg.margin(metric)
                ok = a >= b - margin if higher_better else a <= b + margin
                word = "below" if higher_better else "above"
                checks.append(
                    Check(
                        f"{metric} against champion",
                        bool(ok),
                        f"challenger {a:.4f}, champion {b:.4f}: may be at most {margin:g} {word} it",
                    )
                )
    passed = all(c.passed for c in checks)
    reasons = [f"{c.name}: {c.detail}" for c in checks if not c.passed] or ["every check passed"]
    curves: dict[str, Any] = {}
    if challenger:
        curves = {
            "challenger": {"roc": roc_curve(y, pc), "pr": pr_curve(y, pc), "calibration": reliability(y, pc)},
        }
        if p_champion is not None:
            pb = np.asarray(p_champion, dtype=np.float64)
            curves["champion"] = {"roc": roc_curve(y, pb), "pr": pr_curve(y, pb), "calibration": reliability(y, pb)}
    if feature_importance:
        top = sorted(feature_importance.items(), key=lambda kv: -kv[1])[:20]
        curves["feature_importance"] = {k: round(float(v), 4) for k, v in top}
    return Evaluation(
        passed=passed,
        reasons=reasons,
        checks=checks,
        rows=n,
        positives=pos,
        challenger=challenger,
        champion=champion,
        auc_difference=diff,
        curves=curves,
        config=asdict(cfg),
    )
