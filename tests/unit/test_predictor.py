import pytest

from churnguard.domain.predictor import RiskBands
from tests.conftest import telco_row


def test_prediction_has_every_field(predictor):
    out = predictor.predict_record(telco_row(0))
    assert set(out) == {"churn_probability", "will_churn", "risk_level", "reasons", "recommendation", "model_version"}
    assert 0 < out["churn_probability"] < 1
    assert out["will_churn"] == (out["churn_probability"] >= predictor.threshold)
    assert out["risk_level"] == predictor.bands.level(out["churn_probability"])
    assert out["model_version"] == "v-test-1"


def test_reasons_are_exact_treeshap_named_by_feature_and_value(predictor):
    row = telco_row(0)
    X = predictor.encoder.encode_record(row)[None, :]
    contrib = predictor.contributions(X)[0]
    raw = predictor.booster.predict(X, raw_score=True)[0]
    assert contrib.sum() == pytest.approx(raw, abs=1e-9)  # SHAP values add up to the margin
    reasons = predictor.predict_record(row)["reasons"]
    assert len(reasons) == 3
    for r in reasons:
        j = predictor.encoder.names.index(r["feature"])
        assert r["contribution"] == pytest.approx(contrib[j], abs=1e-4)
        assert r["value"] == predictor.encoder.decode(j, X[0, j])
        assert (r["effect"] == "increases risk") == (r["contribution"] > 0)
    assert abs(reasons[0]["contribution"]) >= abs(reasons[-1]["contribution"])


def test_reasons_can_be_skipped(predictor):
    out = predictor.predict_record(telco_row(0), reasons=False)
    assert out["reasons"] == []


def test_validated_and_checked_paths_agree(predictor):
    row = dict(telco_row(1))
    checked = predictor.predict_record(row)
    typed = dict(
        row,
        SeniorCitizen=int(row["SeniorCitizen"]),
        tenure=int(row["tenure"]),
        MonthlyCharges=float(row["MonthlyCharges"]),
        TotalCharges=float(row["TotalCharges"]) if row["TotalCharges"].strip() else None,
    )
    assert predictor.predict_record(typed, validated=True) == checked


def test_risk_bands():
    bands = RiskBands.for_threshold(0.3)
    assert [bands.level(p) for p in (0.1, 0.3, 0.59, 0.6, 0.9)] == ["low", "medium", "medium", "high", "high"]


def test_month_to_month_newcomer_is_riskier_than_two_year_veteran(predictor):
    base = telco_row(0)
    newcomer = dict(base, Contract="Month-to-month", tenure="1", TotalCharges="70")
    veteran = dict(base, Contract="Two year", tenure="70", TotalCharges="5000")
    p_new = predictor.predict_record(newcomer)["churn_probability"]
    p_old = predictor.predict_record(veteran)["churn_probability"]
    assert p_new > p_old + 0.2
