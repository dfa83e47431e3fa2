"""The retraining state machine as deployed: Train -> Evaluate -> Gate -> Promote | Reject, and its failure path.

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


def test_retraining_succeeds_with_a_new_champion_or_a_recorded_rejection(stack, registry, training_data):
    before = registry.alias()["version"]

    execution = run_execution(stack, "RetrainStateMachineArn", retrain_input(*training_data))

    sfn = stack.client("stepfunctions")
    assert execution["status"] == "SUCCEEDED", explain(sfn, execution["executionArn"])
    result = output(execution)
    candidate = result["candidate"]["version"]
    assert candidate != before
    entry = registry.get(candidate)
    assert entry.lineage.get("execution", {}).get("id") == execution["executionArn"]
    if result["evaluation"]["passed"]:
        assert registry.alias()["version"] == candidate
        assert entry.status == "production"
        assert registry.get(before).status == "archived"
    else:
        assert registry.alias()["version"] == before, "a rejected candidate never becomes champion"
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
