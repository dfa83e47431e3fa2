"""The predict function under moto with the loop wired in: prediction log to Firehose, POST /feedback,
canary (sticky share) and shadow, and the CLI's compare / canary commands."""

import json
from datetime import UTC, date, datetime, timedelta

import boto3
import pytest

from churnguard.domain.canary import routes_to_canary
from churnguard.domain.identity import customer_key
from churnguard.domain.model_registry import ModelVersion
from churnguard.domain.prediction_log import parse_jsonl
from churnguard.entrypoints import cli
from tests.conftest import load_event, load_function

STREAM = "churnguard-predictions"


def _register(services, trained, version, promote=False):
    from churnguard.services.lifecycle import build_bundle

    bundle = build_bundle(version, trained[1], _schema(), data_sha256="0" * 64, source="synthetic")
    stored = services.store.put(bundle)
    services.registry.register(
        ModelVersion(
            version=version,
            status="candidate",
            location=stored["location"],
            manifest_sha256=stored["manifest_sha256"],
            checksums=stored["files"],
        )
    )
    if promote:
        services.registry.promote(version)


def _schema():
    from churnguard.domain.schema import Schema

    return Schema.default()


@pytest.fixture
def loop(aws, services, trained, monkeypatch):
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName=STREAM,
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/f",
            "BucketARN": f"arn:aws:s3:::{aws['MODEL_BUCKET']}",
            "Prefix": "predictions/",
        },
    )
    monkeypatch.setenv("PREDICTION_LOG_STREAM", STREAM)
    _register(services, trained, "v-champ", promote=True)
    _register(services, trained, "v-chal")
    return services


def predict_event(customer_id=None, path="/predict", body=None):
    event = load_event("predict")
    row = json.loads(event["body"])
    if customer_id is None:
        row.pop("customerID", None)
    else:
        row["customerID"] = customer_id
    event["body"] = json.dumps(row if body is None else body)
    event["path"] = event["resource"] = path
    return event


def logged(aws):
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws["MODEL_BUCKET"], Prefix="predictions/").get("Contents", [])]
    return [r for k in keys for r in parse_jsonl(s3.get_object(Bucket=aws["MODEL_BUCKET"], Key=k)["Body"].read())]


def test_every_prediction_is_logged_with_a_keyed_hash_never_the_id(loop, aws, lambda_context):
    predict = load_function("predict")
    for cid in ("7590-VHVEG", "5575-GNVDE", None):
        r = predict.handler(predict_event(cid), lambda_context)
        assert r["statusCode"] == 200, r["body"]
    r = predict.handler(
        predict_event(body={"customers": [json.loads(load_event("predict")["body"])] * 2}, path="/predict/batch"),
        lambda_context,
    )
    assert r["statusCode"] == 200
    predict._prediction_log.flush()
    recs = logged(aws)
    assert (
        len(recs) == 5
        and {r["variant"] for r in recs} == {"champion"}
        and {r["model_version"] for r in recs} == {"v-champ"}
    )
    assert recs[0]["customer_key"] == customer_key("7590-VHVEG", b"local-development-key")  # the settings' default key
    assert recs[2]["customer_key"] is None
    assert set(recs[0]["features"]) == set(_schema().feature_names)
    assert "7590-VHVEG" not in json.dumps(recs)


def test_a_missing_stream_loses_log_records_counted_and_the_prediction_still_answers(
    loop, aws, monkeypatch, lambda_context, capsys
):
    monkeypatch.setenv("PREDICTION_LOG_STREAM", "deleted-stream")
    predict = load_function("predict")
    predict._prediction_log.max_records = 1  # send on every request, so the loss lands in this invocation's metrics
    capsys.readouterr()
    r = predict.handler(predict_event("7590-VHVEG"), lambda_context)
    assert r["statusCode"] == 200 and json.loads(r["body"])["model_version"] == "v-champ"
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("PredictionLogDropped") in (1.0, [1.0]) for m in emf), emf
    assert any("PredictionLatency" in m for m in emf)
    assert predict._prediction_log.dropped == 1 and logged(aws) == []


def test_feedback_is_stored_once_and_malformed_feedback_stores_nothing(loop, aws, lambda_context):
    predict = load_function("predict")

    def post(body):
        r = predict.handler(predict_event(body=body, path="/feedback"), lambda_context)
        return r["statusCode"], json.loads(r["body"])

    good = {"customer_id": "7590-VHVEG", "churned": "yes", "observed_date": "2026-05-01"}
    status, body = post(good)
    assert status == 201 and body["stored"] is True
    assert post(good)[0] == 200 and post(good)[1]["duplicate"] is True
    status, body = post({**good, "churned": "no"})
    assert status == 409 and "already stored" in body["detail"]
    status, body = post({"customer_id": "", "churned": "perhaps", "observed_date": "2026-13-01"})
    assert status == 422 and {p["field"] for p in body["problems"]} == {"customer_id", "churned", "observed_date"}
    status, body = post(["not", "an", "object"])
    assert status == 422
    items = boto3.client("dynamodb").scan(TableName=aws["OUTCOMES_TABLE"])["Items"]
    assert len(items) == 1 and items[0]["churned"] == {"BOOL": True}


def test_canary_answers_its_share_stickily_and_logs_the_variant(loop, aws, lambda_context):
    loop.registry.set_canary("v-chal", share=0.5)
    predict = load_function("predict")
    predict.handler(predict_event("warm-up"), lambda_context)  # the challenger loads after this response
    ids = [f"C-{i:04d}" for i in range(40)]
    first = {
        cid: json.loads(predict.handler(predict_event(cid), lambda_context)["body"])["model_version"] for cid in ids
    }
    again = {
        cid: json.loads(predict.handler(predict_event(cid), lambda_context)["body"])["model_version"] for cid in ids
    }
    assert first == again
    key = b"local-development-key"
    assert first == {cid: "v-chal" if routes_to_canary(customer_key(cid, key), 0.5) else "v-champ" for cid in ids}
    assert set(first.values()) == {"v-chal", "v-champ"}
    predict._prediction_log.flush()
    by_variant = {r["variant"]: r["model_version"] for r in logged(aws)}
    assert by_variant == {"champion": "v-champ", "canary": "v-chal"}


def test_shadow_scores_every_request_unseen(loop, aws, lambda_context):
    loop.registry.set_canary("v-chal", share=0, shadow=True)
    predict = load_function("predict")
    for cid in ("warm-up", "A", "B"):
        out = json.loads(predict.handler(predict_event(cid), lambda_context)["body"])
        assert out["model_version"] == "v-champ"
    predict._prediction_log.flush()
    recs = [r for r in logged(aws) if r["customer_key"] != customer_key("warm-up", b"local-development-key")]
    assert (
        sorted((r["variant"], r["model_version"]) for r in recs)
        == [("champion", "v-champ")] * 2 + [("shadow", "v-chal")] * 2
    )
    assert {r["request_id"] for r in recs if r["variant"] == "shadow"} == {
        r["request_id"] for r in recs if r["variant"] == "champion"
    }


def test_a_canary_that_cannot_load_leaves_the_champion_answering(loop, aws, lambda_context):
    loop.registry.set_canary("v-chal", share=1.0)
    loop.store.delete("v-chal")
    predict = load_function("predict")
    for cid in ("warm-up", "A", "B"):
        r = predict.handler(predict_event(cid), lambda_context)
        assert r["statusCode"] == 200 and json.loads(r["body"])["model_version"] == "v-champ"


def test_cli_compare_canary_and_per_variant_report(loop, aws, capsys):
    row = load_event("predict")["body"]
    assert cli.main(["compare", "--json", row, "--as-json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["version"]: r["champion"] for r in rows} == {"v-champ": True, "v-chal": False}
    assert all(0 < r["churn_probability"] < 1 for r in rows)

    assert cli.main(["canary", "set", "v-chal", "--share", "0.2"]) == 0
    assert json.loads(capsys.readouterr().out)["share"] == 0.2
    assert cli.main(["canary", "set", "v-chal", "--share", "7"]) == 2
    assert "share" in capsys.readouterr().err

    # A log and outcomes for the report: canary customers right 90% of the time, champion's 60%.
    s3, key = boto3.client("s3"), b"local-development-key"
    from churnguard.adapters.outcomes import DynamoOutcomeStore
    from churnguard.domain.outcomes import Outcome
    from churnguard.domain.prediction_log import prediction_record, to_jsonl

    store = DynamoOutcomeStore(aws["OUTCOMES_TABLE"], boto3.client("dynamodb"))
    day = date.today() - timedelta(days=3)
    recs = []
    for i in range(400):
        k = customer_key(f"R{i}", key)
        variant = "canary" if routes_to_canary(k, 0.5) else "champion"
        churned = i % 3 == 0
        right = (i % 10) < (9 if variant == "canary" else 6)
        recs.append(
            prediction_record(
                features={},
                prediction={
                    "churn_probability": 0.7 if churned == right else 0.3,
                    "will_churn": churned == right,
                    "model_version": variant,
                },
                variant=variant,
                customer_key=k,
                request_id=str(i),
                ts=datetime(day.year, day.month, day.day, tzinfo=UTC),
            )
        )
        store.record(Outcome(k, churned, day + timedelta(days=1)), source="test")
    s3.put_object(Bucket=aws["MODEL_BUCKET"], Key=f"predictions/dt={day.isoformat()}/x", Body=to_jsonl(recs))
    assert cli.main(["canary", "report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["outcomes"] == 400 and report["tests"]["canary"]["significant"]
    assert report["tests"]["canary"]["verdict"] == "canary makes fewer errors"
    assert cli.main(["canary", "report"]) == 0 and "canary vs champion" in capsys.readouterr().out
    assert cli.main(["canary", "clear"]) == 0 and json.loads(capsys.readouterr().out)["cleared"]["version"] == "v-chal"
