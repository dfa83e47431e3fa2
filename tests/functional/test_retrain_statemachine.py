"""The retraining state machine's ASL: consistent with template.yaml, accepted by Step Functions (moto),
and executed there as far as it runs without Lambda (moto's Lambda needs Docker): input validation,
and a failing Train step caught into MarkFailed and Fail."""

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
        "TrainFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:train",
        "EvaluateFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:evaluate",
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
            assert s["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "MarkFailed"}], name
    assert states["MarkFailed"]["Catch"][0]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"
    gate = states["Gate"]
    assert gate["Choices"] == [{"Variable": "$.evaluation.passed", "BooleanEquals": True, "Next": "Promote"}]
    assert gate["Default"] == "Reject"
    detail_types = {
        s["Parameters"]["Entries"][0]["DetailType"]
        for s in states.values()
        if s.get("Resource") == "arn:aws:states:::events:putEvents"
    }
    assert detail_types == {"ModelPromoted", "ModelRejected"}
    assert states["Promote"]["Parameters"]["Payload"]["evaluation.$"] == "$.evaluation"  # the gate travels along


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


def test_input_without_training_data_fails_before_any_work(sfn_executing):
    arn = create_retrain_state_machine(sfn_executing)
    d, entered = run(sfn_executing, arn, {"reason": "manual"}, "no-data")
    assert d["status"] == "FAILED" and d["error"] == "InputInvalid" and "data" in d["cause"]
    assert entered == ["CheckInput", "InputInvalid"]


def test_a_failing_train_step_is_caught_and_recorded(sfn_executing):
    arn = create_retrain_state_machine(sfn_executing)
    # The Lambda functions do not exist here, so Train fails: the Catch must route it to MarkFailed.
    d, entered = run(sfn_executing, arn, {"data": "s3://b/train.csv"}, "train-fails")
    assert d["status"] == "FAILED" and d["error"] == "RetrainingFailed"
    assert entered == ["CheckInput", "DefaultReason", "RecordExecution", "Train", "MarkFailed", "Failed"]
