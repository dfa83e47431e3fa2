"""Batch scoring under moto: the function's steps driven as the state machine drives them,
idempotent chunks, bad input, stored customer scores behind GET /customers/{id}/score, and the
state machine definition accepted by Step Functions (moto)."""

from __future__ import annotations

import csv
import io
import json

import boto3
import pytest

from churnguard.domain.errors import DataValidationError, StorageError
from tests.conftest import ROOT, load_function, synth_csv_bytes, synth_frame

ASL = ROOT / "infra" / "statemachines" / "batch_scoring.asl.json"


@pytest.fixture
def fn(aws, champion):
    return load_function("batch_score")


def _put(aws, key: str, body: bytes) -> str:
    boto3.client("s3").put_object(Bucket=aws["BATCH_BUCKET"], Key=key, Body=body)
    return f"s3://{aws['BATCH_BUCKET']}/{key}"


def _chunk_result_selector():
    """The ASL's ResultSelector for a scored chunk, as a function of the Lambda's answer."""
    selector = json.loads(ASL.read_text().replace("${BatchMaxConcurrency}", "1"))
    selector = selector["States"]["ScoreChunks"]["ItemProcessor"]["States"]["ScoreChunk"]["ResultSelector"]
    fields = {k.removesuffix(".$"): v.removeprefix("$.Payload.") for k, v in selector.items()}
    return lambda payload: {k: payload[v] for k, v in fields.items()}  # a missing field fails, as in Step Functions


def _run(fn, ctx, job_id: str, job: dict) -> dict:
    """What BatchScoring does: Plan, a Map over the manifest (each result cut down by the ASL's
    ResultSelector), Finish."""
    plan = fn.handler({"action": "plan", "job_id": job_id, "job": job}, ctx)
    body = boto3.client("s3").get_object(Bucket=plan["manifest"]["bucket"], Key=plan["manifest"]["key"])["Body"].read()
    select = _chunk_result_selector()
    results = [
        select(
            fn.handler(
                {
                    "action": "score_chunk",
                    "job_id": job_id,
                    "chunk": chunk,
                    "output": plan["output"],
                    "model_version": plan["model_version"],
                    "options": plan["options"],
                },
                ctx,
            )
        )
        for chunk in json.loads(body)
    ]
    return fn.handler({"action": "finish", "job_id": job_id, "plan": plan, "chunks": results}, ctx)


def _objects(aws, prefix: str) -> dict[str, bytes]:
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=aws["BATCH_BUCKET"], Prefix=prefix).get("Contents", [])]
    return {k: s3.get_object(Bucket=aws["BATCH_BUCKET"], Key=k)["Body"].read() for k in keys}


def _csv_rows(blobs) -> list[dict[str, str]]:
    return [r for b in blobs for r in csv.DictReader(io.StringIO(b.decode()))]


def test_multi_object_job_scores_every_row_exactly_once(aws, fn, lambda_context):
    a, b = synth_frame(700, seed=21), synth_frame(500, seed=22)
    b.loc[5, "tenure"] = "lots"  # one bad row: rejected with its reason, the rest scored
    for name, frame in (("a", a), ("b", b)):
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        _put(aws, f"in/{name}.csv", buf.getvalue().encode())
    bucket = aws["BATCH_BUCKET"]
    summary = _run(
        fn,
        lambda_context,
        "job-1",
        {
            "input": f"s3://{bucket}/in/",
            "output": f"s3://{bucket}/out/job-1",
            "chunk_bytes": 65536,
            "options": {"reasons": "medium"},
        },
    )
    assert summary["status"] == "SUCCEEDED" and summary["chunks"] > 2  # a.csv spans several byte ranges
    assert (summary["rows_in"], summary["scored"], summary["rejected"]) == (1200, 1199, 1)
    assert summary["scoring_engines"] == ["leaf-tables"]  # the exact tables scored every chunk
    scored = _csv_rows(_objects(aws, "out/job-1/scores/").values())
    ids = [r["customerID"] for r in scored]
    assert len(ids) == 1199 and set(ids) == (set(a.customerID) | set(b.customerID)) - {b.loc[5, "customerID"]}
    errors = _csv_rows(_objects(aws, "out/job-1/errors/").values())
    assert [e["reason"] for e in errors] == ["tenure: 'lots' is not a number"]
    assert summary["reasons"]["rows"] == sum(1 for r in scored if r["reasons"])
    # the job record and the summary object agree
    record = fn._batch.jobs.get("job-1")
    assert record["status"] == "SUCCEEDED" and record["scored"] == 1199
    stored = json.loads(_objects(aws, "out/job-1/_job/summary.json")["out/job-1/_job/summary.json"])
    assert stored["rows_in"] == 1200


def test_a_quoted_multi_line_field_across_a_chunk_edge_fabricates_nobody(aws, fn, lambda_context):
    """A free-text column whose value holds line breaks and, on one line, a whole valid customer row,
    straddling the 64 KiB chunk edge: every real customer is scored and stored once, the forged one never."""
    frame = synth_frame(600, seed=41).drop(columns=["Churn"])
    frame["customerID"] = [f"REAL-{i:04d}" for i in range(len(frame))]
    forged = frame.iloc[0].astype(str).tolist()
    forged[0] = "FORGED-1"
    frame["notes"] = ""
    # The note goes to the last row whose forged line starts before the edge; padding row 0's note
    # then moves the forged line's first byte to just before, on and after byte 65,536.
    frame["notes"] = [
        f'called twice, "angry"\n{",".join(forged)},\nwill call back\n' if i == 0 else "" for i in range(600)
    ]
    note = frame.loc[0, "notes"]
    frame.loc[0, "notes"] = ""
    base = frame.to_csv(index=False, lineterminator="\n")
    ends = [k for k, ch in enumerate(base) if ch == "\n"]
    lead = len('"called twice, ""angry""\n')  # the note's bytes before the forged line, as written
    row = max(r for r in range(1, 600) if ends[r + 1] + lead < 65530)  # ends[0] is the header's
    frame.loc[row, "notes"] = note
    for delta in (-1, 0, 1, 7):
        frame.loc[0, "notes"] = "x" * (65536 + delta - (ends[row + 1] + lead))
        data = frame.to_csv(index=False, lineterminator="\n").encode()
        assert data.index(b"FORGED-1") == 65536 + delta
        uri = _put(aws, f"in/notes{delta}.csv", data)
        bucket = aws["BATCH_BUCKET"]
        job = {"input": uri, "output": f"s3://{bucket}/out/notes{delta}", "chunk_bytes": 65536}
        summary = _run(fn, lambda_context, f"notes{delta}", job)
        assert summary["chunks"] == 2
        assert (summary["rows_in"], summary["scored"], summary["rejected"]) == (600, 600, 0)
        ids = [r["customerID"] for r in _csv_rows(_objects(aws, f"out/notes{delta}/scores/").values())]
        assert sorted(ids) == sorted(frame["customerID"])
        assert fn._batch.scores.get("FORGED-1") is None
        assert fn._batch.scores.get(frame.loc[row, "customerID"]) is not None


def test_duplicate_column_names_are_refused_before_any_work(aws, fn, lambda_context):
    frame = synth_frame(20, seed=2).drop(columns=["Churn"])
    text = frame.to_csv(index=False, lineterminator="\n")
    header, rest = text.split("\n", 1)
    uri = _put(aws, "in/dup.csv", (header + ", tenure\n" + rest.replace("\n", ",99\n")).encode())
    bucket = aws["BATCH_BUCKET"]
    with pytest.raises(DataValidationError, match="'tenure'.*rename or remove"):
        fn.handler(
            {"action": "plan", "job_id": "dup", "job": {"input": uri, "output": f"s3://{bucket}/out/dup"}},
            lambda_context,
        )
    assert not _objects(aws, "out/dup/")


def test_a_retried_chunk_writes_nothing_twice(aws, fn, lambda_context, monkeypatch):
    uri = _put(aws, "in/c.csv", synth_csv_bytes(300, seed=5))
    bucket = aws["BATCH_BUCKET"]
    plan = fn.handler(
        {"action": "plan", "job_id": "job-2", "job": {"input": uri, "output": f"s3://{bucket}/out/job-2"}},
        lambda_context,
    )
    chunk = json.loads(_objects(aws, plan["manifest"]["key"])[plan["manifest"]["key"]])[0]
    event = {
        "action": "score_chunk",
        "job_id": "job-2",
        "chunk": chunk,
        "output": plan["output"],
        "model_version": plan["model_version"],
        "options": plan["options"],
    }
    # the first attempt dies after writing its output, before storing scores (a timeout would do the same)
    real_put_many = fn._batch.scores.put_many
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise StorageError("DynamoDB went away")
        return real_put_many(*args, **kwargs)

    monkeypatch.setattr(fn._batch.scores, "put_many", flaky)
    with pytest.raises(StorageError):
        fn.handler(event, lambda_context)
    first = fn.handler(event, lambda_context)  # the Map's retry
    again = fn.handler(event, lambda_context)  # a re-run of the job: answered from the idempotency record
    assert first == again and calls["n"] == 2
    parts = _objects(aws, "out/job-2/scores/")
    assert list(parts) == ["out/job-2/scores/part-00000.csv"]
    assert len(_csv_rows(parts.values())) == 300
    items = boto3.client("dynamodb").scan(TableName=aws["SCORES_TABLE"], Select="COUNT")["Count"]
    assert items == 300


def test_stored_scores_answer_get_customer_score_without_rescoring(aws, fn, lambda_context):
    frame = synth_frame(50, seed=31)
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    uri = _put(aws, "in/d.csv", buf.getvalue().encode())
    bucket = aws["BATCH_BUCKET"]
    _run(
        fn, lambda_context, "job-3", {"input": uri, "output": f"s3://{bucket}/out/job-3", "options": {"reasons": "all"}}
    )
    rows = {r["customerID"]: r for r in _csv_rows(_objects(aws, "out/job-3/scores/").values())}
    cid = frame.loc[0, "customerID"]

    from fastapi.testclient import TestClient

    from churnguard.bootstrap import build_services
    from churnguard.entrypoints.api import build_app
    from churnguard.settings import Settings

    app = build_app(build_services(Settings.from_env()))
    client = TestClient(app)
    got = client.get(f"/customers/{cid}/score")
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["churn_probability"] == pytest.approx(float(rows[cid]["churn_probability"]))
    assert body["reasons"] == json.loads(rows[cid]["reasons"]) and body["job_id"] == "job-3"
    missing = client.get("/customers/0000-NOBODY/score")
    assert missing.status_code == 404 and "no stored score" in missing.json()["detail"]
    # the clear id is not what is stored
    item = boto3.client("dynamodb").scan(TableName=aws["SCORES_TABLE"], Limit=1)["Items"][0]
    assert cid not in json.dumps(item)


def test_missing_input_and_wrong_schema_fail_the_job_with_a_clear_reason(aws, fn, lambda_context):
    bucket = aws["BATCH_BUCKET"]
    with pytest.raises(DataValidationError, match="does not exist"):
        fn.handler(
            {
                "action": "plan",
                "job_id": "job-4",
                "job": {"input": f"s3://{bucket}/nothing/here.csv", "output": f"s3://{bucket}/out/job-4"},
            },
            lambda_context,
        )
    wrong = synth_frame(20, seed=1).drop(columns=["Contract"])
    buf = io.StringIO()
    wrong.to_csv(buf, index=False)
    uri = _put(aws, "in/wrong.csv", buf.getvalue().encode())
    with pytest.raises(DataValidationError, match="missing columns Contract"):
        fn.handler(
            {"action": "plan", "job_id": "job-5", "job": {"input": uri, "output": f"s3://{bucket}/out/job-5"}},
            lambda_context,
        )
    assert not _objects(aws, "out/job-5/")  # nothing written for a job that cannot run
    # the state machine's Catch hands the Lambda error to the fail step, which records the reason
    cause = json.dumps(
        {
            "errorType": "DataValidationError",
            "errorMessage": f"{uri} does not match schema 'telco': missing columns Contract",
        }
    )
    record = fn.handler(
        {"action": "fail", "job_id": "job-5", "error": {"Error": "DataValidationError", "Cause": cause}}, lambda_context
    )
    assert record["status"] == "FAILED" and "missing columns Contract" in record["reason"]
    assert fn._batch.jobs.get("job-5")["reason"] == record["reason"]


def render_definition(max_concurrency: int = 7) -> str:
    """The ASL with DefinitionSubstitutions applied, as CloudFormation does."""
    text = ASL.read_text()
    subs = {
        "BatchScoreFunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:batch-score",
        "BatchMaxConcurrency": str(max_concurrency),
        "EventBusName": "default",
    }
    for k, v in subs.items():
        text = text.replace("${" + k + "}", v)
    assert "${" not in text
    return text


def test_state_machine_definition_is_accepted_by_step_functions(aws):
    from churnguard.local.template import load_template

    template = load_template(ROOT / "template.yaml")
    sm = template["Resources"]["BatchScoringStateMachine"]["Properties"]
    assert (ROOT / sm["DefinitionUri"]) == ASL
    assert set(sm["DefinitionSubstitutions"]) == {"BatchScoreFunctionArn", "BatchMaxConcurrency", "EventBusName"}
    assert "BatchScoringStateMachineArn" in template["Outputs"]

    definition = render_definition(7)
    asl = json.loads(definition)
    scoring = asl["States"]["ScoreChunks"]
    assert scoring["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert scoring["ItemReader"]["Resource"] == "arn:aws:states:::s3:getObject"
    assert scoring["MaxConcurrency"] == 7
    assert asl["States"]["PublishBatchScored"]["Parameters"]["Entries"][0]["DetailType"] == "BatchScored"

    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="churnguard-batch-scoring", definition=definition, roleArn="arn:aws:iam::123456789012:role/batch-scoring"
    )["stateMachineArn"]
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == asl
