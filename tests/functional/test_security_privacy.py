"""Right to erasure: `churn forget` removes a customer's outcomes, stored score, stored features and
prediction-log records (current and older object versions), leaves everybody else's, and says what it removed."""

from __future__ import annotations

import json
from datetime import date

import boto3
import pytest

from churnguard.adapters.feature_store import DynamoFeatureStore
from churnguard.adapters.outcomes import DynamoOutcomeStore
from churnguard.adapters.score_store import DynamoScoreStore
from churnguard.bootstrap import customer_hash_key
from churnguard.domain.identity import customer_key
from churnguard.domain.outcomes import Outcome
from churnguard.domain.prediction_log import prediction_record, to_jsonl
from churnguard.entrypoints.cli import main
from churnguard.settings import Settings
from tests.functional.faultinject import inject

PRED = {"model_version": "v1", "churn_probability": 0.4, "will_churn": True}


@pytest.fixture
def seeded(aws):
    key = customer_hash_key(Settings.from_env())
    ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    bucket = aws["MODEL_BUCKET"]
    outcomes = DynamoOutcomeStore(aws["OUTCOMES_TABLE"], ddb)
    for cid, day in (("C-1", date(2026, 1, 5)), ("C-1", date(2026, 2, 5)), ("C-2", date(2026, 1, 5))):
        outcomes.record(Outcome(customer_key(cid, key), True, day), source="test")
    DynamoScoreStore(aws["SCORES_TABLE"], ddb, key).put_many(
        [("C-1", 0.4, True, "medium", "[]"), ("C-2", 0.1, False, "low", "[]")],
        job_id="j",
        scored_at="t",
        model_version="v1",
    )
    DynamoFeatureStore(aws["FEATURES_TABLE"], ddb, key).put_many(
        [("C-1", {"sessions_30d": 3.0}), ("C-2", {"sessions_30d": 0.0})], as_of="t", definition_sha256="d"
    )

    def rec(cid):
        return prediction_record(
            features={"tenure": 3},
            prediction=PRED,
            variant="champion",
            customer_key=customer_key(cid, key) if cid else None,
            request_id="r",
        )

    mixed = "predictions/dt=2026-01-05/a.jsonl"
    only_c1 = "predictions/dt=2026-01-06/b.jsonl"
    s3.put_object(Bucket=bucket, Key=mixed, Body=to_jsonl([rec("C-2")]))  # an older version, without C-1
    s3.put_object(Bucket=bucket, Key=mixed, Body=to_jsonl([rec("C-1"), rec("C-2"), rec(None), rec("C-1")]))
    s3.put_object(Bucket=bucket, Key=only_c1, Body=to_jsonl([rec("C-1")]))
    return {"key": key, "bucket": bucket, "mixed": mixed, "only_c1": only_c1}


def all_versions_text(bucket, key):
    s3 = boto3.client("s3")
    listing = s3.list_object_versions(Bucket=bucket, Prefix=key)
    return [
        s3.get_object(Bucket=bucket, Key=key, VersionId=v["VersionId"])["Body"].read()
        for v in listing.get("Versions", [])
        if v["Key"] == key
    ]


def run_forget(capsys, cid="C-1"):
    code = main(["forget", cid, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_forget_erases_every_record_of_one_customer_and_no_one_else(aws, seeded, capsys):
    c1, c2 = customer_key("C-1", seeded["key"]), customer_key("C-2", seeded["key"])
    code, report = run_forget(capsys)
    assert code == 0 and report["complete"]
    assert report["customer_key"] == c1
    assert report["removed"] == {"outcomes": 2, "scores": 1, "features": 1, "prediction_log": 3}
    assert sorted(report["details"]["prediction_log"]["objects_rewritten"]) == [seeded["mixed"], seeded["only_c1"]]

    ddb = boto3.client("dynamodb")
    left = ddb.scan(TableName=aws["OUTCOMES_TABLE"])["Items"]
    assert [i["customer_key"]["S"] for i in left] == [c2]
    scores = ddb.scan(TableName=aws["SCORES_TABLE"])["Items"]
    assert [i["customer_key"]["S"] for i in scores] == [c2]
    features = ddb.scan(TableName=aws["FEATURES_TABLE"])["Items"]
    assert [i["customer_key"]["S"] for i in features] == [c2]

    bucket = seeded["bucket"]
    for key in (seeded["mixed"], seeded["only_c1"]):
        for text in all_versions_text(bucket, key):  # no version, current or older, still holds C-1
            assert c1.encode() not in text
    current = boto3.client("s3").get_object(Bucket=bucket, Key=seeded["mixed"])["Body"].read()
    assert current.count(c2.encode()) == 1 and current.count(b'"customer_key":null') == 1
    assert all_versions_text(bucket, seeded["only_c1"]) == []


def test_forgetting_twice_removes_nothing_the_second_time(aws, seeded, capsys):
    run_forget(capsys)
    code, report = run_forget(capsys)
    assert code == 0 and report["total_removed"] == 0


def test_a_failing_store_is_reported_and_the_others_still_erased(aws, seeded, capsys, monkeypatch):
    from churnguard import bootstrap

    real = bootstrap.build_erasers

    def with_broken_bucket(services):
        inject(services.store.s3, "ListObjectsV2", "AccessDenied")
        return real(services)

    monkeypatch.setattr(bootstrap, "build_erasers", with_broken_bucket)
    code, report = run_forget(capsys)
    assert code == 1 and not report["complete"]
    assert "AccessDenied" in report["failed"]["prediction_log"]
    assert report["removed"] == {"outcomes": 2, "scores": 1, "features": 1}


def test_the_id_is_required(aws, capsys):
    assert main(["forget", "  "]) == 2
    assert "customer's id" in capsys.readouterr().err


def _nothing_erased(aws):
    ddb = boto3.client("dynamodb")
    assert len(ddb.scan(TableName=aws["OUTCOMES_TABLE"])["Items"]) == 3
    assert len(ddb.scan(TableName=aws["SCORES_TABLE"])["Items"]) == 2


@pytest.mark.parametrize("unset", [["OUTCOMES_TABLE"], ["SCORES_TABLE"], ["OUTCOMES_TABLE", "SCORES_TABLE"]])
def test_an_unconfigured_store_stops_the_erasure_before_anything_is_erased(aws, seeded, capsys, monkeypatch, unset):
    from churnguard.settings import get_settings

    for name in unset:
        monkeypatch.setenv(name, "")
    get_settings.cache_clear()
    assert main(["forget", "C-1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: nothing erased") and err.count("\n") == 1
    assert all(name in err for name in unset)
    _nothing_erased(aws)
    body = boto3.client("s3").get_object(Bucket=seeded["bucket"], Key=seeded["only_c1"])["Body"].read()
    assert customer_key("C-1", seeded["key"]).encode() in body


def test_an_unreachable_store_stops_the_erasure_before_anything_is_erased(aws, seeded, capsys, monkeypatch):
    from churnguard.settings import get_settings

    monkeypatch.setenv("SCORES_TABLE", "no-such-table")
    get_settings.cache_clear()
    assert main(["forget", "C-1"]) == 1
    err = capsys.readouterr().err
    # outcomes, scores, the prediction log and (FEATURES_TABLE is set here) the feature table
    assert "nothing erased: 1 of 4 stores cannot be reached" in err and "no-such-table" in err
    _nothing_erased(aws)
