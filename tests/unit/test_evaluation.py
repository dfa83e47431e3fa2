"""The promotion gate: paired bootstrap of the AUC difference, guardrails, and the decision."""

import numpy as np
import pytest

from churnguard.domain import classification as M
from churnguard.domain import evaluation as E


def scored(n=1500, seed=0, signal=1.0, noise=1.0):
    """Labels and a score whose ranking quality grows with signal / noise."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.27
    z = signal * y + rng.normal(0, noise, n)
    return y, z


def calibrated(y, z):
    # Map scores to their observed churn rate per decile, so the calibration guardrail can pass.
    edges = np.quantile(z, np.linspace(0, 1, 11)[1:-1])
    b = np.searchsorted(edges, z)
    rate = np.array([y[b == k].mean() for k in range(10)])
    return rate[b] + 1e-6 * z  # keep the ranking within a bin


def test_weighted_auc_equals_roc_auc_with_unit_weights_and_ties():
    y, z = scored()
    p = np.round(z, 1)  # many ties
    assert E.weighted_auc(y, p, np.ones((1, len(y))))[0] == pytest.approx(M.roc_auc(y, p), abs=1e-12)
    w = np.random.default_rng(1).multinomial(len(y), np.full(len(y), 1 / len(y)))
    expanded = np.repeat(np.arange(len(y)), w)  # a weight is a repeated row
    assert E.weighted_auc(y, p, w[None, :])[0] == pytest.approx(M.roc_auc(y[expanded], p[expanded]), abs=1e-12)


def test_bootstrap_interval_covers_zero_for_the_same_model_and_excludes_it_for_a_better_one():
    y, z = scored(seed=2)
    noise = np.random.default_rng(3).normal(0, 0.02, len(y))
    same = E.paired_bootstrap_auc_difference(y, z + noise, z, n_bootstrap=500)
    assert same["low"] <= 0 <= same["high"] and same["resamples"] == 500
    worse = z + np.random.default_rng(4).normal(0, 1.5, len(y))
    better = E.paired_bootstrap_auc_difference(y, z, worse, n_bootstrap=500)
    assert better["low"] > 0
    assert better["estimate"] == pytest.approx(M.roc_auc(y, z) - M.roc_auc(y, worse))


def test_a_better_calibrated_challenger_passes():
    y, z = scored(seed=5, signal=1.4)
    champion = calibrated(y, z + np.random.default_rng(6).normal(0, 1.2, len(y)))
    challenger = calibrated(y, z)
    result = E.evaluate(y, challenger, champion, feature_importance={"tenure": 3.0, "Contract": 5.0})
    assert result.passed, result.reasons
    assert result.reasons == ["every check passed"]
    assert {c.name for c in result.checks} >= {"evidence", "minimum ROC-AUC", "calibration", "ROC-AUC against champion"}
    assert result.auc_difference["low"] > 0
    assert set(result.curves) == {"challenger", "champion", "feature_importance"}
    assert list(result.curves["feature_importance"]) == ["Contract", "tenure"]
    s = result.summary()
    assert s["passed"] and s["champion"]["roc_auc"] < s["challenger"]["roc_auc"] and "curves" not in s


def test_a_worse_challenger_is_rejected_with_the_reason():
    y, z = scored(seed=7, signal=1.4)
    champion = calibrated(y, z)
    challenger = calibrated(y, z + np.random.default_rng(8).normal(0, 1.2, len(y)))
    result = E.evaluate(y, challenger, champion)
    assert not result.passed
    assert any(r.startswith("ROC-AUC against champion") for r in result.reasons)


def test_guardrails_hold_without_a_champion():
    y, z = scored(seed=9, signal=1.4)
    good = E.evaluate(y, calibrated(y, z), None)
    assert good.passed and good.champion is None and good.auc_difference is None
    overconfident = np.clip(calibrated(y, z) * 2.5, 0, 1)  # same ranking, probabilities far too high
    bad = E.evaluate(y, overconfident, None)
    assert not bad.passed and any(r.startswith("calibration") for r in bad.reasons)
    weak = E.evaluate(y, calibrated(y, z + np.random.default_rng(1).normal(0, 4, len(y))), None)
    assert not weak.passed and any(r.startswith("minimum ROC-AUC") for r in weak.reasons)


def test_too_little_evidence_is_a_rejection_not_a_crash():
    y, z = scored(n=120, seed=10)
    result = E.evaluate(y, calibrated(y, z), calibrated(y, z))
    assert not result.passed and result.reasons[0].startswith("evidence: 120 held-out rows")
    one_class = E.evaluate(np.zeros(500, bool), np.full(500, 0.1), None)
    assert not one_class.passed and one_class.to_dict()["challenger"] == {}


def test_config_from_dict_and_validation():
    assert E.GateConfig.from_dict({"min_auc": "0.8", "n_bootstrap": "200"}).n_bootstrap == 200
    with pytest.raises(ValueError, match="unknown gate settings"):
        E.GateConfig.from_dict({"min_aux": 0.8})
    with pytest.raises(ValueError, match="confidence"):
        E.GateConfig(confidence=1.5)
    with pytest.raises(ValueError, match="same rows"):
        E.evaluate(np.zeros(3, bool), np.zeros(3), np.zeros(4))


def test_curves_are_monotone_and_bounded():
    y, z = scored(seed=11)
    p = calibrated(y, z)
    roc = E.roc_curve(y, p)
    assert roc["x"][0] == 0 and roc["x"][-1] == 1 and roc["y"][-1] == 1 and np.all(np.diff(roc["x"]) >= 0)
    assert len(roc["x"]) <= 200
    rel = E.reliability(y, p)
    assert sum(rel["n"]) == len(y) and all(0 <= v <= 1 for v in rel["y"])
    pr = E.pr_curve(y, p)
    assert all(0 <= v <= 1 for v in pr["y"]) and pr["x"][-1] == 1
