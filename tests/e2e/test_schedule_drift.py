"""The drift check as deployed, fired by its own EventBridge schedule rule, on a shifted prediction log.

The rule's schedule is set to rate(1 minute) for this test (LocalStack fires it about a minute later) and put
back afterwards. Runs after the retraining tests (file order), so the retraining it starts overlaps nothing.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.workflows import explain, output, wait_execution


def _shifted_log(stack, registry, model_store, n: int = 1500, seed: int = 51) -> str:
    """Today's prediction log as the Firehose stream lays it out, with tenure halved; returns its key."""
    from churnguard.domain.features import FeatureEncoder
    from churnguard.domain.prediction_log import partition_prefix, prediction_record, to_jsonl
    from churnguard.domain.predictor import Predictor
    from tests.conftest import synth_frame

    champion = registry.champion()
    predictor = Predictor(model_store.get(champion.version, champion.manifest_sha256))
    names = predictor.schema.feature_names
    frame = synth_frame(n, seed=seed)
    frame["tenure"] = [str(int(round(int(t) / 2))) for t in frame["tenure"]]
    p = predictor.probabilities(FeatureEncoder(predictor.schema).encode_frame(frame[names]))
    now = datetime.now(UTC)
    records = [
        prediction_record(
            features=row,
            prediction={
                "model_version": predictor.version,
                "churn_probability": float(p[i]),
                "will_churn": bool(p[i] >= predictor.threshold),
            },
            variant="champion",
            customer_key=f"e2e-{i}",
            request_id=f"e2e-{i}",
            feature_names=names,
            ts=now - timedelta(minutes=30) + timedelta(milliseconds=i),
        )
        for i, row in enumerate(frame[names].to_dict("records"))
    ]
    key = f"{partition_prefix(now.date())}e2e-shifted.jsonl"
    stack.client("s3").put_object(Bucket=stack.outputs["ModelBucketName"], Key=key, Body=to_jsonl(records))
    return key


@pytest.fixture
def drift_rule_every_minute(stack):
    """The drift function's daily schedule rule, firing every minute for one test."""
    lam, events = stack.client("lambda"), stack.client("events")
    arn = lam.get_function_configuration(FunctionName=stack.outputs["DriftCheckFunctionName"])["FunctionArn"]
    names = events.list_rule_names_by_target(TargetArn=arn)["RuleNames"]
    # Two rules: the daily drift check, and RetrainSchedule, which runs the same check as the schedule trigger.
    inputs = {n: [t.get("Input") for t in events.list_targets_by_rule(Rule=n)["Targets"]] for n in names}
    daily = [n for n, i in inputs.items() if i == [None]]
    monthly = [n for n, i in inputs.items() if i and json.loads(i[0] or "{}") == {"trigger": "schedule"}]
    assert len(names) == 2 and len(daily) == 1 and len(monthly) == 1, f"DriftCheckFunction's rules: {inputs}"
    rule = events.describe_rule(Name=daily[0])
    assert rule.get("ScheduleExpression"), rule
    targets = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]

    def schedule(expression: str, state: str) -> None:
        events.put_rule(Name=rule["Name"], ScheduleExpression=expression, State=state)
        # Putting the same targets again is a no-op on AWS; LocalStack (re)schedules a rule only here.
        events.put_targets(Rule=rule["Name"], Targets=targets)

    schedule("rate(1 minute)", "ENABLED")
    yield rule
    schedule(rule["ScheduleExpression"], rule["State"])


def test_the_scheduled_drift_check_starts_a_retraining_that_runs_to_the_end(
    stack, registry, model_store, drift_rule_every_minute
):
    stack.require("RetrainStateMachineArn")
    _shifted_log(stack, registry, model_store)
    before = registry.alias()["version"]
    sfn = stack.client("stepfunctions")
    arn = stack.outputs["RetrainStateMachineArn"]
    already = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn)["executions"]}

    started = []
    deadline = time.monotonic() + 180  # the first scheduled run comes about a minute after the rule changes
    while not started and time.monotonic() < deadline:
        time.sleep(3)
        started = [
            e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["executionArn"] not in already
        ]

    assert started, f"no retraining started; DriftCheckFunction log:\n{stack.function_logs('DriftCheckFunction')}"
    execution = sfn.describe_execution(executionArn=started[0]["executionArn"])
    assert execution["name"].startswith("drift-")
    run_input = json.loads(execution["input"])
    # Drift (and degradation, if earlier tests recorded outcomes): the run builds its own training set.
    assert run_input["triggers"][0] == "drift" and run_input["reason"].startswith("drift") and "data" not in run_input
    report_key = run_input["drift_report"].split("/", 3)[3]
    report = json.loads(
        stack.client("s3").get_object(Bucket=stack.outputs["ModelBucketName"], Key=report_key)["Body"].read()
    )
    assert report["decision"] == "retrain"
    assert "tenure" in json.dumps(report.get("drifted_features", report))

    # The run the drift check started goes to a recorded end: stopped for want of labelled rows, or trained,
    # evaluated and then rejected or left a candidate (no traffic reaches its canary here). Never a new champion.
    finished = wait_execution(sfn, execution["executionArn"], timeout_s=900)
    assert finished["status"] == "SUCCEEDED", explain(sfn, execution["executionArn"])
    result = output(finished)
    assert registry.alias()["version"] == before
    if result["training_set"]["status"] == "insufficient_data":
        assert result["training_set"]["reasons"] and "candidate" not in result
        return
    entry = registry.get(result["candidate"]["version"])
    assert entry.lineage.get("execution", {}).get("id") == execution["executionArn"]
    assert entry.status in ("rejected", "candidate") and entry.reason
