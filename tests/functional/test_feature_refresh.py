"""The FeatureRefresh function under moto, driven by its event files: the schedule's refresh (features
stored, customers scored, stale vectors removed), the training-set build into S3, and bad events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest

from churnguard.domain.errors import ConfigurationError, DataValidationError
from tests.conftest import load_event, load_function
from tests.functional.event_fixtures import active_at, promote, upload_logs

T = datetime(2026, 5, 2, tzinfo=UTC)  # events/feature_refresh.json's time: a period start of the generated logs


def test_the_schedule_stores_every_active_customers_features_and_scores(
    aws, services, event_logs, events_model, monkeypatch, lambda_context
):
    from churnguard.bootstrap import build_feature_store, build_score_store
    from churnguard.domain.predictor import Predictor

    data, folder = event_logs
    upload_logs(aws, folder, monkeypatch)
    bundle, _, _ = events_model
    promote(services, bundle)

    out = load_function("feature_refresh").handler(load_event("feature_refresh"), lambda_context)

    active = active_at(data, T)
    assert out["as_of"] == "2026-05-02T00:00:00Z"
    assert out["customers"] == out["features_stored"] == out["scored"] == len(active)
    assert out["model_version"] == bundle.version and out["score_rejected"] == 0
    features, scores = build_feature_store(services), build_score_store(services)
    predictor = Predictor(bundle)
    for cid in active[:25]:
        stored = features.get(cid)
        assert stored["as_of"] == out["as_of"]
        score = scores.get(cid)
        expected = predictor.predict_record(stored["features"])
        assert score["churn_probability"] == pytest.approx(expected["churn_probability"], abs=5e-5)
        assert score["risk_level"] == expected["risk_level"]
        assert [r["feature"] for r in score["reasons"]] == [r["feature"] for r in expected["reasons"]]
        assert score["job_id"] == "feature-refresh-2026-05-02T00:00:00Z"
    assert features.get("C9999999") is None


def test_a_champion_trained_on_other_features_leaves_the_features_stored_and_says_why(
    aws, services, champion, event_logs, monkeypatch, lambda_context
):
    data, folder = event_logs
    upload_logs(aws, folder, monkeypatch)

    out = load_function("feature_refresh").handler(load_event("feature_refresh"), lambda_context)

    assert out["features_stored"] == len(active_at(data, T))
    assert out["scored"] == 0
    assert "lack gender" in out["not_scored_because"] and "which model v-test-1 needs" in out["not_scored_because"]


def test_customers_who_left_since_the_last_refresh_lose_their_vector(
    aws, services, event_logs, monkeypatch, lambda_context
):
    from churnguard.bootstrap import build_feature_store

    data, folder = event_logs
    upload_logs(aws, folder, monkeypatch)
    fn = load_function("feature_refresh")
    earlier = datetime(2026, 4, 2, tzinfo=UTC)

    fn.handler({"time": "2026-04-02T00:00:00Z"}, lambda_context)
    second = fn.handler(load_event("feature_refresh"), lambda_context)

    left = set(active_at(data, earlier)) - set(active_at(data, T))
    assert left, "the generated logs have cancellations in April"
    assert second["features_removed"] == len(left)
    store = build_feature_store(services)
    assert all(store.get(cid) is None for cid in left)
    assert all(store.get(cid) is not None for cid in active_at(data, T)[:20])


def test_the_build_action_writes_a_training_set_beside_its_schema_and_report(
    aws, services, event_logs, monkeypatch, lambda_context
):
    data, folder = event_logs
    upload_logs(aws, folder, monkeypatch)
    event = load_event("feature_build")
    bucket = aws["MODEL_BUCKET"]

    out = load_function("feature_refresh").handler(
        {**event, "out": f"s3://{bucket}/data/events-train.csv"}, lambda_context
    )

    s3 = boto3.client("s3")
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data/")["Contents"]}
    assert keys == {"data/events-train.csv", "data/events-train.schema.yaml", "data/events-train.report.json"}
    report = json.loads(s3.get_object(Bucket=bucket, Key="data/events-train.report.json")["Body"].read())
    assert len(report["cutoffs"]) == out["cutoffs"] == 11  # every 30 days from 2025-06-06 to 2026-04-02
    assert out["rows"] == report["rows"] > 0
    assert "report_body" not in out


@pytest.mark.parametrize(
    "event, says",
    [
        ({"action": "build", "every": "30d", "from": "2025-06-06", "to": "2026-04-02"}, "'out'"),
        ({"action": "build", "out": "s3://b/k.csv"}, "name the cutoffs"),
        ({"action": "build", "out": "s3://b/k.csv", "cutoffs": ["soon"]}, "'soon' is not a date or time"),
        ({"action": "build", "out": "s3://b/k.csv", "cutoffs": "2026-01-01"}, "must be a list"),
        ({"action": "rebuild"}, "unknown action 'rebuild'"),
        ({"time": "yesterday"}, "'time' must be an ISO 8601 timestamp"),
    ],
)
def test_bad_events_are_refused_naming_what_is_wrong(aws, event_logs, monkeypatch, lambda_context, event, says):
    upload_logs(aws, event_logs[1], monkeypatch)

    with pytest.raises(DataValidationError, match=says):
        load_function("feature_refresh").handler(event, lambda_context)


def test_without_a_definition_the_refresh_says_which_setting_is_missing(aws, monkeypatch, lambda_context):
    monkeypatch.delenv("FEATURE_DEFINITION_URI", raising=False)

    with pytest.raises(ConfigurationError, match="set FEATURE_DEFINITION_URI"):
        load_function("feature_refresh").handler(load_event("feature_refresh"), lambda_context)


def test_a_definition_that_does_not_exist_is_named(aws, monkeypatch, lambda_context):
    monkeypatch.setenv("FEATURE_DEFINITION_URI", f"s3://{aws['MODEL_BUCKET']}/features/nope.yaml")

    with pytest.raises(DataValidationError, match="features/nope.yaml does not exist"):
        load_function("feature_refresh").handler(load_event("feature_refresh"), lambda_context)


def test_churn_features_refresh_runs_the_same_refresh_from_a_laptop(aws, event_logs, monkeypatch, capsys):
    from churnguard.entrypoints.cli import main

    data, folder = event_logs
    uri = upload_logs(aws, folder, monkeypatch)

    assert main(["features", "refresh", "--definition", uri, "--now", "2026-05-02"]) == 0

    out = json.loads(capsys.readouterr().out)
    assert out["as_of"] == "2026-05-02T00:00:00Z" and out["features_stored"] == len(active_at(data, T))
    assert out["scored"] == 0 and "no champion" in out["not_scored_because"]
