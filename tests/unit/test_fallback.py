"""The base-rate fallback: honest, flagged, the same for everybody, and valid for any schema."""

import math

import pytest

from churnguard.domain.fallback import FALLBACK_VERSION, BaseRateEstimate, estimate_from_metrics


def test_every_customer_gets_the_base_rate_flagged_as_fallback():
    est = BaseRateEstimate(base_rate=0.2654, threshold=0.31, source="positive_rate of v1")
    out = est.predict_records([{"tenure": 1}, {"anything": "else"}, {}])
    assert len(out) == 3
    for p in out:
        assert p["fallback"] is True
        assert p["churn_probability"] == 0.2654
        assert p["will_churn"] is False
        assert p["risk_level"] == "low"
        assert p["reasons"] == []
        assert p["model_version"] == FALLBACK_VERSION
        assert "not a personal score" in p["recommendation"] and "26.5%" in p["recommendation"]


@pytest.mark.parametrize("rate", [0.0, 0.3, 0.31, 0.7, 1.0])
def test_a_fallback_flags_nobody_whatever_the_base_rate(rate):
    """At or above the threshold every customer was flagged: a campaign for everyone because of an outage."""
    out = BaseRateEstimate(base_rate=rate, threshold=0.31, source="s").predict_records([{}, {}])
    assert all(p["will_churn"] is False and p["risk_level"] == "low" for p in out)
    assert out[0]["churn_probability"] == rate and "Nobody is flagged" in out[0]["recommendation"]
    if rate >= 0.6:
        assert "high risk" in out[0]["recommendation"]  # the population's level is still said


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan, math.inf])
def test_impossible_rates_are_refused(rate):
    with pytest.raises(ValueError):
        BaseRateEstimate(base_rate=rate, source="s")


def test_from_registry_metrics():
    est = estimate_from_metrics({"positive_rate": 0.3, "threshold": 0.35, "rows": 2000}, "v1")
    assert est.base_rate == 0.3 and est.threshold == 0.35 and "v1" in est.source and "2000" in est.source
    assert estimate_from_metrics({"cv_roc_auc": 0.8}, "v0") is None
    assert estimate_from_metrics({"positive_rate": "x"}, "v0") is None
