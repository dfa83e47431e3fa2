"""The BuildTrainingSet function under moto when the champion was trained on event-log features: the feature
definition's features at recent cutoffs (the engine the FeatureRefresh build uses), the newest cutoff held out,
a time-ordered training CSV the Train function reads with the schema written beside it; logs that end before
the window; a champion trained on other features keeps the served-prediction source and the report says why."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import boto3
import pytest

from churnguard.domain.training import read_csv
from tests.conftest import FAST, load_function
from tests.functional.event_fixtures import END, promote, upload_logs

HELD_OUT = "2026-05-02T00:00:00Z"  # END - 30 days: the newest cutoff whose 30-day label window the logs complete


def event(started: datetime, name: str = "run-events") -> dict:
    arn = f"arn:aws:states:us-east-1:123456789012:execution:churnguard-retrain:{name}"
    return {"run": {"reason": "drift"}, "execution": {"id": arn, "name": name, "started": started.isoformat()}}


def read(uri: str) -> bytes:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


@pytest.fixture
def events_champion(aws, services, event_logs, events_model, monkeypatch):
    """The event logs and definition where the template points, the events model the champion; small minimums
    (600 generated customers give about 330 rows and 11 churners at the newest cutoff)."""
    _, folder = event_logs
    upload_logs(aws, folder, monkeypatch)
    monkeypatch.setenv("TRAINING_SET_MIN_CLASS_COUNT", "5")
    bundle, schema, built = events_model
    promote(services, bundle)
    return schema, read_csv(built)


def test_the_rows_are_the_definitions_features_at_recent_cutoffs_newest_held_out(events_champion, lambda_context):
    schema, built = events_champion
    started = END.replace(hour=6)

    out = load_function("build_training_set").handler(event(started), lambda_context)

    ts = out["training_set"]
    assert ts["status"] == "built" and ts["source"] == "event_features", ts
    assert ts["period"]["holdout"] == {"start": "2026-05-03", "end": "2026-06-01", "periods": 1}
    # Cutoffs every 30 days back while their label window ends inside the 180-day window: seven.
    assert ts["period"]["train"]["periods"] == 6
    holdout, train = read_csv(io.BytesIO(read(out["holdout"]))), read_csv(io.BytesIO(read(out["data"])))
    assert set(holdout["cutoff"]) == {HELD_OUT} and HELD_OUT not in set(train["cutoff"])
    # The same rows, features and labels the FeatureRefresh build gave at that cutoff (one definition, one engine).
    same = built[built["cutoff"] == HELD_OUT].reset_index(drop=True)
    assert len(holdout) == len(same) == ts["rows"]["holdout"]
    assert (holdout["churned"] == "Yes").sum() == (same["churned"] == "Yes").sum() == ts["rows"]["holdout_churned"]
    for name in ("sessions_30d", "days_since_last_session", "plan"):
        assert sorted(holdout[name].fillna(-1).astype(str)) == sorted(same[name].fillna(-1).astype(str)), name
    # Every training row's label was known by the held-out cutoff: nothing the gate tests on is trained on.
    assert (train["label_end"] <= HELD_OUT).all() and len(train) == ts["rows"]["train"]
    assert "customer_id" not in train.columns

    report = json.loads(read(ts["report"]))
    detail = report["source_detail"]
    assert detail["cutoff_every_days"] == 30 and detail["horizon_days"] == 30 and len(detail["cutoffs"]) == 7
    assert detail["cutoffs_moved_to_the_data_end"] is False and detail["cutoffs_left_out_incomplete_labels"] == []
    assert "reads the features of the definition 'generated-subscriptions'" in detail["why"]

    # What the Train step does with it: the champion's schema beside the rows, time-ordered validation.
    assert out["schema"] == ts["report"].replace("report.json", "schema.yaml")
    trained = load_function("train").handler(
        {"data": out["data"], "schema": out["schema"], "config": FAST, "reason": "drift"}, lambda_context
    )
    assert trained["metrics"]["cv_method"] == "time-ordered"
    assert trained["metrics"]["rows"] == len(train)


def test_logs_that_lag_move_the_cutoffs_back_to_where_their_labels_are_complete(events_champion, lambda_context):
    # Three weeks after the logs end: the cutoffs anchored at today have no complete labels yet.
    out = load_function("build_training_set").handler(event(datetime(2026, 6, 22, 6, tzinfo=UTC)), lambda_context)

    ts = out["training_set"]
    assert ts["status"] == "built" and ts["period"]["holdout"]["end"] == "2026-06-01", ts
    assert set(read_csv(io.BytesIO(read(out["holdout"])))["cutoff"]) == {HELD_OUT}
    assert json.loads(read(ts["report"]))["source_detail"]["cutoffs_moved_to_the_data_end"] is True


def test_logs_that_end_before_the_window_stop_the_run_with_the_reason(events_champion, lambda_context):
    out = load_function("build_training_set").handler(event(datetime(2027, 3, 1, tzinfo=UTC)), lambda_context)

    ts = out["training_set"]
    assert ts["status"] == "insufficient_data" and out["data"] is None and out["holdout"] is None
    assert "from the event logs of 'generated-subscriptions'" in ts["reasons"][0]
    assert "the logs end at 2026-05-31" in ts["reasons"][0], ts["reasons"]
    assert json.loads(read(ts["report"]))["status"] == "insufficient_data"


def test_a_champion_trained_on_other_features_keeps_served_predictions(
    aws, services, champion, event_logs, monkeypatch, lambda_context
):
    upload_logs(aws, event_logs[1], monkeypatch)

    out = load_function("build_training_set").handler(event(END), lambda_context)

    ts = out["training_set"]
    assert ts["source"] == "prediction_log" and ts["status"] == "insufficient_data"
    why = json.loads(read(ts["report"]))["source_detail"]["why"]
    assert "does not compute (gender, SeniorCitizen" in why, why


def test_no_definition_keeps_served_predictions_and_says_so(aws, services, champion, monkeypatch, lambda_context):
    from churnguard.settings import get_settings

    # Where the template points, with nothing uploaded there: a deployment that scores snapshots.
    monkeypatch.setenv("FEATURE_DEFINITION_URI", f"s3://{aws['MODEL_BUCKET']}/features/definition.yaml")
    get_settings.cache_clear()

    out = load_function("build_training_set").handler(event(END), lambda_context)

    why = json.loads(read(out["training_set"]["report"]))["source_detail"]["why"]
    assert out["training_set"]["source"] == "prediction_log"
    assert why.startswith("no feature definition (input object s3://") and "does not exist" in why, why
