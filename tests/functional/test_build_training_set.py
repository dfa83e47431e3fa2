"""The BuildTrainingSet function under moto: served predictions in the prediction log, outcomes in their table,
a fresh training set written to S3 with its newest period held out; the given-data paths; too little data."""

import io
import json
from datetime import timedelta

import boto3
import pytest

from churnguard.domain.errors import DataValidationError
from churnguard.domain.features import FeatureEncoder, encode_labelled_csv
from churnguard.domain.outcomes import Outcome
from churnguard.domain.training import read_csv
from tests.conftest import load_function
from tests.functional.loop_fixtures import DAY, NOW, champion, log_records, put_csv, put_outcomes, write_log

EXECUTION = {"id": "arn:aws:states:us-east-1:123456789012:execution:churnguard-retrain:run-1", "name": "run-1"}


def event(**run):
    return {"run": run, "execution": {**EXECUTION, "started": NOW.isoformat()}}


@pytest.fixture
def served(aws, services, trained, predictor, monkeypatch):
    """Three batches of served predictions ten days apart, each followed three days later by its outcomes."""
    monkeypatch.setenv("TRAINING_SET_PERIOD_DAYS", "10")
    champion(services, trained)
    for part, (days_ago, n, seed) in enumerate([(25, 400, 31), (15, 400, 32), (5, 300, 33)]):
        day = DAY - timedelta(days=days_ago)
        records, churned = log_records(predictor, n=n, seed=seed, day=day)
        write_log(aws["MODEL_BUCKET"], records, day=day, part=part)
        put_outcomes(
            aws["OUTCOMES_TABLE"],
            [
                Outcome(r["customer_key"], bool(c), day + timedelta(days=3))
                for r, c in zip(records, churned, strict=True)
            ],
        )
    return aws["MODEL_BUCKET"]


def read(uri):
    bucket, key = uri[len("s3://") :].split("/", 1)
    return boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def test_a_fresh_training_set_holds_out_the_newest_period(served, schema, lambda_context):
    out = load_function("build_training_set").handler(event(reason="drift", triggers=["drift"]), lambda_context)

    ts = out["training_set"]
    assert ts["status"] == "built" and ts["source"] == "prediction_log" and ts["reasons"] == []
    assert out["reason"] == "drift" and out["triggers"] == ["drift"] and out["execution"]["name"] == "run-1"
    assert out["data"] == f"s3://{served}/data/training-sets/run-1/train.csv"
    assert out["holdout"] == f"s3://{served}/data/training-sets/run-1/holdout.csv"
    assert ts["rows"]["train"] == 800 and ts["rows"]["holdout"] == 300
    newest = (DAY - timedelta(days=2)).isoformat()
    assert ts["period"]["holdout"] == {"start": (DAY - timedelta(days=11)).isoformat(), "end": newest, "periods": 1}
    assert ts["period"]["train"]["periods"] == 2

    train = read_csv(io.BytesIO(read(out["data"])))
    assert len(train) == 800 and schema.validate_frame(train).ok
    assert set(train["period"]) == {(DAY - timedelta(days=22)).isoformat(), (DAY - timedelta(days=12)).isoformat()}
    X, y = encode_labelled_csv(read(out["holdout"]), schema, FeatureEncoder(schema))
    assert X.shape == (300, len(schema.features)) and 0 < y.mean() < 1
    report = json.loads(read(ts["report"]))
    assert report["status"] == "built" and [p["held_out"] for p in report["periods"]] == [False, False, True]


def test_no_outcomes_stop_the_run_with_a_recorded_reason(aws, services, trained, predictor, lambda_context):
    champion(services, trained)
    records, _ = log_records(predictor, n=300, seed=34)
    write_log(aws["MODEL_BUCKET"], records)

    out = load_function("build_training_set").handler(event(), lambda_context)

    ts = out["training_set"]
    assert ts["status"] == "insufficient_data" and out["data"] is None and out["holdout"] is None
    assert "no labelled rows in the last 180 days" in ts["reasons"][0]
    assert out["reason"] == "manual"
    assert json.loads(read(ts["report"]))["reasons"] == ts["reasons"]
    listed = boto3.client("s3").list_objects_v2(Bucket=aws["MODEL_BUCKET"], Prefix="data/training-sets/run-1/")
    assert [o["Key"] for o in listed["Contents"]] == ["data/training-sets/run-1/report.json"]


def test_the_original_training_file_is_added_to_training_only(served, lambda_context, monkeypatch):
    original = put_csv(served, "data/original.csv", 1000, seed=35)
    monkeypatch.setenv("TRAINING_SET_ORIGINAL_URI", original)
    out = load_function("build_training_set").handler(event(), lambda_context)
    rows = out["training_set"]["rows"]
    assert rows["train"] == 1800 and rows["train_original"] == 1000 and rows["holdout"] == 300
    assert (read_csv(io.BytesIO(read(out["data"])))["period"] == "original").sum() == 1000


def test_given_data_is_used_as_it_is(aws, services, trained, lambda_context, monkeypatch):
    champion(services, trained)
    data, holdout = f"s3://{aws['MODEL_BUCKET']}/data/train.csv", f"s3://{aws['MODEL_BUCKET']}/data/holdout.csv"
    fn = load_function("build_training_set")
    out = fn.handler(event(data=data, holdout=holdout, config={"n_folds": 3}), lambda_context)
    assert (out["data"], out["holdout"], out["config"]) == (data, holdout, {"n_folds": 3})
    assert out["training_set"]["status"] == "given"

    # Training data without held-out rows, or the reverse, is refused by name.
    with pytest.raises(DataValidationError, match="no held-out data"):
        fn.handler(event(data=data), lambda_context)
    with pytest.raises(DataValidationError, match="held-out data but no training data"):
        fn.handler(event(holdout=holdout), lambda_context)
    with pytest.raises(DataValidationError, match="'data' must be an s3:// URI"):
        fn.handler(event(data=["s3://x"]), lambda_context)

    # TRAINING_DATA_URI (with HOLDOUT_DATA_URI) overrides the fresh set.
    monkeypatch.setenv("TRAINING_DATA_URI", data)
    monkeypatch.setenv("HOLDOUT_DATA_URI", holdout)
    out = load_function("build_training_set").handler(event(), lambda_context)
    assert (out["data"], out["holdout"], out["training_set"]["status"]) == (data, holdout, "given")


def test_a_malformed_event_is_refused(aws, lambda_context):
    from churnguard.entrypoints.events import BadEventError

    with pytest.raises(BadEventError, match="'run': <the execution input>"):
        load_function("build_training_set").handler({"data": "s3://b/k.csv"}, lambda_context)
