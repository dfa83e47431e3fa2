"""The drift check handler under moto: reads the prediction log, writes the report, starts retraining once."""

import json

import boto3
import pytest

from churnguard.domain.outcomes import Outcome
from tests.conftest import load_function
from tests.functional.loop_fixtures import DAY, NOW, champion, keys, log_records, put_outcomes, write_log
from tests.functional.test_retrain_statemachine import create_retrain_state_machine

EVENT = {
    "version": "0",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "time": NOW.isoformat().replace("+00:00", "Z"),
    "resources": ["arn:aws:events:us-east-1:123456789012:rule/churnguard-drift"],
    "detail": {},
}


@pytest.fixture
def drift_env(aws, services, trained, monkeypatch):
    sfn = boto3.client("stepfunctions")
    arn = create_retrain_state_machine(sfn)
    monkeypatch.setenv("RETRAIN_STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "ChurnGuard")
    # Trained a month before the checks (NOW), as a champion would be.
    trained_at = "2026-02-08T06:00:00.000000Z"
    return {"sfn": sfn, "arn": arn, "bucket": aws["MODEL_BUCKET"], "champion": champion(services, trained, trained_at)}


def executions(env):
    return env["sfn"].list_executions(stateMachineArn=env["arn"])["executions"]


def test_shifted_log_starts_one_retraining_and_writes_the_report(drift_env, predictor, lambda_context, capsys):
    records, _ = log_records(predictor, shift="tenure_halved")
    write_log(drift_env["bucket"], records)
    fn = load_function("drift_check")
    out = fn.handler(EVENT, lambda_context)
    assert out["decision"] == "retrain" and "tenure" in out["drifted_features"]
    assert out["rows"] == 1500 and out["champion"] == drift_env["champion"]
    assert out["retraining"]["started"] is True
    started = executions(drift_env)
    assert len(started) == 1 and started[0]["status"] == "RUNNING"
    inp = json.loads(drift_env["sfn"].describe_execution(executionArn=started[0]["executionArn"])["input"])
    # No data named: the run builds its own training set (BuildTrainingSet applies TRAINING_DATA_URI).
    assert inp == {"reason": "drift", "triggers": ["drift"], "drift_report": out["report"]}
    assert out["estimated"]["status"] == "ok" and 0.6 < out["estimated"]["roc_auc"] < 0.95

    written = keys(drift_env["bucket"], f"reports/drift/{DAY.isoformat()}/")
    assert [k.rsplit(".", 1)[1] for k in written] == ["html", "json"]
    s3 = boto3.client("s3")
    report = json.loads(s3.get_object(Bucket=drift_env["bucket"], Key=written[1])["Body"].read())
    assert report["decision"] == "retrain" and report["window"] == {"start": "2026-03-04", "end": "2026-03-10"}
    html = s3.get_object(Bucket=drift_env["bucket"], Key=written[0])["Body"].read().decode()
    assert "<svg" in html and "tenure: PSI" in html
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(m.get("DriftDetected") == [1.0] or m.get("DriftDetected") == 1.0 for m in emf)

    # The next check finds the execution still running and does not start another.
    again = load_function("drift_check").handler(EVENT, lambda_context)
    assert again["decision"] == "retrain" and again["retraining"]["started"] is False
    assert "already running" in again["retraining"]["reason"]
    assert len(executions(drift_env)) == 1


def test_unshifted_log_is_ok_and_starts_nothing(drift_env, predictor, lambda_context):
    records, _ = log_records(predictor, seed=22)
    shadow, _ = log_records(predictor, n=300, seed=23, shift="tenure_halved", variant="shadow")
    write_log(drift_env["bucket"], records)
    write_log(drift_env["bucket"], shadow, part=1)  # shadow rows duplicate served requests: not counted
    out = load_function("drift_check").handler(EVENT, lambda_context)
    assert out["decision"] == "ok", out["reasons"]
    assert out["rows"] == 1500 and out["performance"] == "no_outcomes"
    assert "retraining" not in out and executions(drift_env) == []


def test_too_little_data_says_so_and_starts_nothing(drift_env, predictor, lambda_context):
    records, _ = log_records(predictor, n=80, shift="tenure_halved")
    write_log(drift_env["bucket"], records)
    out = load_function("drift_check").handler(EVENT, lambda_context)
    assert out["decision"] == "insufficient_data"
    assert "only 80 predictions" in out["reasons"][0]
    assert executions(drift_env) == []


def test_degraded_performance_on_outcomes_starts_retraining(drift_env, predictor, lambda_context, aws):
    records, churned = log_records(predictor, seed=24)
    write_log(drift_env["bucket"], records)
    # The world changed: the customers the model calls safe are the ones leaving.
    put_outcomes(
        aws["OUTCOMES_TABLE"], [Outcome(r["customer_key"], r["churn_probability"] < 0.2, DAY) for r in records]
    )
    out = load_function("drift_check").handler(EVENT, lambda_context)
    assert out["performance"] == "degraded" and out["decision"] == "retrain"
    assert any("ROC-AUC" in r for r in out["reasons"]) and out["drifted_features"] == []
    assert out["retraining"]["started"] is True
    assert out["triggers"] == ["degradation"] and out["retraining"]["input"]["reason"] == "degradation"


def test_the_schedule_starts_a_run_even_without_drift(drift_env, predictor, lambda_context):
    records, _ = log_records(predictor, seed=22)
    write_log(drift_env["bucket"], records)
    out = load_function("drift_check").handler({"trigger": "schedule", "time": EVENT["time"]}, lambda_context)
    assert out["decision"] == "ok" and out["triggers"] == ["schedule"]
    assert out["retraining"]["started"] is True and out["retraining"]["input"]["reason"] == "schedule"
    [started] = executions(drift_env)
    assert started["name"].startswith("schedule-")


def test_enough_new_outcomes_start_a_run_by_volume(drift_env, predictor, lambda_context, aws, monkeypatch):
    records, churned = log_records(predictor, seed=25)
    write_log(drift_env["bucket"], records)
    outcomes = [Outcome(r["customer_key"], bool(c), DAY) for r, c in zip(records[:400], churned[:400], strict=True)]
    # An outcome nobody was scored for before it is not a labelled row.
    put_outcomes(aws["OUTCOMES_TABLE"], [*outcomes, Outcome("never-scored", True, DAY)])
    monkeypatch.setenv("RETRAIN_MIN_NEW_OUTCOMES", "500")
    out = load_function("drift_check").handler(EVENT, lambda_context)
    assert out["new_labelled_outcomes"] == 400 and out["triggers"] == [] and "retraining" not in out

    monkeypatch.setenv("RETRAIN_MIN_NEW_OUTCOMES", "400")
    out = load_function("drift_check").handler(EVENT, lambda_context)
    assert out["triggers"] == ["volume"] and out["retraining"]["input"]["reason"] == "volume"


def test_an_unknown_trigger_is_refused(drift_env, lambda_context):
    from churnguard.entrypoints.events import BadEventError

    with pytest.raises(BadEventError, match="trigger"):
        load_function("drift_check").handler({"trigger": "whenever"}, lambda_context)


def test_no_champion_is_reported_not_raised(aws, lambda_context, monkeypatch):
    out = load_function("drift_check").handler({}, lambda_context)
    assert out["decision"] == "no_champion"
