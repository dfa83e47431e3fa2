import numpy as np
import pytest

from churnguard.domain import classification as M
from churnguard.domain.errors import DataValidationError
from churnguard.domain.predictor import Predictor
from churnguard.domain.training import TrainingConfig, leakage_warnings, split_labels, train
from tests.conftest import FAST, synth_frame


def test_model_learns_the_generated_signal(trained):
    _, result = trained
    m = result.metrics
    # The generator's noise caps what any model can reach; a model that learned nothing is 0.5.
    assert m["cv_roc_auc"] > 0.75
    assert m["brier"] < 0.17
    assert m["calibration_error"] < 0.06
    assert 0 < result.threshold < 1
    assert set(m["confusion_matrix"]) == {"tp", "fp", "tn", "fn"}
    assert len(m["folds"]) == FAST["n_folds"]


def test_model_generalises_to_fresh_customers(trained, schema):
    bundle, result = trained
    fresh = synth_frame(3000, seed=99)
    p = Predictor(bundle)
    probs = p.probabilities(p.encoder.encode_frame(fresh))
    y = split_labels(fresh, schema)
    auc = M.roc_auc(y, probs)
    assert auc > 0.75
    assert abs(auc - result.metrics["cv_roc_auc"]) < 0.05  # CV estimate is honest
    assert abs(probs.mean() - y.mean()) < 0.03  # calibrated on average


def test_profile_covers_every_feature_and_the_scores(trained, schema):
    profile = trained[1].profile
    assert set(profile["features"]) == set(schema.feature_names)
    for name, f in profile["features"].items():
        assert sum(f["frequencies"]) == pytest.approx(1.0), name
    assert sum(profile["scores"]["frequencies"]) == pytest.approx(1.0)


def test_bad_training_data_is_refused_with_a_report(schema):
    df = synth_frame(300)
    df.loc[3, "tenure"] = "twelve"
    with pytest.raises(DataValidationError) as info:
        train(df, schema, TrainingConfig.from_dict(FAST))
    assert "tenure" in str(info.value) and "twelve" in str(info.value)
    assert info.value.report.bad_rows == 1


def test_missing_target_is_refused(schema):
    with pytest.raises(DataValidationError, match="Churn"):
        train(synth_frame(300).drop(columns=["Churn"]), schema, TrainingConfig.from_dict(FAST))


def test_leaky_column_is_flagged(schema):
    from churnguard.domain.schema import Schema

    df = synth_frame(500)
    df["ChurnScore"] = np.where(df["Churn"] == "Yes", "90", "10")
    d = schema.to_dict()
    d["features"].append({"name": "ChurnScore", "type": "numeric", "min": 0})
    leaky = Schema.from_dict(d)
    from churnguard.domain.features import FeatureEncoder

    X = FeatureEncoder(leaky).encode_frame(df)
    warnings = leakage_warnings(leaky, X, split_labels(df, leaky), 0.95)
    assert any("ChurnScore" in w and "leakage" in w for w in warnings)
    assert not any("tenure" in w for w in warnings)


def test_value_threshold_is_used_when_economics_are_given(schema):
    cfg = TrainingConfig.from_dict({**FAST, "offer_cost": 20.0, "customer_value": 600.0, "save_rate": 0.3})
    result = train(synth_frame(1500), schema, cfg)
    assert result.threshold_method == "expected_value"
    assert result.metrics["expected_value_per_customer"] > 0


def test_unknown_training_setting_is_named():
    with pytest.raises(ValueError, match="n_fold"):
        TrainingConfig.from_dict({"n_fold": 3})
