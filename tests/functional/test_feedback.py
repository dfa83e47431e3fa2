"""Ground truth under moto: the outcomes table (from template.yaml), the bulk CSV function, the canary alias."""

import json
from datetime import date

import boto3
import pytest

from churnguard.adapters.outcomes import DynamoOutcomeStore
from churnguard.bootstrap import customer_hash_key
from churnguard.domain.errors import ModelNotFoundError, OutcomeConflictError, PromotionConflictError
from churnguard.domain.identity import customer_key
from churnguard.domain.model_registry import ModelVersion
from churnguard.domain.outcomes import Outcome
from churnguard.settings import Settings
from tests.conftest import load_event, load_function


@pytest.fixture
def store(aws):
    return DynamoOutcomeStore(aws["OUTCOMES_TABLE"], boto3.client("dynamodb"))


def test_an_outcome_is_stored_once_and_a_contradiction_is_refused(store):
    o = Outcome("k" * 64, True, date(2026, 5, 1))
    assert store.record(o, source="api") is True
    assert store.record(o, source="api") is False
    with pytest.raises(OutcomeConflictError, match="already stored"):
        store.record(o._replace(churned=False), source="s3://b/k.csv")
    assert list(store.outcomes()) == [o]
    assert store.record(o._replace(observed_date=date(2026, 6, 1)), source="api") is True


def test_reader_filters_by_date_and_unpacks_as_triples(store):
    for i, day in enumerate((date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1))):
        store.record(Outcome(f"{i:064x}", i % 2 == 0, day), source="api")
    got = sorted(store.outcomes(since=date(2026, 4, 15), until=date(2026, 5, 31)))
    assert [(k[-1], churned, day) for k, churned, day in got] == [("1", False, date(2026, 5, 1))]
    assert len(list(store.outcomes(since=date(2026, 4, 1)))) == 3


def _drop_csv(aws, body, key="feedback/outcomes.csv"):
    boto3.client("s3").put_object(Bucket=aws["MODEL_BUCKET"], Key=key, Body=body)
    event = load_event("feedback_ingest")
    event["Records"][0]["s3"]["bucket"]["name"] = aws["MODEL_BUCKET"]
    event["Records"][0]["s3"]["object"]["key"] = key.replace(" ", "+")
    return event


def test_bulk_csv_stores_good_rows_once_and_reports_bad_ones(aws, lambda_context):
    fn = load_function("feedback_ingest")
    csv = (
        b"customer_id,churned,observed_date\n7590-VHVEG,yes,2026-05-01\n5575-GNVDE,no,2026-05-01\nX,maybe,2026-05-01\n"
    )
    out = fn.handler(_drop_csv(aws, csv, key="feedback/may outcomes.csv"), lambda_context)
    assert out["files"][0]["stored"] == 2 and out["files"][0]["rejected"] == 1
    report = json.loads(
        boto3.client("s3")
        .get_object(Bucket=aws["MODEL_BUCKET"], Key="feedback-reports/may outcomes.csv.report.json")["Body"]
        .read()
    )
    assert report["rejected"] == [
        {"row": 4, "field": "churned", "value": "maybe", "problem": report["rejected"][0]["problem"]}
    ]
    assert "yes or no" in report["rejected"][0]["problem"]
    assert (report["rows_in"], report["stored"], report["rejected_rows"]) == (3, 2, 1)

    # Identical repeats within one file: stored once, counted as repeated (every row accounted for).
    repeats = csv + b"7590-VHVEG,yes,2026-05-01\n7590-VHVEG,yes,2026-05-01\n"
    fn.handler(_drop_csv(aws, repeats, key="feedback/repeats.csv"), lambda_context)
    report = json.loads(
        boto3.client("s3")
        .get_object(Bucket=aws["MODEL_BUCKET"], Key="feedback-reports/repeats.csv.report.json")["Body"]
        .read()
    )
    assert (report["rows_in"], report["duplicates"], report["repeated"], report["rejected_rows"]) == (5, 2, 2, 1)
    assert report["repeats"] == [{"row": 5, "same_as_row": 2}, {"row": 6, "same_as_row": 2}]

    # The same file again (an S3 retry, or dropped twice): nothing stored twice.
    again = fn.handler(_drop_csv(aws, csv, key="feedback/may outcomes.csv"), lambda_context)["files"][0]
    assert again["stored"] == 0 and again["duplicates"] == 2
    keys = {k for k, _, _ in _outcomes(aws).outcomes()}
    key = customer_hash_key(Settings.from_env())
    assert keys == {customer_key("7590-VHVEG", key), customer_key("5575-GNVDE", key)}
    assert "7590-VHVEG" not in json.dumps(report)


def test_bulk_csv_conflicting_with_stored_outcomes_and_a_bad_header(aws, lambda_context):
    fn = load_function("feedback_ingest")
    fn.handler(_drop_csv(aws, b"customer_id,churned,observed_date\na,yes,2026-05-01\n"), lambda_context)
    out = fn.handler(
        _drop_csv(aws, b"customer_id,churned,observed_date\na,no,2026-05-01\nb,no,2026-05-01\n", "feedback/2.csv"),
        lambda_context,
    )
    assert out["files"][0]["stored"] == 1 and out["files"][0]["rejected"] == 1 and not out["files"][0]["ok"]
    out = fn.handler(_drop_csv(aws, b"id;churn\n1;yes\n", "feedback/3.csv"), lambda_context)
    assert out["files"][0]["stored"] == 0 and not out["files"][0]["ok"]
    assert len(list(_outcomes(aws).outcomes())) == 2


def _register(services, version, status="candidate"):
    services.registry.register(
        ModelVersion(version=version, status="candidate", location=f"s3://b/{version}", manifest_sha256="0" * 64)
    )
    if status != "candidate":  # every version enters the registry as a candidate
        services.registry.set_status(version, status)


def test_canary_alias_set_show_clear(services):
    reg = services.registry
    for v in ("v1", "v2"):
        _register(services, v)
    _register(services, "bad", status="rejected")
    reg.promote("v1")
    assert reg.canary() is None
    got = reg.set_canary("v2", share=0.1)
    assert reg.canary() == got and got["share"] == 0.1 and got["shadow"] is False
    with pytest.raises(PromotionConflictError, match="champion"):
        reg.set_canary("v1", share=0.1)
    with pytest.raises(PromotionConflictError, match="rejected"):
        reg.set_canary("bad", share=0.1)
    with pytest.raises(ModelNotFoundError):
        reg.set_canary("v9", share=0.1)
    with pytest.raises(ValueError, match="share"):
        reg.set_canary("v2", share=2)
    assert reg.set_canary("v2", share=0, shadow=True)["shadow"] is True
    assert reg.clear_canary()["version"] == "v2"
    assert reg.canary() is None and reg.clear_canary() is None
    assert reg.alias()["version"] == "v1"  # the champion is untouched throughout


def test_the_eventbridge_event_the_stack_delivers_is_ingested(aws, lambda_context):
    fn = load_function("feedback_ingest")
    boto3.client("s3").put_object(
        Bucket=aws["MODEL_BUCKET"],
        Key="feedback/outcomes.csv",
        Body=b"customerID,Churn,observed_date\n7590-VHVEG,Yes,2026-05-01\n",
    )
    event = load_event("feedback_ingest_eventbridge")
    event["detail"]["bucket"]["name"] = aws["MODEL_BUCKET"]
    assert fn.handler(event, lambda_context)["files"][0]["stored"] == 1
    event["detail"]["object"]["key"] = "feedback/readme.txt"
    assert fn.handler(event, lambda_context)["files"] == []


def _outcomes(aws):
    return DynamoOutcomeStore(aws["OUTCOMES_TABLE"], boto3.client("dynamodb"))
