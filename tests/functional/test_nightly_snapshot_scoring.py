"""Snapshot CSVs get the nightly rhythm too: the template's SnapshotScoringRule starts the BatchScoring state
machine with a job its Plan step accepts, for the prefix SnapshotScoringInput names (only when it is set)."""

from __future__ import annotations

import io
import json

import boto3

from churnguard.local.template import load_template
from tests.conftest import ROOT, synth_frame

SCHEDULED_TIME = "2026-05-02T03:00:00Z"


def rendered_job(template, bucket: str, prefix: str) -> dict:
    """The rule's input as EventBridge renders it for a scheduled event at SCHEDULED_TIME."""
    target = template["Resources"]["SnapshotScoringRule"]["Properties"]["Targets"][0]
    text = target["InputTransformer"]["InputTemplate"]["Fn::Sub"]
    assert target["InputTransformer"]["InputPathsMap"] == {"time": "$.time"}
    text = text.replace("${BatchBucket}", bucket).replace("${SnapshotScoringInput}", prefix)
    return json.loads(text.replace("<time>", SCHEDULED_TIME))


def test_the_rule_exists_only_when_an_input_prefix_is_configured():
    template = load_template(ROOT / "template.yaml")
    resources = template["Resources"]

    assert template["Conditions"]["ScoresSnapshotsNightly"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "SnapshotScoringInput"}, ""]}]
    }
    assert template["Parameters"]["SnapshotScoringInput"]["Default"] == ""
    for name in ("SnapshotScoringRule", "SnapshotScoringRole"):
        assert resources[name]["Condition"] == "ScoresSnapshotsNightly"
    target = resources["SnapshotScoringRule"]["Properties"]["Targets"][0]
    assert target["Arn"] == {"Ref": "BatchScoringStateMachine"}
    statement = resources["SnapshotScoringRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    assert statement == {
        "Effect": "Allow",
        "Action": "states:StartExecution",
        "Resource": {"Ref": "BatchScoringStateMachine"},
    }


def test_the_nightly_job_is_one_the_batch_plan_step_accepts(aws, services, champion):
    from churnguard.bootstrap import build_batch

    bucket = aws["BATCH_BUCKET"]
    buf = io.StringIO()
    synth_frame(300, seed=8).to_csv(buf, index=False)
    boto3.client("s3").put_object(Bucket=bucket, Key="snapshots/customers.csv", Body=buf.getvalue().encode())
    job = rendered_job(load_template(ROOT / "template.yaml"), bucket, "snapshots/")

    plan = build_batch(services).plan("nightly-1", job)

    assert job["output"] == f"s3://{bucket}/nightly/{SCHEDULED_TIME}"
    assert plan["input_objects"] == 1 and plan["chunks"] >= 1
    assert plan["model_version"] == champion
