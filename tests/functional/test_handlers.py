"""Each Lambda handler under moto, driven by the event files `sam local invoke -e` takes."""

import json

import boto3
import pytest

from churnguard.domain.errors import DataValidationError
from tests.conftest import load_event, load_function, synth_csv_bytes


def put_training_data(aws, key="data/train.csv", body=None):
    boto3.client("s3").put_object(Bucket=aws["MODEL_BUCKET"], Key=key, Body=body or synth_csv_bytes(1500))
    return f"s3://{aws['MODEL_BUCKET']}/{key}"


@pytest.fixture
def trained_and_promoted(aws, lambda_context):
    train = load_function("train")
    event = {**load_event("train"), "data": put_training_data(aws), "config": {"n_folds": 3, "max_rounds": 300}}
    summary = train.handler(event, lambda_context)
    promote = load_function("promote")
    promote.handler({**load_event("promote"), "version": summary["version"]}, lambda_context)
    return summary


def test_train_registers_a_candidate(aws, lambda_context):
    train = load_function("train")
    event = {**load_event("train"), "data": put_training_data(aws), "config": {"n_folds": 3, "max_rounds": 300}}
    summary = train.handler(event, lambda_context)
    assert summary["status"] == "candidate"
    assert summary["metrics"]["cv_roc_auc"] > 0.7
    keys = {o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws["MODEL_BUCKET"])["Contents"]}
    assert {f"models/{summary['version']}/{n}" for n in ("model.txt", "metadata.json", "manifest.json")} <= keys


def test_bad_training_data_writes_nothing(aws, services, lambda_context):
    train = load_function("train")
    bad = synth_csv_bytes(300).replace(b",Month-to-month,", b",Monthly,", 1)
    event = {**load_event("train"), "data": put_training_data(aws, body=bad)}
    with pytest.raises(DataValidationError, match="Monthly"):
        train.handler(event, lambda_context)
    assert services.registry.list() == []
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws["MODEL_BUCKET"]).get("Contents", [])]
    assert not [k for k in keys if k.startswith("models/")]


def test_missing_training_object_is_named(aws, lambda_context):
    train = load_function("train")
    with pytest.raises(DataValidationError, match="does not exist"):
        train.handler({"data": f"s3://{aws['MODEL_BUCKET']}/nope.csv"}, lambda_context)


def test_predict_handler_with_api_gateway_events(trained_and_promoted, lambda_context):
    predict = load_function("predict")
    r = predict.handler(load_event("predict"), lambda_context)
    assert r["statusCode"] == 200, r["body"]
    out = json.loads(r["body"])
    assert out["model_version"] == trained_and_promoted["version"]
    assert len(out["reasons"]) == 3

    r = predict.handler(load_event("predict_invalid"), lambda_context)
    assert r["statusCode"] == 422
    assert {p["field"] for p in json.loads(r["body"])["problems"]} == {"Contract", "tenure"}

    r = predict.handler(load_event("predict_batch"), lambda_context)
    assert r["statusCode"] == 200 and len(json.loads(r["body"])["predictions"]) == 3

    assert predict.handler(load_event("predict_batch_empty"), lambda_context)["statusCode"] == 422
    health = json.loads(predict.handler(load_event("health"), lambda_context)["body"])
    assert health["model_version"] == trained_and_promoted["version"]
    model = json.loads(predict.handler(load_event("model"), lambda_context)["body"])
    assert model["version"] == trained_and_promoted["version"]


def test_predict_without_champion_answers_503(aws, lambda_context):
    predict = load_function("predict")
    r = predict.handler(load_event("predict"), lambda_context)
    assert r["statusCode"] == 503


def test_promotion_takes_effect_without_redeploy(aws, lambda_context, monkeypatch):
    monkeypatch.setenv("CHAMPION_TTL_SECONDS", "0")
    train = load_function("train")
    data = put_training_data(aws)
    first = train.handler({"data": data, "config": {"n_folds": 3, "max_rounds": 200}}, lambda_context)
    second = train.handler({"data": data, "config": {"n_folds": 3, "max_rounds": 200, "seed": 1}}, lambda_context)
    promote = load_function("promote")
    predict = load_function("predict")
    promote.handler({"action": "promote", "version": first["version"]}, lambda_context)
    assert (
        json.loads(predict.handler(load_event("predict"), lambda_context)["body"])["model_version"] == first["version"]
    )
    promote.handler({"action": "promote", "version": second["version"]}, lambda_context)
    assert (
        json.loads(predict.handler(load_event("predict"), lambda_context)["body"])["model_version"] == second["version"]
    )
    out = promote.handler(load_event("rollback"), lambda_context)
    assert out["champion"] == first["version"]
    assert (
        json.loads(predict.handler(load_event("predict"), lambda_context)["body"])["model_version"] == first["version"]
    )


def test_last_known_good_model_serves_when_s3_breaks(trained_and_promoted, lambda_context, aws, services, monkeypatch):
    monkeypatch.setenv("CHAMPION_TTL_SECONDS", "0")
    predict = load_function("predict")
    assert predict.handler(load_event("predict"), lambda_context)["statusCode"] == 200
    # A new champion whose bundle cannot be read: the container keeps the one it has.
    train = load_function("train")
    data = f"s3://{aws['MODEL_BUCKET']}/data/train.csv"
    newer = train.handler({"data": data, "config": {"n_folds": 3, "max_rounds": 200}}, lambda_context)
    boto3.client("s3").delete_object(Bucket=aws["MODEL_BUCKET"], Key=f"models/{newer['version']}/model.txt")
    services.registry.promote(newer["version"])
    r = predict.handler(load_event("predict"), lambda_context)
    assert r["statusCode"] == 200
    assert json.loads(r["body"])["model_version"] == trained_and_promoted["version"]
