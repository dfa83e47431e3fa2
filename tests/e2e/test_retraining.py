"""The retraining state machine as deployed, given its data: BuildTrainingSet (passing it through) -> Train ->
Evaluate -> Gate -> canary | Reject, and its failure path. The canary with traffic is tests/e2e/test_closed_loop.py.

The timeout test shortens TrainFunction's timeout through the Lambda API and restores it afterwards.
"""

from __future__ import annotations

import time

import pytest

from tests.e2e.workflows import explain, output, put_customers, retrain_input, run_execution, task_failures


@pytest.fixture(scope="module")
def training_data(stack):
    stack.require("RetrainStateMachineArn")
    data = put_customers(stack, "ModelBucketName", "data/e2e-train.csv", 2000, seed=31)
    holdout = put_customers(stack, "ModelBucketName", "data/e2e-holdout.csv", 1000, seed=32)
    return data, holdout


def test_retraining_ends_with_a_recorded_verdict_and_the_champion_untouched(stack, registry, training_data):
    before = registry.alias()["version"]

    execution = run_execution(stack, "RetrainStateMachineArn", retrain_input(*training_data))

    sfn = stack.client("stepfunctions")
    assert execution["status"] == "SUCCEEDED", explain(sfn, execution["executionArn"])
    result = output(execution)
    assert result["training_set"]["status"] == "given" and result["data"] == training_data[0]
    candidate = result["candidate"]["version"]
    assert candidate != before
    entry = registry.get(candidate)
    assert entry.lineage.get("execution", {}).get("id") == execution["executionArn"]
    assert registry.alias()["version"] == before, "only a canary that proved itself is promoted"
    if result["evaluation"]["passed"]:
        # Past the gate, into a canary nobody sent traffic to: inconclusive, cleared, still a candidate.
        assert result["canary_check"]["decision"] == "inconclusive"
        assert result["not_promoted"]["outcome"] == "inconclusive"
        assert entry.status == "candidate" and "canary inconclusive" in entry.reason
        assert registry.canary() is None
    else:
        assert entry.status == "rejected"
        assert entry.reason, "the rejection says why"
        assert result["rejection"]["status"] == "rejected"


def test_a_crashing_step_is_caught_recorded_and_fails_the_run_without_retry(stack, registry):
    stack.require("RetrainStateMachineArn")
    before = registry.alias()["version"]
    # No label column: TrainFunction raises DataValidationError. The ASL retries only Lambda service errors.
    bad = put_customers(stack, "ModelBucketName", "data/e2e-unlabelled.csv", 300, seed=33, drop=("Churn",))

    execution = run_execution(stack, "RetrainStateMachineArn", retrain_input(bad, bad))

    sfn = stack.client("stepfunctions")
    story = explain(sfn, execution["executionArn"])
    assert execution["status"] == "FAILED", story
    assert execution.get("error") == "RetrainingFailed", story
    failures = task_failures(sfn, execution["executionArn"], "Train")
    assert len(failures) == 1, f"a data error is not retried:\n{story}"
    assert failures[0]["error"] == "DataValidationError", story
    assert "Churn" in (failures[0].get("cause") or ""), "the error names the missing column"
    assert "MarkFailed" in story
    assert registry.alias()["version"] == before


@pytest.fixture
def train_timeout_1s(stack):
    """TrainFunction with a 1 s timeout for one test, then its deployed timeout again."""
    lam = stack.client("lambda")
    name = stack.outputs["TrainFunctionName"]
    original = lam.get_function_configuration(FunctionName=name)["Timeout"]

    def set_timeout(seconds: int) -> None:
        lam.update_function_configuration(FunctionName=name, Timeout=seconds)
        for _ in range(120):
            if lam.get_function_configuration(FunctionName=name).get("LastUpdateStatus") in (None, "Successful"):
                return
            time.sleep(0.5)

    set_timeout(1)
    yield
    set_timeout(original)


def test_a_step_that_times_out_is_reported_and_fails_the_run(stack, registry, training_data, train_timeout_1s):
    before = registry.alias()["version"]

    execution = run_execution(stack, "RetrainStateMachineArn", retrain_input(*training_data))

    sfn = stack.client("stepfunctions")
    story = explain(sfn, execution["executionArn"])
    assert execution["status"] == "FAILED", story
    assert execution.get("error") == "RetrainingFailed", story
    failures = task_failures(sfn, execution["executionArn"], "Train")
    assert len(failures) == 1, story
    assert failures[0]["error"] == "Sandbox.Timedout", story
    assert "timed out" in (failures[0].get("cause") or ""), story
    assert registry.alias()["version"] == before
