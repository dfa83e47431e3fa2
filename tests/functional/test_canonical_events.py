"""Every event file in events/ through its handler, under moto: the shapes `sam local generate-event` makes for
each trigger (REST aws-proxy and HTTP API v2 on a named stage without Content-Type, the EventBridge schedule, the
S3 put), and a clear BadEventError, not a crash inside Mangum, when a function gets the wrong kind of event."""

from __future__ import annotations

import base64
import json

import boto3
import pytest

from churnguard.entrypoints.events import BadEventError
from tests.conftest import EVENTS, load_event, load_function

# Which handler each event file is for: a new file must be added here (test_every_event_file_has_a_handler).
HANDLER_OF = {
    "generated_apigateway_aws_proxy_predict": "predict",
    "generated_apigateway_http_api_proxy_predict": "predict",
    "generated_apigateway_http_api_proxy_health": "predict",
    "predict": "predict",
    "predict_invalid": "predict",
    "predict_batch": "predict",
    "predict_batch_empty": "predict",
    "health": "predict",
    "model": "predict",
    "generated_cloudwatch_scheduled_event": "drift_check",
    "feedback_ingest": "feedback_ingest",
    "feedback_ingest_eventbridge": "feedback_ingest",
    "train": "train",
    "promote": "promote",
    "rollback": "promote",
    "build_training_set": "build_training_set",
    "canary_start": "canary",
    "auto_rollback_alarm": "auto_rollback",
    "deploy_check_hook": "deploy_check",
    # Driven through their handlers in tests/functional/test_console.py.
    "console_call_list": "console",
    "dashboard_models": "console",
    # Driven through their handlers in tests/functional/test_feature_refresh.py and test_predict_by_id.py.
    "feature_refresh": "feature_refresh",
    "feature_build": "feature_refresh",
    "predict_customer": "predict",
}
OUTCOMES_CSV = b"customer_id,churned,observed_date\n7590-VHVEG,yes,2026-05-01\n"


def test_every_event_file_has_a_handler():
    assert sorted(p.stem for p in EVENTS.glob("*.json")) == sorted(HANDLER_OF)


@pytest.mark.parametrize("name", [n for n, fn in HANDLER_OF.items() if n.startswith("generated_apigateway")])
def test_generated_api_events_carry_no_content_type(name):
    """The premise: AWS's shapes have no Content-Type and a base64 body; the handler must still read JSON."""
    event = load_event(name)
    assert "content-type" not in {k.lower() for k in event["headers"]}
    assert "content-type" not in {k.lower() for k in event.get("multiValueHeaders") or {}}
    assert event["isBase64Encoded"] is True


def test_generated_rest_event_is_scored(champion, lambda_context):
    r = load_function("predict").handler(load_event("generated_apigateway_aws_proxy_predict"), lambda_context)
    assert r["statusCode"] == 200, r["body"]
    body = json.loads(r["body"])
    assert body["model_version"] == champion and len(body["reasons"]) == 3


def test_generated_http_api_event_on_a_named_stage_is_scored(champion, lambda_context):
    event = load_event("generated_apigateway_http_api_proxy_predict")
    assert event["rawPath"] == "/prod/predict" and event["requestContext"]["stage"] == "prod"
    predict = load_function("predict")
    r = predict.handler(event, lambda_context)
    assert r["statusCode"] == 200, r["body"]
    assert json.loads(r["body"])["model_version"] == champion
    health = predict.handler(load_event("generated_apigateway_http_api_proxy_health"), lambda_context)
    assert health["statusCode"] == 200 and json.loads(health["body"])["model_version"] == champion


def with_content_type(event: dict, value: str) -> dict:
    """The event with a Content-Type header, in both header maps (Mangum reads multiValueHeaders first)."""
    event["headers"]["Content-Type"] = value
    event["multiValueHeaders"]["Content-Type"] = [value]
    return event


def test_a_json_body_sent_as_a_form_is_read_as_json(champion, lambda_context):
    """What `curl -d '{...}'` without -H sends: application/x-www-form-urlencoded, the JSON as it is."""
    event = with_content_type(load_event("generated_apigateway_aws_proxy_predict"), "application/x-www-form-urlencoded")
    r = load_function("predict").handler(event, lambda_context)
    assert r["statusCode"] == 200, r["body"]
    assert json.loads(r["body"])["model_version"] == champion


def test_another_declared_content_type_is_left_alone(champion, lambda_context):
    """Only a missing or form Content-Type is taken for JSON; text/plain is a wrong content type, named."""
    event = with_content_type(load_event("generated_apigateway_aws_proxy_predict"), "text/plain")
    r = load_function("predict").handler(event, lambda_context)
    assert r["statusCode"] == 415 and "text/plain" in r["body"]


def test_a_body_that_is_not_json_is_still_a_clear_400(champion, lambda_context):
    event = load_event("generated_apigateway_aws_proxy_predict")
    event["body"] = base64.b64encode(b"tenure=1&Contract=Month-to-month").decode()
    r = load_function("predict").handler(event, lambda_context)
    assert r["statusCode"] == 400
    assert "not valid JSON" in r["body"]


def test_an_http_api_on_the_default_stage_keeps_its_path(champion, lambda_context):
    event = load_event("generated_apigateway_http_api_proxy_predict")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/predict"
    event["requestContext"]["stage"] = "$default"
    assert load_function("predict").handler(event, lambda_context)["statusCode"] == 200


@pytest.mark.parametrize(
    "function, wrong",
    [
        ("predict", "generated_cloudwatch_scheduled_event"),
        ("predict", "feedback_ingest"),
        ("predict", "train"),
        ("drift_check", "generated_apigateway_aws_proxy_predict"),
        ("drift_check", "feedback_ingest"),
        ("feedback_ingest", "generated_apigateway_http_api_proxy_predict"),
        ("feedback_ingest", "generated_cloudwatch_scheduled_event"),
        ("train", "generated_apigateway_aws_proxy_predict"),
        ("promote", "generated_apigateway_aws_proxy_predict"),
        ("build_training_set", "generated_apigateway_aws_proxy_predict"),
        ("canary", "generated_cloudwatch_scheduled_event"),
        ("auto_rollback", "generated_cloudwatch_scheduled_event"),
        ("deploy_check", "generated_cloudwatch_scheduled_event"),
        ("feature_refresh", "generated_apigateway_aws_proxy_predict"),
        ("feature_refresh", "feedback_ingest"),
    ],
)
def test_the_wrong_kind_of_event_is_refused_by_name(aws, lambda_context, function, wrong, monkeypatch):
    monkeypatch.setenv("DEPLOY_CHECK_NEW_VERSION", "arn:aws:lambda:us-east-1:123456789012:function:predict:2")
    monkeypatch.setenv("DEPLOY_CHECK_LIVE", "arn:aws:lambda:us-east-1:123456789012:function:predict:live")
    with pytest.raises(BadEventError) as e:
        load_function(function).handler(load_event(wrong), lambda_context)
    message = str(e.value)
    assert "Mangum" not in message and "KeyError" not in message
    assert any(w in message for w in ("expected", "answers", "runs on", "must name", "needs")), message


def test_the_generated_schedule_event_runs_the_drift_check(champion, lambda_context):
    out = load_function("drift_check").handler(load_event("generated_cloudwatch_scheduled_event"), lambda_context)
    assert out["decision"] == "insufficient_data" and out["rows"] == 0  # nothing was logged in 1970
    assert "/drift/1970-01-01/" in out["report"]  # the event's own time is the check's "now"


def test_the_generated_s3_put_event_ingests_the_csv(aws, lambda_context):
    event = load_event("feedback_ingest")
    key = event["Records"][0]["s3"]["object"]["key"]
    event["Records"][0]["s3"]["bucket"]["name"] = aws["MODEL_BUCKET"]
    boto3.client("s3").put_object(Bucket=aws["MODEL_BUCKET"], Key=key, Body=OUTCOMES_CSV)
    out = load_function("feedback_ingest").handler(event, lambda_context)
    assert out["files"][0]["stored"] == 1
