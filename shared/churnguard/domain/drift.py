"""Drift: recent traffic against the champion's reference profile, and performance once outcomes exist.

A feature counts as drifted only when the shift is both *large* and *real*:
- large: its population stability index (PSI, over the reference bins plus a "missing" bin) is at
  least ``psi`` (0.1 by default: "moderate shift" in the usual reading; 0.2 would miss a
  Month-to-month share rising 20 points, whose PSI is about 0.18);
- real: its test (two-sample Kolmogorov-Smirnov against the stored reference sample for numeric
  features, chi-square homogeneity against the reference counts for categorical ones) is
  significant after a Bonferroni correction over every test in the check (``alpha`` / tests).

PSI alone flags small samples by chance and tests alone flag trivial shifts on large samples; the
pair keeps the false-alarm rate on unshifted resamples near zero (tests/unit/test_drift_rates.py
measures it). Below ``min_rows`` recent rows no verdict is given: the report says the data is
insufficient instead of alarming.

    report = check_drift(profile, schema, X, scores, DriftThresholds())
    report.decision   # "ok" | "retrain" | "insufficient_data"
    report.reasons    # ["tenure drifted: PSI 0.84, KS p=1.2e-40", ...]

Labels for churn arrive weeks late, so the report also *estimates* the champion's ROC-AUC, precision
and recall on recent traffic from its calibrated probabilities alone (``estimate_performance``,
confidence-based performance estimation): if the model is calibrated, each customer churns with the
probability it was given, so the metric's distribution can be simulated; the estimate is its
expectation and the interval its 2.5-97.5% range. This holds under covariate shift (who the customers
are changes, not what makes them churn); a change in what makes them churn is seen only once outcomes
arrive (``assess_performance``). tests/unit/test_performance_estimation.py measures the coverage.

Pure numpy (the p-values are computed here), so the drift function needs no scipy or LightGBM.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from churnguard.domain import classification as M
from churnguard.domain.mapping import check_settings
from churnguard.domain.outcomes import SERVED_VARIANTS, Outcome, join_point_in_time
from churnguard.domain.prediction_log import parse_ts
from churnguard.domain.reference_profile import categorical_frequencies, numeric_frequencies
from churnguard.domain.schema import CategoricalFeature, Schema

# Proportions are floored at this before PSI's logarithm, so an empty bin costs a finite amount.
PSI_FLOOR = 1e-4

DECISIONS = ("ok", "retrain", "insufficient_data")


# ----- configuration ---------------------------------------------------------------------------
@dataclass(frozen=True)
class DriftThresholds:
    """When a drift check alarms. ``DriftThresholds.from_dict({"psi": 0.15})``."""

    min_rows: int = 500
    psi: float = 0.1
    alpha: float = 0.05
    # Higher for scores: the reference scores are out-of-fold while served ones come from the final
    # model, which alone gives a score PSI of 0.05-0.08 on unshifted data (tests/unit/test_drift_rates.py).
    score_psi: float = 0.15
    min_outcomes: int = 200
    min_class_count: int = 20
    max_auc_drop: float = 0.05
    max_calibration_error: float = 0.1
    # Estimated (label-free) precision or recall this far below the training figure counts as degradation
    # when even the interval's upper end is below it; the ROC-AUC estimate uses max_auc_drop.
    max_estimated_pr_drop: float = 0.15

    def __post_init__(self) -> None:
        check_settings(
            "drift thresholds",
            [
                (
                    self.min_rows < 1 or self.min_outcomes < 1 or self.min_class_count < 1,
                    "min_rows, min_outcomes and min_class_count must be >= 1",
                ),
                (not 0 < self.alpha < 1, "alpha must be in (0, 1)"),
                (self.psi <= 0 or self.score_psi <= 0, "psi and score_psi must be > 0"),
                (
                    self.max_auc_drop < 0 or not 0 < self.max_calibration_error <= 1,
                    "max_auc_drop must be >= 0 and max_calibration_error in (0, 1]",
                ),
                (self.max_estimated_pr_drop < 0, "max_estimated_pr_drop must be >= 0"),
            ],
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DriftThresholds:
        from churnguard.domain.mapping import dataclass_from_mapping

        return dataclass_from_mapping(cls, data, "drift thresholds")


# ----- statistics --------------------------------------------------------------------------------
def psi(expected: Sequence[float] | np.ndarray, actual: Sequence[float] | np.ndarray) -> float:
    """Population stability index of two distributions over the same bins (each sums to 1)."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), PSI_FLOOR)
    a = np.maximum(np.asarray(actual, dtype=np.float64), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for the Kolmogorov distribution (the large-sample law of sqrt(n) * D)."""
    if x <= 0.1:
        return 1.0
    if x < 1.0:
        # The alternating series converges slowly here; Jacobi's dual form is fast.
        k = np.arange(1, 20)
        cdf = math.sqrt(2 * math.pi) / x * float(np.sum(np.exp(-((2 * k - 1) ** 2) * math.pi**2 / (8 * x * x))))
        return float(min(1.0, max(0.0, 1.0 - cdf)))
    k = np.arange(1, 101)
    return float(min(1.0, max(0.0, 2.0 * np.sum((-1.0) ** (k - 1) * np.exp(-2.0 * k * k * x * x)))))


def ks_2samp(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov statistic and asymptotic p-value (as scipy's ``method="asymp"``)."""
    x = np.sort(np.asarray(x, dtype=np.float64))
    y = np.sort(np.asarray(y, dtype=np.float64))
    n, m = len(x), len(y)
    if n == 0 or m == 0:
        return 0.0, 1.0
    grid = np.concatenate((x, y))
    d = float(np.max(np.abs(np.searchsorted(x, grid, side="right") / n - np.searchsorted(y, grid, side="right") / m)))
    return d, kolmogorov_sf(math.sqrt(n * m / (n + m)) * d)


def chi2_sf(x: float, dof: int) -> float:
    """P(X > x) for a chi-square variable with ``dof`` degrees of freedom (regularised upper gamma)."""
    if dof <= 0:
        return 1.0
    if x <= 0:
        return 1.0
    a, z = dof / 2.0, x / 2.0
    log_front = -z + a * math.log(z) - math.lgamma(a)
    if z < a + 1:  # series for the lower function P(a, z)
        term = total = 1.0 / a
        ap = a
        for _ in range(1000):
            ap += 1
            term *= z / ap
            total += term
            if abs(term) < abs(total) * 1e-15:
                break
        return float(min(1.0, max(0.0, 1.0 - total * math.exp(log_front))))
    # Lentz's continued fraction for the upper function Q(a, z).
    tiny = 1e-300
    b = z + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 1000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-15:
            break
    return float(min(1.0, max(0.0, math.exp(log_front) * h)))


def chi2_homogeneity(a: np.ndarray, b: np.ndarray) -> tuple[float, int, float]:
    """Chi-square test that two count vectors come from one distribution: (statistic, dof, p)."""
    table = np.vstack((np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)))
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0, 0, 1.0
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
    stat = float(np.sum((table - expected) ** 2 / expected))
    dof = table.shape[1] - 1
    return stat, dof, chi2_sf(stat, dof)


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley and McNeil's (1982) standard error of a ROC-AUC."""
    if n_pos == 0 or n_neg == 0 or not math.isfinite(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return math.sqrt(max(var, 0.0))


# ----- report ------------------------------------------------------------------------------------
@dataclass
class FeatureDrift:
    name: str
    kind: str  # numeric | categorical | score
    psi: float
    test: str  # ks | chi2
    statistic: float
    p_value: float
    drifted: bool
    rows: int
    bins: list[str]
    reference: list[float]
    recent: list[float]
    invalid: int = 0


@dataclass
class PerformanceCheck:
    status: str  # ok | degraded | insufficient_data
    labelled: int
    positives: int
    roc_auc: float | None = None
    roc_auc_se: float | None = None
    calibration_error: float | None = None
    reference_roc_auc: float | None = None
    reference_calibration_error: float | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class MetricEstimate:
    """A metric estimated without labels: its expected value and the central 95% of its simulated values,
    beside the training figure (None when the bundle has none)."""

    estimate: float
    low: float
    high: float
    reference: float | None = None


@dataclass
class PerformanceEstimate:
    status: str  # ok | degraded | insufficient_data
    rows: int
    expected_positives: float
    threshold: float | None = None
    roc_auc: MetricEstimate | None = None
    precision: MetricEstimate | None = None
    recall: MetricEstimate | None = None
    draws: int = 0
    method: str = "confidence-based performance estimation from calibrated probabilities"
    reasons: list[str] = field(default_factory=list)


@dataclass
class DriftReport:
    decision: str
    reasons: list[str]
    rows: int
    thresholds: dict[str, Any]
    tests: int
    features: list[FeatureDrift]
    score: FeatureDrift | None = None
    performance: PerformanceCheck | None = None
    estimated: PerformanceEstimate | None = None
    champion_version: str | None = None
    window: dict[str, str] | None = None
    generated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    notes: list[str] = field(default_factory=list)

    @property
    def drifted_features(self) -> list[str]:
        return [f.name for f in self.features if f.drifted]

    @property
    def max_psi(self) -> float:
        return max((f.psi for f in self.features), default=0.0)

    @property
    def triggers(self) -> list[str]:
        """The retraining triggers this report fires: ``drift`` (a feature or the score distribution
        drifted) and ``degradation`` (measured on outcomes, or estimated without them)."""
        out = []
        if self.drifted_features or (self.score is not None and self.score.drifted):
            out.append("drift")
        if any(c is not None and c.status == "degraded" for c in (self.performance, self.estimated)):
            out.append("degradation")
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["drifted_features"] = self.drifted_features
        d["triggers"] = self.triggers
        return _finite(d)


def _finite(obj: Any) -> Any:
    # JSON has no NaN: a statistic that could not be computed is null.
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ----- the checks --------------------------------------------------------------------------------
def _numeric_bins(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    labels = [f"< {edges[0]:g}"]
    labels += [f"{a:g} to < {b:g}" for a, b in zip(edges, edges[1:], strict=False)]
    labels.append(f">= {edges[-1]:g}")
    return labels


def _with_missing(freqs: Sequence[float], missing: float) -> np.ndarray:
    return np.append(np.asarray(freqs, dtype=np.float64) * (1 - missing), missing)


def _numeric_drift(
    name: str,
    kind: str,
    ref: Mapping[str, Any],
    col: np.ndarray,
    alpha_each: float,
    th: DriftThresholds,
    psi_limit: float,
) -> FeatureDrift:
    edges = list(ref.get("edges") or [])
    freqs, missing = numeric_frequencies(col, edges)
    ref_missing = float(ref.get("missing") or 0.0)
    expected = _with_missing(ref["frequencies"], ref_missing)
    actual = _with_missing(freqs, missing)
    value = psi(expected, actual)
    stat, p = ks_2samp(col[np.isfinite(col)], np.asarray(ref.get("sample") or [], dtype=np.float64))
    if ref_missing > 0 or missing > 0:
        # KS sees only present values; a change in the missing share is tested on its own, and the
        # smaller p-value is doubled (Bonferroni within the feature).
        ref_rows = float(ref.get("rows") or len(col))
        _, _, p_missing = chi2_homogeneity(
            np.round([ref_rows * (1 - ref_missing), ref_rows * ref_missing]),
            np.array([1 - missing, missing]) * len(col),
        )
        p = min(1.0, 2 * min(p, p_missing))
    return FeatureDrift(
        name=name,
        kind=kind,
        psi=value,
        test="ks",
        statistic=stat,
        p_value=p,
        drifted=bool(value >= psi_limit and p < alpha_each),
        rows=int(len(col)),
        bins=_numeric_bins(edges) + ["missing"],
        reference=expected.tolist(),
        recent=actual.tolist(),
    )


def _categorical_drift(
    name: str, ref: Mapping[str, Any], col: np.ndarray, reference_rows: int, alpha_each: float, th: DriftThresholds
) -> FeatureDrift:
    categories = list(ref["categories"])
    freqs, missing = categorical_frequencies(col, len(categories))
    expected = _with_missing(ref["frequencies"], float(ref.get("missing") or 0.0))
    actual = _with_missing(freqs, missing)
    value = psi(expected, actual)
    # Homogeneity against the reference *counts*: treating the reference shares as exact would
    # ignore their own sampling noise and raise the false-alarm rate.
    stat, _, p = chi2_homogeneity(np.round(expected * reference_rows), actual * len(col))
    return FeatureDrift(
        name=name,
        kind="categorical",
        psi=value,
        test="chi2",
        statistic=stat,
        p_value=p,
        drifted=bool(value >= th.psi and p < alpha_each),
        rows=int(len(col)),
        bins=categories + ["missing"],
        reference=expected.tolist(),
        recent=actual.tolist(),
    )


def score_shift(
    expected: Mapping[str, Any], scores: np.ndarray, psi_limit: float, alpha: float, rows: int | None = None
) -> FeatureDrift:
    """Served ``scores`` against an expected score profile (``reference_profile.score_profile``): PSI over
    its bins and a KS test against its sample; shifted when PSI >= ``psi_limit`` and p < ``alpha``."""
    th = DriftThresholds(score_psi=psi_limit, alpha=alpha)
    ref = dict(expected, missing=0.0, rows=rows or len(expected.get("sample") or []))
    return _numeric_drift("churn_probability", "score", ref, np.asarray(scores, dtype=np.float64), alpha, th, psi_limit)


def check_drift(
    profile: Mapping[str, Any],
    schema: Schema,
    X: np.ndarray,
    scores: np.ndarray | None,
    thresholds: DriftThresholds | None = None,
    *,
    performance: PerformanceCheck | None = None,
    estimated: PerformanceEstimate | None = None,
    invalid: Mapping[str, int] | None = None,
    champion_version: str | None = None,
    window: dict[str, str] | None = None,
) -> DriftReport:
    """Compare encoded recent rows ``X`` (schema order) and their ``scores`` with a reference profile."""
    th = thresholds or DriftThresholds()
    rows = int(X.shape[0])
    ref_features = profile.get("features", {})
    names = [f.name for f in schema.features if f.name in ref_features]
    has_scores = scores is not None and len(scores) > 0 and "scores" in profile
    n_tests = len(names) + (1 if has_scores else 0)
    alpha_each = th.alpha / max(n_tests, 1)
    notes: list[str] = []
    missing_profile = [f.name for f in schema.features if f.name not in ref_features]
    if missing_profile:
        notes.append(f"no reference profile for {', '.join(missing_profile)}: not checked")

    features: list[FeatureDrift] = []
    score_drift: FeatureDrift | None = None
    enough = rows >= th.min_rows
    if enough:
        ref_rows = int(profile.get("rows") or 0) or rows
        for j, f in enumerate(schema.features):
            if f.name not in ref_features:
                continue
            ref = ref_features[f.name]
            if isinstance(f, CategoricalFeature):
                fd = _categorical_drift(f.name, ref, X[:, j], ref_rows, alpha_each, th)
            else:
                fd = _numeric_drift(f.name, "numeric", {**ref, "rows": ref_rows}, X[:, j], alpha_each, th, th.psi)
            fd.invalid = int((invalid or {}).get(f.name, 0))
            features.append(fd)
        if has_scores:
            score_ref = dict(profile["scores"], missing=0.0)
            score_drift = _numeric_drift(
                "churn_probability",
                "score",
                score_ref,
                np.asarray(scores, dtype=np.float64),
                alpha_each,
                th,
                th.score_psi,
            )

    reasons: list[str] = []
    for fd in features + ([score_drift] if score_drift else []):
        if fd.drifted:
            what = "the score distribution" if fd.kind == "score" else fd.name
            reasons.append(
                f"{what} drifted: PSI {fd.psi:.3f} >= {th.score_psi if fd.kind == 'score' else th.psi:g}, "
                f"{fd.test.upper()} p={fd.p_value:.2g} < {alpha_each:.2g} (alpha {th.alpha:g} / {n_tests} tests)"
            )
    if performance is not None and performance.status == "degraded":
        reasons.extend(performance.reasons)
    if estimated is not None and estimated.status == "degraded":
        reasons.extend(estimated.reasons)

    if reasons:
        decision = "retrain"
    elif not enough:
        decision = "insufficient_data"
        reasons.append(f"only {rows} predictions in the window; at least {th.min_rows} are needed to judge drift")
    else:
        decision = "ok"
    if performance is not None and performance.status == "insufficient_data":
        notes.append(performance.reasons[0] if performance.reasons else "too few outcomes to judge performance")
    if enough and estimated is not None and estimated.status == "insufficient_data":
        notes.append(estimated.reasons[0])
    return DriftReport(
        decision=decision,
        reasons=reasons,
        rows=rows,
        thresholds=asdict(th),
        tests=n_tests,
        features=features,
        score=score_drift,
        performance=performance,
        estimated=estimated,
        champion_version=champion_version,
        window=window,
        notes=notes,
    )


def assess_performance(
    y: np.ndarray, p: np.ndarray, reference_metrics: Mapping[str, Any], thresholds: DriftThresholds | None = None
) -> PerformanceCheck:
    """ROC-AUC and calibration of the champion on labelled recent predictions, against its training figures.

    Degraded when the AUC is below the reference by more than ``max_auc_drop`` even at the upper end of
    a one-sided 95% interval (so a small sample's noise does not alarm), or when the calibration error
    exceeds ``max_calibration_error``.
    """
    th = thresholds or DriftThresholds()
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=np.float64)
    n, pos = int(len(y)), int(y.sum())
    ref_auc = reference_metrics.get("cv_roc_auc")
    ref_ece = reference_metrics.get("calibration_error")
    if n < th.min_outcomes or min(pos, n - pos) < th.min_class_count:
        return PerformanceCheck(
            status="insufficient_data",
            labelled=n,
            positives=pos,
            reference_roc_auc=ref_auc,
            reference_calibration_error=ref_ece,
            reasons=[
                f"only {n} labelled predictions ({pos} churned); performance needs at least {th.min_outcomes} "
                f"with {th.min_class_count} of each outcome"
            ],
        )
    auc = M.roc_auc(y, p)
    se = auc_standard_error(auc, pos, n - pos)
    ece = M.calibration_error(y, p)
    reasons = []
    if ref_auc is not None and auc + 1.645 * se < float(ref_auc) - th.max_auc_drop:
        reasons.append(
            f"ROC-AUC on {n} labelled predictions is {auc:.3f} (± {se:.3f}), below the training "
            f"{float(ref_auc):.3f} by more than {th.max_auc_drop:g}"
        )
    if ece > th.max_calibration_error:
        reasons.append(f"calibration error on {n} labelled predictions is {ece:.3f} > {th.max_calibration_error:g}")
    return PerformanceCheck(
        status="degraded" if reasons else "ok",
        labelled=n,
        positives=pos,
        roc_auc=auc,
        roc_auc_se=se,
        calibration_error=ece,
        reference_roc_auc=ref_auc,
        reference_calibration_error=ref_ece,
        reasons=reasons,
    )


# ----- performance without labels ----------------------------------------------------------------
# Simulated label sets behind each interval; 400 put the 2.5% and 97.5% quantiles within about a
# hundredth of a standard deviation of where 10,000 put them, at a few milliseconds per 10,000 rows.
ESTIMATE_DRAWS = 400


def expected_roc_auc(p: np.ndarray, scores: np.ndarray | None = None) -> float:
    """The ROC-AUC to expect if each customer churns with probability ``p`` (independently), ranking by
    ``scores`` (``p`` itself when None): expected correctly ordered (churner, stayer) pairs, ties counted
    half, over the expected number of such pairs."""
    p = np.asarray(p, dtype=np.float64)
    s = p if scores is None else np.asarray(scores, dtype=np.float64)
    q = 1.0 - p
    order = np.argsort(s, kind="mergesort")
    ss, ps, qs = s[order], p[order], q[order]
    # Stayer mass strictly below each score, and within its tie group (a customer's own pair excluded).
    boundaries = np.flatnonzero(np.diff(ss)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [len(ss)]))
    q_cum = np.concatenate(([0.0], np.cumsum(qs)))
    below = np.repeat(q_cum[starts], ends - starts)
    tied = np.repeat(q_cum[ends] - q_cum[starts], ends - starts) - qs
    ordered = float(np.sum(ps * (below + 0.5 * tied)))
    pairs = float(p.sum() * q.sum() - np.sum(p * q))
    return ordered / pairs if pairs > 0 else float("nan")


def _reference_precision_recall(metrics: Mapping[str, Any]) -> tuple[float | None, float | None]:
    cm = metrics.get("confusion_matrix")
    if not isinstance(cm, Mapping):
        return None, None
    tp, fp, fn = (float(cm.get(k) or 0) for k in ("tp", "fp", "fn"))
    return (tp / (tp + fp) if tp + fp else None), (tp / (tp + fn) if tp + fn else None)


def estimate_performance(
    p: np.ndarray,
    threshold: float | None,
    reference_metrics: Mapping[str, Any],
    thresholds: DriftThresholds | None = None,
    *,
    draws: int = ESTIMATE_DRAWS,
    seed: int = 0,
) -> PerformanceEstimate:
    """ROC-AUC, precision and recall the champion can be expected to have on ``p`` (its calibrated
    probabilities for recent traffic), each with the central 95% of its values over ``draws`` label sets
    simulated from ``p``. Degraded when even an interval's upper end is below the training figure by more
    than ``max_auc_drop`` (ROC-AUC) or ``max_estimated_pr_drop`` (precision, recall at the threshold)."""
    th = thresholds or DriftThresholds()
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    p = p[np.isfinite(p)]
    n = int(len(p))
    expected = float(p.sum())
    ref_auc = reference_metrics.get("cv_roc_auc")
    ref_precision, ref_recall = _reference_precision_recall(reference_metrics)
    if n < th.min_rows or min(expected, n - expected) < th.min_class_count:
        return PerformanceEstimate(
            status="insufficient_data",
            rows=n,
            expected_positives=expected,
            threshold=threshold,
            reasons=[
                f"only {n} scored predictions ({expected:.0f} expected churners); estimating performance needs "
                f"at least {th.min_rows} with {th.min_class_count} expected of each outcome"
            ],
        )
    rng = np.random.default_rng(seed)
    ranks = M.average_ranks(p)
    predicted = p >= threshold if threshold is not None else None
    aucs, precisions, recalls = [], [], []
    for start in range(0, draws, 50):  # blocks of draws keep memory at 50 x n booleans
        Y = rng.random((min(50, draws - start), n)) < p
        pos = Y.sum(axis=1).astype(np.float64)
        neg = n - pos
        with np.errstate(invalid="ignore", divide="ignore"):
            aucs.append((Y @ ranks - pos * (pos + 1) / 2.0) / (pos * neg))
            if predicted is not None:
                tp = Y[:, predicted].sum(axis=1).astype(np.float64)
                precisions.append(tp / max(int(predicted.sum()), 1))
                recalls.append(tp / pos)

    def summary(values: list[np.ndarray], point: float, reference: Any) -> MetricEstimate:
        v = np.concatenate(values)
        v = v[np.isfinite(v)]
        low, high = np.quantile(v, [0.025, 0.975]) if v.size else (float("nan"), float("nan"))
        return MetricEstimate(point, float(low), float(high), float(reference) if reference is not None else None)

    auc = summary(aucs, expected_roc_auc(p), ref_auc)
    precision = recall = None
    if predicted is not None:
        tp_expected = float(p[predicted].sum())
        precision = summary(precisions, tp_expected / max(int(predicted.sum()), 1), ref_precision)
        recall = summary(recalls, tp_expected / expected, ref_recall)
    reasons = []
    for name, m, limit in (
        ("ROC-AUC", auc, th.max_auc_drop),
        ("precision", precision, th.max_estimated_pr_drop),
        ("recall", recall, th.max_estimated_pr_drop),
    ):
        if m is not None and m.reference is not None and m.high < m.reference - limit:
            reasons.append(
                f"estimated {name} on {n} recent predictions is {m.estimate:.3f} (95% interval {m.low:.3f} to "
                f"{m.high:.3f}), below the training {m.reference:.3f} by more than {limit:g}"
            )
    return PerformanceEstimate(
        status="degraded" if reasons else "ok",
        rows=n,
        expected_positives=expected,
        threshold=threshold,
        roc_auc=auc,
        precision=precision,
        recall=recall,
        draws=draws,
        reasons=reasons,
    )


# ----- the prediction log ------------------------------------------------------------------------
def encode_logged_features(schema: Schema, records: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, dict[str, int]]:
    """Encode the ``features`` of log records column by column; values the schema does not allow
    become missing and are counted per feature (the API validates, so these should be rare)."""
    X = np.full((len(records), len(schema.features)), np.nan)
    invalid: dict[str, int] = {}
    feats = [r.get("features") or {} for r in records]
    for j, f in enumerate(schema.features):
        bad = 0
        if isinstance(f, CategoricalFeature):
            for i, fr in enumerate(feats):
                v = fr.get(f.name)
                if v is None or (isinstance(v, str) and not v.strip()):
                    continue
                c = f.code_of(v.strip() if isinstance(v, str) else str(v))
                if c is None:
                    bad += 1
                else:
                    X[i, j] = c
        else:
            for i, fr in enumerate(feats):
                v = fr.get(f.name)
                if v is None or isinstance(v, bool) or (isinstance(v, str) and not v.strip()):
                    bad += isinstance(v, bool)
                    continue
                try:
                    x = float(v)
                except (TypeError, ValueError):
                    bad += 1
                    continue
                if math.isfinite(x):
                    X[i, j] = x
                else:
                    bad += 1
        if bad:
            invalid[f.name] = bad
    return X, invalid


def check_prediction_log(
    metadata: Mapping[str, Any],
    records: Sequence[Mapping[str, Any]],
    outcomes: Iterable[Outcome] = (),
    thresholds: DriftThresholds | None = None,
    *,
    since: datetime | None = None,
    window: dict[str, str] | None = None,
    max_outcome_age_days: int | None = None,
) -> DriftReport:
    """The drift check over prediction-log records, against a champion bundle's ``metadata``.

    Features come from every record except the shadow variant's (those duplicate served requests)
    made at or after ``since``; scores only from the champion version's own records (another
    version's scores are not comparable with this reference). Outcomes are joined point-in-time
    against all of the champion's records given.
    """
    th = thresholds or DriftThresholds()
    schema = Schema.from_dict(metadata["schema"])
    version = metadata.get("version")
    recent = [
        r
        for r in records
        if r.get("variant") != "shadow" and (since is None or (parse_ts(r.get("ts")) or since) >= since)
    ]
    X, invalid = encode_logged_features(schema, recent)
    scores = np.asarray(
        [
            float(r["churn_probability"])
            for r in recent
            if r.get("model_version") == version and isinstance(r.get("churn_probability"), (int, float))
        ],
        dtype=np.float64,
    )
    outcomes = list(outcomes)
    performance = None
    if outcomes:
        # The champion's own served predictions (shadow scores were never answered), as one group.
        joined = join_point_in_time(
            records,
            outcomes,
            model_version=version,
            variants=SERVED_VARIANTS,
            by_variant=False,
            max_age_days=max_outcome_age_days,
        )
        y = np.array([r["churned"] for r in joined], dtype=bool)
        p = np.array([r["churn_probability"] for r in joined], dtype=np.float64)
        performance = assess_performance(y, p, metadata.get("metrics") or {}, th)
    threshold = metadata.get("threshold")
    estimated = estimate_performance(
        scores, float(threshold) if threshold is not None else None, metadata.get("metrics") or {}, th
    )
    return check_drift(
        metadata["reference_profile"],
        schema,
        X,
        scores,
        th,
        performance=performance,
        estimated=estimated,
        invalid=invalid,
        champion_version=version,
        window=window,
    )
