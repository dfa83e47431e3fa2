import numpy as np
import pytest
from sklearn import metrics as skm

from churnguard.domain import classification as M
from churnguard.domain.calibration import CalibrationMap


@pytest.fixture(params=[0, 1, 2])
def scored(request):
    rng = np.random.default_rng(request.param)
    y = rng.random(2000) < 0.27
    p = np.clip(rng.normal(0.3 + 0.3 * y, 0.2), 0, 1).round(2)  # rounding creates ties
    return y, p


def test_roc_auc_matches_sklearn(scored):
    y, p = scored
    assert M.roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)


def test_average_precision_matches_sklearn(scored):
    y, p = scored
    assert M.average_precision(y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)


def test_brier_and_f1_match_sklearn(scored):
    y, p = scored
    assert M.brier(y, p) == pytest.approx(skm.brier_score_loss(y, p))
    assert M.f1_at(y, p, 0.45) == pytest.approx(skm.f1_score(y, p >= 0.45))
    c = M.confusion(y, p, 0.45)
    tn, fp, fn, tp = skm.confusion_matrix(y, p >= 0.45).ravel()
    assert (c["tn"], c["fp"], c["fn"], c["tp"]) == (tn, fp, fn, tp)


def test_best_f1_threshold_is_the_best(scored):
    y, p = scored
    t, f1 = M.best_f1_threshold(y, p)
    assert f1 == pytest.approx(M.f1_at(y, p, t))
    for other in np.unique(p):
        assert M.f1_at(y, p, other) <= f1 + 1e-12


def test_value_threshold_targets_nobody_when_offers_cost_too_much(scored):
    y, p = scored
    assert M.best_value_threshold(y, p, offer_cost=1000, customer_value=10, save_rate=0.3) == (1.0, 0.0)
    t, v = M.best_value_threshold(y, p, offer_cost=5, customer_value=500, save_rate=0.3)
    assert 0 < t < 1 and v > 0


def test_calibration_is_monotone_and_fixes_a_skewed_score():
    rng = np.random.default_rng(0)
    true_p = rng.random(5000)
    y = rng.random(5000) < true_p
    skewed = true_p**3  # a badly calibrated but perfectly ranked score
    cal = CalibrationMap.fit(skewed, y)
    fixed = cal.apply(skewed)
    assert np.all(np.diff(cal.apply(np.linspace(0, 1, 101))) >= 0)
    assert M.calibration_error(y, fixed) < M.calibration_error(y, skewed) / 3
    assert CalibrationMap.from_dict(cal.to_dict()) == cal


def test_calibration_map_refuses_non_monotone_points():
    with pytest.raises(ValueError):
        CalibrationMap((0.0, 0.5, 1.0), (0.0, 0.6, 0.4))


def test_platt_keeps_the_ranking_and_calibrates_a_shifted_score():
    from churnguard.domain.calibration import PlattCalibration, fit_calibration

    rng = np.random.default_rng(1)
    true_p = rng.beta(1, 3, 20000)
    y = rng.random(20000) < true_p
    logit = np.log(true_p) - np.log1p(-true_p)
    shifted = 1 / (1 + np.exp(-(2.0 * logit + 1.0)))  # overconfident and biased upwards
    cal = fit_calibration("platt", shifted, y)
    fixed = cal.apply(shifted)
    assert M.roc_auc(y, fixed) == pytest.approx(M.roc_auc(y, shifted), abs=1e-12)
    assert M.calibration_error(y, fixed) < M.calibration_error(y, shifted) / 3
    assert cal.a == pytest.approx(0.5, rel=0.1)
    assert CalibrationMap.from_dict(cal.to_dict()) == cal
    with pytest.raises(ValueError):
        PlattCalibration(a=-1.0, b=0.0)
    with pytest.raises(ValueError, match="calibration must be"):
        fit_calibration("magic", shifted, y)
