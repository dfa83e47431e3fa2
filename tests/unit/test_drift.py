"""Drift statistics against scipy, the decision rules, and the point-in-time outcome join."""

import numpy as np
import pytest
from scipy import stats

from churnguard.domain import drift as D
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.reference_profile import build_profile
from tests.conftest import synth_frame


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ks_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=300), rng.normal(0.15, 1.0, size=500).round(1)  # rounding creates ties
    d, p = D.ks_2samp(x, y)
    ref = stats.ks_2samp(x, y, method="asymp")
    assert d == pytest.approx(ref.statistic, abs=1e-12)
    assert p == pytest.approx(stats.kstwobign.sf(np.sqrt(300 * 500 / 800) * d), rel=1e-9)


@pytest.mark.parametrize("x,dof", [(0.5, 1), (3.0, 2), (20.0, 5), (50.0, 10), (1e-3, 3), (200.0, 18), (7.9, 7)])
def test_chi2_sf_matches_scipy(x, dof):
    assert D.chi2_sf(x, dof) == pytest.approx(stats.chi2.sf(x, dof), rel=1e-9, abs=1e-300)


def test_chi2_homogeneity_matches_scipy():
    a, b = np.array([120, 40, 0, 40]), np.array([300, 60, 0, 140])
    stat, dof, p = D.chi2_homogeneity(a, b)
    ref = stats.chi2_contingency(np.vstack((a, b))[:, [0, 1, 3]], correction=False)
    assert (stat, dof) == (pytest.approx(ref.statistic), ref.dof)
    assert p == pytest.approx(ref.pvalue, rel=1e-9)


def test_psi_is_zero_for_equal_and_grows_with_shift():
    e = [0.55, 0.21, 0.24]
    assert D.psi(e, e) == 0
    small, large = D.psi(e, [0.6, 0.19, 0.21]), D.psi(e, [0.75, 0.1167, 0.1333])
    assert 0 < small < 0.02 < 0.15 < large < 0.2  # the +20-point Month-to-month shift: PSI ~0.18
    assert np.isfinite(D.psi([0.5, 0.5, 0.0], [0.4, 0.4, 0.2]))  # an empty reference bin stays finite


def test_thresholds_from_dict_rejects_unknown_and_bad_values():
    assert D.DriftThresholds.from_dict({"psi": "0.2", "min_rows": "100"}).psi == 0.2
    with pytest.raises(ValueError, match="unknown drift thresholds"):
        D.DriftThresholds.from_dict({"psy": 0.2})
    with pytest.raises(ValueError, match="alpha"):
        D.DriftThresholds(alpha=0)


def score(schema, X):
    """A fixed churn score standing in for a model: drift checks read scores, never a model."""
    col = {n: X[:, j] for j, n in enumerate(schema.feature_names)}
    logit = 1.2 * (col["Contract"] == 0) - 0.04 * col["tenure"] + 0.8 * (col["InternetService"] == 1) - 0.6
    return 1 / (1 + np.exp(-logit))


@pytest.fixture(scope="module")
def reference(schema):
    """A champion's metadata as a bundle stores it, built from 3,000 generated customers."""
    X = FeatureEncoder(schema).encode_frame(synth_frame(3000, seed=3))
    return {
        "version": "v-ref",
        "schema": schema.to_dict(),
        "metrics": {"cv_roc_auc": 0.8, "calibration_error": 0.03},
        "reference_profile": build_profile(schema, X, score(schema, X)),
    }


@pytest.fixture(scope="module")
def recent(schema):
    X = FeatureEncoder(schema).encode_frame(synth_frame(3000, seed=21))
    return X, score(schema, X)


def test_unshifted_sample_is_ok_and_reports_every_feature(schema, reference, recent):
    X, s = recent
    report = D.check_drift(reference["reference_profile"], schema, X, s)
    assert report.decision == "ok", report.reasons
    assert [f.name for f in report.features] == schema.feature_names
    assert report.tests == len(schema.features) + 1
    assert report.score is not None and not report.score.drifted
    for f in report.features:
        assert len(f.bins) == len(f.reference) == len(f.recent)
        assert sum(f.reference) == pytest.approx(1) and sum(f.recent) == pytest.approx(1)
    d = report.to_dict()
    assert d["drifted_features"] == [] and d["decision"] == "ok"


def test_too_few_rows_says_so_instead_of_alarming(schema, reference, recent):
    X, s = recent
    Xs = X[:50].copy()
    Xs[:, schema.feature_names.index("tenure")] = 0  # an obvious shift, but on 50 rows
    report = D.check_drift(reference["reference_profile"], schema, Xs, s[:50], D.DriftThresholds(min_rows=500))
    assert report.decision == "insufficient_data"
    assert "only 50 predictions" in report.reasons[0] and "500" in report.reasons[0]
    assert report.features == []


def test_missing_values_appearing_are_drift(schema, reference, recent):
    X, s = recent
    Xs = X.copy()
    j = schema.feature_names.index("MonthlyCharges")
    Xs[: len(Xs) // 3, j] = np.nan  # a third of the rows lose a value that was always present
    report = D.check_drift(reference["reference_profile"], schema, Xs, s)
    assert report.decision == "retrain" and "MonthlyCharges" in report.drifted_features
    fd = next(f for f in report.features if f.name == "MonthlyCharges")
    assert fd.bins[-1] == "missing" and fd.recent[-1] == pytest.approx(1 / 3, abs=0.01)


def test_encode_logged_features_counts_values_the_schema_forbids(schema):
    records = [
        {"features": {"Contract": "Month-to-month", "tenure": 3, "TotalCharges": None}},
        {"features": {"Contract": "Monthly", "tenure": "x", "TotalCharges": "12.5"}},
        {"features": {}},
    ]
    X, invalid = D.encode_logged_features(schema, records)
    c, t, tc = (schema.feature_names.index(n) for n in ("Contract", "tenure", "TotalCharges"))
    assert X[0, c] == 0 and X[0, t] == 3 and np.isnan(X[0, tc])
    assert np.isnan(X[1, c]) and np.isnan(X[1, t]) and X[1, tc] == 12.5
    assert invalid == {"Contract": 1, "tenure": 1}


def test_performance_needs_enough_outcomes_and_flags_degradation():
    rng = np.random.default_rng(0)
    y = rng.random(3000) < 0.27
    good = np.clip(np.where(y, rng.beta(4, 5, 3000), rng.beta(2, 7, 3000)), 0, 1)
    ref = {"cv_roc_auc": M_auc(y, good), "calibration_error": 0.03}
    few = D.assess_performance(y[:100], good[:100], ref)
    assert few.status == "insufficient_data" and "only 100 labelled" in few.reasons[0]
    ok = D.assess_performance(y, good, ref, D.DriftThresholds(max_calibration_error=0.2))
    assert ok.status == "ok", ok.reasons
    noisy = np.clip(good + rng.normal(0, 0.35, 3000), 0, 1)  # a model that lost most of its signal
    bad = D.assess_performance(y, noisy, ref, D.DriftThresholds(max_calibration_error=0.5))
    assert bad.status == "degraded" and "ROC-AUC" in bad.reasons[0]


def M_auc(y, p):
    from churnguard.domain.classification import roc_auc

    return roc_auc(y, p)


def test_prediction_log_check_uses_champion_scores_and_joins_outcomes(reference, recent, schema):
    X, s = recent
    frame = synth_frame(3000, seed=21)
    cols = schema.feature_names
    records = []
    for i, row in enumerate(frame[cols].to_dict("records")):
        records.append(
            {
                "ts": f"2026-03-0{1 + i % 5}T10:00:00.000000Z",
                "model_version": reference["version"],
                "variant": "champion",
                "customer_key": f"k{i}",
                "features": row,
                "churn_probability": float(s[i]),
                "will_churn": bool(s[i] > 0.5),
            }
        )
    shadow = [{**r, "variant": "shadow", "model_version": "v-other", "churn_probability": 0.99} for r in records[:500]]
    churned = (frame["Churn"] == "Yes").to_numpy()
    outcomes = [(f"k{i}", bool(churned[i]), "2026-03-20") for i in range(3000)]
    # The stand-in score ranks well but is not calibrated: allow for that here.
    report = D.check_prediction_log(reference, records + shadow, outcomes, D.DriftThresholds(max_calibration_error=0.3))
    assert report.rows == 3000  # shadow rows duplicate served requests: not counted
    assert report.decision == "ok", report.reasons
    assert report.score.rows == 3000
    assert report.performance.status == "ok" and report.performance.labelled == 3000
    assert report.performance.roc_auc > 0.65
