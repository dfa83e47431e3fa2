"""S3 and DynamoDB faults injected into the real moto-backed clients (botocore's event system,
tests/functional/faultinject.py) during training, prediction, batch scoring and promotion.

Transient throttling is retried by botocore (standard mode, bootstrap.aws_client_config) and
nothing is lost; a persistent failure surfaces as StorageError with nothing half-written, and the
champion is never touched by a failed run.
"""

from __future__ import annotations

import io
import json
import threading

import boto3
import pytest

from churnguard.domain.errors import StorageError
from churnguard.domain.training import TrainingConfig
from churnguard.services.champion import ChampionProvider
from churnguard.services.lifecycle import promote, train_and_register
from tests.conftest import FAST, load_function, synth_csv_bytes, synth_frame
from tests.functional.faultinject import inject, remove
from tests.functional.test_security_degradation import register

FAULTS: dict[str, int] = {}


def count(fault) -> None:
    FAULTS[f"{fault.operation}:{fault.code}"] = FAULTS.get(f"{fault.operation}:{fault.code}", 0) + fault.injected


@pytest.fixture
def serialised_moto_transactions(monkeypatch):
    """DynamoDB runs a transaction atomically; moto (in process) snapshots the table and restores the
    snapshot when a transaction fails, so a concurrent loser can undo a winner's write. Holding one lock
    per transaction gives moto DynamoDB's real isolation; our code is unchanged."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.Lock()
    original = DynamoDBBackend.transact_write_items

    def atomic(self, *args, **kwargs):
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(DynamoDBBackend, "transact_write_items", atomic)


def champion_state(services):
    alias = services.registry.alias()
    return alias and (alias["version"], alias["revision"]), {m.version: m.status for m in services.registry.list()}


# ---------------------------------------------------------------- training
def test_training_rides_out_s3_and_dynamodb_throttling(services, schema):
    s3_fault = inject(services.store.s3, "PutObject", "SlowDown", times=2)
    ddb_fault = inject(services.registry.ddb, "PutItem", "ProvisionedThroughputExceededException", times=2)
    summary = train_and_register(
        synth_csv_bytes(600), schema, TrainingConfig.from_dict(FAST), services.store, services.registry, source="test"
    )
    count(s3_fault), count(ddb_fault)
    assert (s3_fault.injected, ddb_fault.injected) == (2, 2)
    assert services.registry.get(summary["version"]).status == "candidate"
    assert services.store.get(summary["version"], services.registry.get(summary["version"]).manifest_sha256)


@pytest.mark.parametrize("where", ["s3", "dynamodb"])
def test_a_failed_training_run_leaves_nothing_behind_and_the_champion_alone(aws, services, trained, schema, where):
    register(services, trained, "v1", promote=True)
    before = champion_state(services)
    if where == "s3":
        fault = inject(services.store.s3, "PutObject", "InternalError")  # every attempt fails
    else:
        fault = inject(services.registry.ddb, "PutItem", "ProvisionedThroughputExceededException")
    with pytest.raises(StorageError):
        train_and_register(
            synth_csv_bytes(600),
            schema,
            TrainingConfig.from_dict(FAST),
            services.store,
            services.registry,
            source="test",
        )
    count(fault)
    assert fault.injected >= 4, "botocore retried before giving up"
    remove(services.store.s3 if where == "s3" else services.registry.ddb, fault)
    assert champion_state(services) == before
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws["MODEL_BUCKET"]).get("Contents", [])]
    assert sorted(k.split("/")[1] for k in keys if k.startswith("models/")) == ["v1"] * 3, "no orphan bundle"


# ---------------------------------------------------------------- prediction
def test_prediction_loads_through_throttling_and_serves_last_good_when_the_table_is_down(services, trained):
    register(services, trained, "v1", promote=True)
    provider = ChampionProvider(services.registry, services.store, ttl_s=0)
    s3_fault = inject(services.store.s3, "GetObject", "SlowDown", times=2)
    assert provider.champion().version == "v1"
    ddb_fault = inject(services.registry.ddb, "GetItem", "ThrottlingException")
    for _ in range(3):
        assert provider.champion().version == "v1"
    count(s3_fault), count(ddb_fault)
    assert s3_fault.injected == 2 and ddb_fault.injected >= 4


# ---------------------------------------------------------------- promotion
def test_promotion_is_retried_through_throttling_and_a_failed_one_changes_nothing(services, trained):
    for v in ("v1", "v2", "v3"):
        register(services, trained, v)
    promote(services.registry, "v1")
    fault = inject(services.registry.ddb, "TransactWriteItems", "ProvisionedThroughputExceededException", times=1)
    assert promote(services.registry, "v2")["version"] == "v2"
    count(fault)
    remove(services.registry.ddb, fault)
    before = champion_state(services)
    fault = inject(services.registry.ddb, "TransactWriteItems", "InternalServerError")
    with pytest.raises(StorageError):
        promote(services.registry, "v3")
    count(fault)
    remove(services.registry.ddb, fault)
    assert champion_state(services) == before
    assert before[1] == {"v1": "archived", "v2": "production", "v3": "candidate"}


def test_twenty_concurrent_promotions_under_throttling_leave_exactly_one_champion(
    services, trained, serialised_moto_transactions
):
    from churnguard.domain.errors import PromotionConflictError

    register(services, trained, "base", promote=True)
    contenders = [f"v{i:02d}" for i in range(20)]
    for v in contenders:
        register(services, trained, v)
    revision = int(services.registry.alias()["revision"])
    # Every third call of each kind is throttled: retried by botocore, never a second champion.
    faults = [
        inject(services.registry.ddb, op, "ProvisionedThroughputExceededException", times=7)
        for op in ("TransactWriteItems", "GetItem")
    ]
    barrier = threading.Barrier(len(contenders))
    wins, conflicts, errors = [], [], []

    def attempt(v):
        barrier.wait()
        try:
            services.registry.promote(v, expected_revision=revision)
            wins.append(v)
        except PromotionConflictError:
            conflicts.append(v)
        except StorageError as e:  # pragma: no cover - would mean retries were exhausted
            errors.append(e)

    threads = [threading.Thread(target=attempt, args=(v,)) for v in contenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for f in faults:
        count(f)
    assert sum(f.injected for f in faults) == 14
    assert errors == [] and len(wins) == 1 and len(conflicts) == 19
    statuses = {m.version: m.status for m in services.registry.list()}
    assert services.registry.champion().version == wins[0]
    assert [v for v, s in statuses.items() if s == "production"] == wins
    assert statuses["base"] == "archived" and sum(s == "candidate" for s in statuses.values()) == 19


# ---------------------------------------------------------------- batch scoring
def test_batch_scoring_accounts_for_every_row_through_throttling(aws, services, trained, lambda_context):
    register(services, trained, "v1", promote=True)
    fn = load_function("batch_score")
    s3, ddb = fn._batch.services.store.s3, fn._batch.services.registry.ddb
    frame = synth_frame(900, seed=31)
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    bucket = aws["BATCH_BUCKET"]
    boto3.client("s3").put_object(Bucket=bucket, Key="in/f.csv", Body=buf.getvalue().encode())
    faults = [
        inject(s3, "GetObject", "SlowDown", times=3),
        inject(s3, "PutObject", "SlowDown", times=3),
        inject(ddb, "BatchWriteItem", "ProvisionedThroughputExceededException", times=3),
    ]
    plan = fn.handler(
        {
            "action": "plan",
            "job_id": "job-f",
            "job": {"input": f"s3://{bucket}/in/", "output": f"s3://{bucket}/out/job-f", "chunk_bytes": 65536},
        },
        lambda_context,
    )
    chunks = json.loads(
        boto3.client("s3").get_object(Bucket=plan["manifest"]["bucket"], Key=plan["manifest"]["key"])["Body"].read()
    )
    results = [
        fn.handler(
            {
                "action": "score_chunk",
                "job_id": "job-f",
                "chunk": c,
                "output": plan["output"],
                "model_version": plan["model_version"],
                "options": plan["options"],
            },
            lambda_context,
        )
        for c in chunks
    ]
    summary = fn.handler({"action": "finish", "job_id": "job-f", "plan": plan, "chunks": results}, lambda_context)
    for f in faults:
        count(f)
    assert [f.injected for f in faults] == [3, 3, 3]
    assert summary["status"] == "SUCCEEDED"
    assert (summary["rows_in"], summary["scored"] + summary["rejected"]) == (900, 900)
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix="out/job-f/scores/")["Contents"]
    rows = sum(
        boto3.client("s3").get_object(Bucket=bucket, Key=o["Key"])["Body"].read().count(b"\n") - 1 for o in listed
    )
    assert rows == summary["scored"]


def test_report_faults_injected():
    print(f"\nfaults injected: {FAULTS} total {sum(FAULTS.values())}")
    assert sum(FAULTS.values()) > 0
