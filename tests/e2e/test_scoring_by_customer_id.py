"""Features from event logs as deployed: the FeatureRefreshFunction from template.yaml builds a training set
from logs in S3, the TrainFunction trains on it unchanged, the refresh (the schedule's event) stores every
active customer's features and scores, and POST /customers/{id}/predict answers through API Gateway. With
that model the champion, the retraining loop's BuildTrainingSetFunction builds its fresh set from the same
logs at recent cutoffs, and Train and Evaluate take it as the state machine passes it.

Runs after the drift test (file order). It makes its model the champion and restores the previous one at
the end, so nothing after it sees a different champion.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import FAST, load_event

END = datetime(2026, 6, 1, tzinfo=UTC)
NOW = "2026-05-02T00:00:00Z"  # a period start of the generated logs; the refresh runs "as of" it


@pytest.fixture(scope="module")
def logs(stack, tmp_path_factory):
    """Generated customers and event logs where the template points the function: s3://ModelBucket/features/."""
    from churnguard.local.event_synth import generate_events

    stack.require("FeatureRefreshFunctionName", "FeaturesTableName", "ModelBucketName", "TrainFunctionName")
    data = generate_events(800, seed=61, end=END)
    folder = tmp_path_factory.mktemp("e2e-logs")
    data.write(folder)
    s3, bucket = stack.client("s3"), stack.outputs["ModelBucketName"]
    for f in sorted(Path(folder).iterdir()):
        key = "features/definition.yaml" if f.name == "features.yaml" else f"features/{f.name}"
        s3.upload_file(str(f), bucket, key)
    return data


@pytest.fixture(scope="module")
def events_champion(stack, registry, logs):
    """A model trained by the deployed functions on the built features, promoted; the old champion restored after."""
    bucket = stack.outputs["ModelBucketName"]
    cutoffs = [c.strftime("%Y-%m-%d") for c in logs.labelled_cutoffs(12)]
    built = stack.invoke(
        "FeatureRefreshFunctionName",
        {"action": "build", "cutoffs": cutoffs, "out": f"s3://{bucket}/data/e2e-events-train.csv"},
    )
    trained = stack.invoke(
        "TrainFunctionName",
        {"data": built["training_csv"], "schema": built["schema"], "config": FAST, "reason": "e2e events"},
    )
    previous = registry.alias()
    registry.promote(trained["version"], reason="e2e: scoring by customer id")
    yield built, trained
    if previous:
        registry.promote(previous["version"], reason="e2e: restore the champion")


def test_the_build_runs_in_the_deployed_function_and_the_model_trains_on_it_unchanged(events_champion):
    built, trained = events_champion

    assert built["cutoffs"] == 12 and built["rows"] > 3000
    assert built["schema"].endswith("e2e-events-train.schema.yaml")
    assert [w for w in built["leak_warnings"] if "refunds" in w] == []  # the backdated refunds are excluded
    assert "refunds_30d" in built["no_signal"]
    assert trained["metrics"]["cv_method"] == "time-ordered"
    assert 0.6 < trained["metrics"]["cv_roc_auc"] < 0.95


def test_the_refresh_on_its_schedule_stores_features_and_scores_and_the_api_answers_by_id(stack, api, events_champion):
    _, trained = events_champion
    lam, events = stack.client("lambda"), stack.client("events")
    arn = lam.get_function_configuration(FunctionName=stack.outputs["FeatureRefreshFunctionName"])["FunctionArn"]
    rules = events.list_rule_names_by_target(TargetArn=arn)["RuleNames"]
    assert len(rules) == 1 and events.describe_rule(Name=rules[0])["ScheduleExpression"] == "rate(1 day)"

    refreshed = stack.invoke("FeatureRefreshFunctionName", {**load_event("feature_refresh"), "time": NOW})

    assert refreshed["as_of"] == NOW
    assert refreshed["model_version"] == trained["version"]
    assert refreshed["customers"] == refreshed["features_stored"] == refreshed["scored"] > 300
    customer = _a_scored_customer(stack, api)
    answer = _eventually(lambda: api.post(f"/customers/{customer}/predict"), trained["version"], stack)
    stored = api.get(f"/customers/{customer}/score").json()
    assert answer["features_as_of"] == NOW
    assert answer["churn_probability"] == pytest.approx(stored["churn_probability"], abs=1e-4)
    assert answer["risk_level"] == stored["risk_level"]
    assert answer["reasons"] and {r["effect"] for r in answer["reasons"]} <= {"increases risk", "decreases risk"}
    unknown = api.post("/customers/nobody-at-all/predict")
    assert unknown.status_code == 404 and unknown.json()["error"] == "customer not found"


def test_the_loop_builds_its_training_set_from_the_event_logs_and_evaluates_on_the_newest_cutoff(
    stack, events_champion
):
    import csv
    import io

    _, trained = events_champion
    bucket = stack.outputs["ModelBucketName"]
    run = "e2e-events-run"
    execution = {"id": f"arn:aws:states:::execution:retrain:{run}", "name": run, "started": "2026-06-01T06:00:00Z"}

    built = stack.invoke("BuildTrainingSetFunctionName", {"run": {"reason": "e2e events"}, "execution": execution})

    ts = built["training_set"]
    assert ts["status"] == "built" and ts["source"] == "event_features", ts
    assert built["data"] == f"s3://{bucket}/data/training-sets/{run}/train.csv"
    assert ts["period"]["holdout"] == {"start": "2026-05-03", "end": "2026-06-01", "periods": 1}
    assert ts["period"]["train"]["periods"] == 6 and ts["rows"]["train"] > 2000 and ts["rows"]["holdout"] > 300
    body = stack.client("s3").get_object(Bucket=bucket, Key=f"data/training-sets/{run}/holdout.csv")["Body"].read()
    assert {r["cutoff"] for r in csv.DictReader(io.StringIO(body.decode()))} == {"2026-05-02T00:00:00Z"}

    # The state machine's next two steps, as it passes them the state: Train reads the schema written beside
    # the rows (the champion's) and validates in time order; Evaluate judges on the held-out newest cutoff.
    candidate = stack.invoke("TrainFunctionName", {**built, "config": FAST})
    assert candidate["metrics"]["cv_method"] == "time-ordered" and candidate["metrics"]["rows"] == ts["rows"]["train"]
    evaluation = stack.invoke("EvaluateFunctionName", {**built, "candidate": {"version": candidate["version"]}})
    assert evaluation["champion"] == trained["version"], evaluation
    assert evaluation["rows"] == ts["rows"]["holdout"] and evaluation["challenger"]["roc_auc"] > 0.6, evaluation


def _a_scored_customer(stack, api) -> str:
    """A customer id whose score the refresh stored (the generated ids run C0000000, C0000001, ...)."""
    for i in range(800):
        cid = f"C{i:07d}"
        if api.get(f"/customers/{cid}/score").status_code == 200:
            return cid
    raise AssertionError(f"no customer scored; PredictFunction log:\n{stack.function_logs('PredictFunction')}")


def _eventually(call, version: str, stack, timeout_s: float = 60) -> dict:
    """The answer once the predict function's champion cache (ChampionTtlSeconds) has seen the promotion."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = call()
        if response.status_code == 200 and response.json()["model_version"] == version:
            return response.json()
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{response.status_code}: {response.text[:500]}\nPredictFunction log:\n"
                f"{stack.function_logs('PredictFunction')}"
            )
        time.sleep(2)
