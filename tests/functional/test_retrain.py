"""The retraining steps as the state machine runs them (same payload shapes as retrain.asl.json), with
the real handlers under moto: evaluate -> promote when the gate passes, reject when it does not,
and MarkFailed recording a failed run without touching the champion."""

import boto3
import pytest

from churnguard.domain.errors import DataValidationError, GateNotPassedError
from tests.conftest import load_event, load_function
from tests.functional.loop_fixtures import champion, keys, put_csv, register


@pytest.fixture
def loop(aws, services, trained, monkeypatch):
    bucket = aws["MODEL_BUCKET"]
    monkeypatch.setenv("HOLDOUT_DATA_URI", put_csv(bucket, "data/holdout.csv", 1200, seed=31))
    return {"bucket": bucket, "champion": champion(services, trained), "services": services}


def state_after_train(loop, version):
    """The state the Evaluate step receives: the execution input plus $.execution and $.candidate."""
    return {
        "reason": "drift",
        "data": f"s3://{loop['bucket']}/data/train.csv",
        "drift_report": f"s3://{loop['bucket']}/reports/drift/2026-03-10/x.json",
        "execution": {"id": "arn:aws:states:us-east-1:123456789012:execution:r:e1", "name": "e1"},
        "candidate": {"version": version, "location": "s3://..."},
    }


def evaluation_of(summary):
    # Evaluate's ResultSelector in the ASL.
    return {k: summary[k] for k in ("version", "passed", "reasons", "champion", "report", "html", "auc_difference")}


def test_an_equal_challenger_passes_and_is_promoted(loop, trained, lambda_context):
    services = loop["services"]
    version = register(services, trained[0], version="v-test-2", data_sha256="1" * 64)
    summary = load_function("evaluate").handler(state_after_train(loop, version), lambda_context)
    assert summary["passed"] is True, summary["reasons"]
    assert summary["champion"] == loop["champion"] and summary["auc_difference"]["estimate"] == 0
    assert keys(loop["bucket"], f"reports/evaluation/{version}/") == [
        f"reports/evaluation/{version}/evaluation.html",
        f"reports/evaluation/{version}/evaluation.json",
    ]
    html = (
        boto3.client("s3")
        .get_object(Bucket=loop["bucket"], Key=f"reports/evaluation/{version}/evaluation.html")["Body"]
        .read()
        .decode()
    )
    for title in ("ROC curve", "Precision-recall curve", "Calibration (reliability)", "Feature importance"):
        assert title in html
    assert services.registry.get(version).reason.endswith("evaluation.html")  # linked from the registry

    out = load_function("promote").handler(
        {"action": "promote", "version": version, "reason": "drift", "evaluation": evaluation_of(summary)},
        lambda_context,
    )
    assert out["champion"] == version and out["previous"] == [loop["champion"]]
    assert services.registry.get(version).status == "production"
    assert services.registry.get(loop["champion"]).status == "archived"


def test_a_worse_challenger_is_rejected_with_reasons_and_cannot_be_promoted(loop, aws, lambda_context):
    services = loop["services"]
    bad_data = put_csv(loop["bucket"], "data/shuffled.csv", 1500, seed=32, shuffle_labels=True)
    trained_bad = load_function("train").handler(
        {"data": bad_data, "reason": "drift", "config": {"n_folds": 3, "max_rounds": 200, "early_stopping_rounds": 30}},
        lambda_context,
    )
    version = trained_bad["version"]
    summary = load_function("evaluate").handler(state_after_train(loop, version), lambda_context)
    assert summary["passed"] is False
    assert any(r.startswith("ROC-AUC against champion") for r in summary["reasons"])
    evaluation = evaluation_of(summary)

    promote = load_function("promote")
    with pytest.raises(GateNotPassedError, match="did not pass the promotion gate"):
        promote.handler(
            {"action": "promote", "version": version, "reason": "drift", "evaluation": evaluation}, lambda_context
        )
    with pytest.raises(GateNotPassedError, match="is for 'v-other'"):
        promote.handler(
            {
                "action": "promote",
                "version": version,
                "evaluation": {**evaluation, "version": "v-other", "passed": True},
            },
            lambda_context,
        )
    assert services.registry.alias()["version"] == loop["champion"]  # untouched

    out = promote.handler(
        {"action": "reject", "version": version, "reasons": summary["reasons"], "report": summary["report"]},
        lambda_context,
    )
    rejected = services.registry.get(version)
    assert out["status"] == rejected.status == "rejected"
    assert "ROC-AUC against champion" in rejected.reason and summary["report"] in rejected.reason


def test_evaluation_refuses_the_training_data_and_names_missing_holdout(loop, trained, lambda_context, monkeypatch):
    services = loop["services"]
    holdout = f"s3://{loop['bucket']}/data/holdout.csv"
    import hashlib

    sha = hashlib.sha256(
        boto3.client("s3").get_object(Bucket=loop["bucket"], Key="data/holdout.csv")["Body"].read()
    ).hexdigest()
    version = register(services, trained[0], version="v-test-3", data_sha256=sha)
    evaluate = load_function("evaluate")
    with pytest.raises(DataValidationError, match="fresh held-out rows"):
        evaluate.handler({**state_after_train(loop, version), "holdout": holdout}, lambda_context)
    monkeypatch.delenv("HOLDOUT_DATA_URI")
    with pytest.raises(DataValidationError, match="HOLDOUT_DATA_URI"):
        load_function("evaluate").handler(state_after_train(loop, version), lambda_context)


def test_mark_failed_records_the_candidate_and_never_the_champion(loop, trained, lambda_context):
    services = loop["services"]
    version = register(services, trained[0], version="v-test-4")
    promote = load_function("promote")
    error = {"Error": "Lambda.Unknown", "Cause": "Task timed out after 300.00 seconds"}
    out = promote.handler(
        {"action": "fail", "run": {**state_after_train(loop, version), "error": error}}, lambda_context
    )
    failed = services.registry.get(version)
    assert out["marked"] is True and failed.status == "failed"
    assert "e1" in failed.reason and "timed out" in failed.reason
    # A failure after the switch (publishing the event) must not mark the serving champion failed.
    out = promote.handler(
        {"action": "fail", "run": {**state_after_train(loop, loop["champion"]), "error": error}}, lambda_context
    )
    assert out["marked"] is False and services.registry.get(loop["champion"]).status == "production"
    # Train failed: no candidate to mark, the run is still reported.
    out = promote.handler({"action": "fail", "run": {"reason": "drift", "error": error}}, lambda_context)
    assert out == {"version": None, "marked": False, "reason": out["reason"]} and "Lambda.Unknown" in out["reason"]


def test_manual_promotion_without_evaluation_still_works(loop, trained, lambda_context):
    version = register(loop["services"], trained[0], version="v-test-5")
    out = load_function("promote").handler({**load_event("promote"), "version": version}, lambda_context)
    assert out["champion"] == version
