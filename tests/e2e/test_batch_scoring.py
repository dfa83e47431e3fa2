"""The batch scoring state machine as deployed: Plan -> Distributed Map over the chunk manifest -> Finish."""

from __future__ import annotations

import csv
import io
import json

from tests.e2e.workflows import explain, output, run_execution


def _objects(stack, bucket: str, prefix: str) -> dict[str, bytes]:
    s3 = stack.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def _rows(blobs) -> list[dict[str, str]]:
    return [r for b in blobs for r in csv.DictReader(io.StringIO(b.decode()))]


def test_a_multi_object_job_scores_every_row_once_and_the_counts_reconcile(stack, registry):
    from tests.conftest import synth_frame

    stack.require("BatchScoringStateMachineArn", "BatchBucketName")
    bucket = stack.outputs["BatchBucketName"]
    s3 = stack.client("s3")
    a, b = synth_frame(700, seed=41), synth_frame(500, seed=42)
    b.loc[5, "tenure"] = "lots"  # one bad row: rejected with its reason, the rest scored
    for name, frame in (("a", a), ("b", b)):
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        s3.put_object(Bucket=bucket, Key=f"e2e-in/{name}.csv", Body=buf.getvalue().encode())

    execution = run_execution(
        stack,
        "BatchScoringStateMachineArn",
        {
            "input": f"s3://{bucket}/e2e-in/",
            "output": f"s3://{bucket}/e2e-out/job",
            "chunk_bytes": 65536,
            "options": {"reasons": "medium"},
        },
    )

    sfn = stack.client("stepfunctions")
    assert execution["status"] == "SUCCEEDED", explain(sfn, execution["executionArn"])
    summary = output(execution)
    assert summary["chunks"] > 2, "a.csv spans several byte ranges: several Map children"
    assert (summary["rows_in"], summary["scored"], summary["rejected"]) == (1200, 1199, 1)
    assert sum(summary["risk_levels"].values()) == summary["scored"]
    assert summary["model_version"] == registry.alias()["version"]
    assert summary["scoring_engines"] == ["leaf-tables"]  # the exact tables, inside the packaged function
    scored = _rows(_objects(stack, bucket, "e2e-out/job/scores/").values())
    ids = [r["customerID"] for r in scored]
    assert len(ids) == len(set(ids)) == 1199, "every good row scored exactly once"
    assert set(ids) == (set(a.customerID) | set(b.customerID)) - {b.loc[5, "customerID"]}
    errors = _rows(_objects(stack, bucket, "e2e-out/job/errors/").values())
    assert len(errors) == 1 and "tenure" in errors[0]["reason"], errors
    stored = json.loads(_objects(stack, bucket, "e2e-out/job/_job/summary.json")["e2e-out/job/_job/summary.json"])
    assert (stored["rows_in"], stored["scored"], stored["rejected"]) == (1200, 1199, 1)
