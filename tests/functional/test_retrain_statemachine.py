"""The retraining state machine's ASL: consistent with template.yaml, accepted by Step Functions (moto),
and executed there as far as it runs without Lambda (moto's Lambda needs Docker): a failing first step
caught into MarkFailed and Fail. The states after it run in tests/functional/test_retrain_loop.py (each
function's handler in the order the ASL takes) and in tests/e2e (LocalStack)."""

import json
import re
import time

import boto3
import pytest

from churnguard.local.template import load_template
from tests.conftest import ROOT

ASL = ROOT / "infra" / "statemachines" / "retrain.asl.json"
TRANSIENT = {"Lambda.ServiceException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"}


def definition(substitutions=None):
    text = ASL.read_text()
    subs = substitutions or {
        "BuildTrainingSetFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:build-training-set",
        "TrainFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:train",
        "EvaluateFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:evaluate",
        "CanaryFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:canary",
        "PromoteFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:promote",
        "EventBusName": "default",
    }
    for k, v in subs.items():
        text = text.replace("${" + k + "}", v)
    return text


def create_retrain_state_machine(sfn, name="churnguard-retrain"):
    return sfn.create_state_machine(
        name=name, definition=definition(), roleArn="arn:aws:iam::123456789012:role/churnguard-retrain"
    )["stateMachineArn"]


def test_placeholders_match_the_template_substitutions():
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))
    props = load_template(ROOT / "template.yaml")["Resources"]["RetrainStateMachine"]["Properties"]
    assert props["DefinitionUri"] == "infra/statemachines/retrain.asl.json"
    assert placeholders == set(props["DefinitionSubstitutions"])


def test_every_step_retries_transient_errors_and_failures_are_recorded():
    states = json.loads(definition())["States"]
    for name, s in states.items():
        for target in [
            s.get("Next"),
            s.get("Default"),
            *[c["Next"] for c in s.get("Choices", [])],
            *[c["Next"] for c in s.get("Catch", [])],
        ]:
            assert target is None or target in states, f"{name} -> {target}"
        if s["Type"] == "Task" and s["Resource"].endswith("lambda:invoke"):
            assert TRANSIENT <= {e for r in s["Retry"] for e in r["ErrorEquals"]}, name
        if s["Type"] == "Task" and name != "MarkFailed":
            # Anything unexpected is recorded; only a conflict over the champion or the canary ends otherwise.
            assert s["Catch"][-1] == {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}, (
                name
            )
            for c in s["Catch"][:-1]:
                assert set(c["ErrorEquals"]) <= {"PromotionConflictError", "CanaryConflictError"}, name
                assert states[c["Next"]]["Parameters"]["Payload"]["outcome"] in ("superseded", "not_started"), name
    assert states["MarkFailed"]["Catch"][0]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"
    # The training set comes first; too little data stops the run before training.
    first = json.loads(definition())["StartAt"]
    assert first == "BuildTrainingSet" and states[first]["Next"] == "HaveTrainingData"
    assert states["HaveTrainingData"]["Choices"][0]["Next"] == "PublishStopped"
    gate = states["Gate"]
    assert gate["Choices"] == [{"Variable": "$.evaluation.passed", "BooleanEquals": True, "Next": "StartCanary"}]
    assert gate["Default"] == "Reject"
    # Passing the gate leads to the canary, its wait and its check before any promotion.
    path, at = [], "StartCanary"
    while at != "Promote" and len(path) < 10:
        path.append(at)
        at = states[at].get("Next") or states[at]["Choices"][0]["Next"]
    assert path == ["StartCanary", "PublishCanaryStarted", "WaitCanary", "CheckCanary", "CanaryVerdict"]
    assert states["WaitCanary"]["SecondsPath"] == "$.canary.wait_seconds"
    detail_types = {
        s["Parameters"]["Entries"][0]["DetailType"]
        for s in states.values()
        if s.get("Resource") == "arn:aws:states:::events:putEvents"
    }
    assert detail_types == {"RetrainingStopped", "CanaryStarted", "ModelPromoted", "ModelRejected", "ModelNotPromoted"}
    payload = states["Promote"]["Parameters"]["Payload"]
    assert payload["evaluation.$"] == "$.evaluation"  # the gate travels along
    assert payload["expected_revision.$"] == "$.canary.champion_revision"  # against the champion the canary saw


def test_each_step_keeps_the_function_answer_not_the_invoke_envelope():
    # lambda:invoke answers {"Payload": ..., "StatusCode": ...}: a state that stores it for later states must pick
    # the Payload out (ResultSelector, or OutputPath for the first step), or "$.canary.version" is not found.
    # MarkFailed's result is only recorded; Fail follows it.
    for name, s in json.loads(definition())["States"].items():
        if s.get("Resource") == "arn:aws:states:::lambda:invoke" and name != "MarkFailed":
            picked = list((s.get("ResultSelector") or {}).values()) or [s.get("OutputPath")]
            assert picked and all(str(p).startswith("$.Payload") for p in picked), name


@pytest.fixture
def sfn_executing(monkeypatch):
    from moto import mock_aws

    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield boto3.client("stepfunctions")


def run(sfn, arn, execution_input, name):
    e = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(execution_input))["executionArn"]
    for _ in range(300):
        d = sfn.describe_execution(executionArn=e)
        if d["status"] != "RUNNING":
            break
        time.sleep(0.05)
    events = sfn.get_execution_history(executionArn=e)["events"]
    entered = [ev["stateEnteredEventDetails"]["name"] for ev in events if "stateEnteredEventDetails" in ev]
    return d, entered


def test_a_failing_first_step_is_caught_and_recorded(sfn_executing):
    arn = create_retrain_state_machine(sfn_executing)
    # The Lambda functions do not exist here, so BuildTrainingSet fails: the Catch must route it to MarkFailed.
    d, entered = run(sfn_executing, arn, {"reason": "manual"}, "build-fails")
    assert d["status"] == "FAILED" and d["error"] == "RetrainingFailed"
    assert entered == ["BuildTrainingSet", "MarkFailed", "Failed"]
