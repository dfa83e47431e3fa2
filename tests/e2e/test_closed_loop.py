"""The closed loop, as deployed in LocalStack, end to end:

1. predictions made through API Gateway reach the drift check through the real log path (the predict function's
   Firehose stream delivering under predictions/dt=YYYY-MM-DD/), and outcomes recorded through the feedback
   function follow them;
2. drift and degradation in that traffic start a run that builds a fresh training set (its rows and periods in the
   execution's output), trains, evaluates on the newest period, runs a short canary on live traffic and promotes;
3. the watch alarm forced to ALARM after that promotion rolls the champion back by itself;
4. a deliberately degraded candidate (trained and held out on a feed that wrote MonthlyCharges in tens of dollars:
   it passes its gate on that feed) fails its canary on live traffic, and the champion stays;
5. the pre-traffic check of a code deploy passes the live version of the predict function.

The world changes in this story: customers are more often month-to-month (covariate shift: drift) and churn for
other reasons than the seed champion learnt (high charges, short tenure, electronic cheques: degradation), so a
model trained on recent served traffic beats it. Earlier served traffic (the history the fresh set trains on) is
sent through the same Firehose stream with its own timestamps: API Gateway cannot serve requests in the past.
"""

from __future__ import annotations

import csv
import io
import json
import time
import zlib
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from tests.conftest import synth_frame
from tests.e2e.workflows import explain, history, output, wait_execution

RNG = np.random.default_rng(14)
LIVE_SHARE = 0.5  # samconfig.toml [localstack]: CanaryShare


def new_world_churn(frame, seed: int) -> np.ndarray:
    """Who churns now: high charges, short tenure, electronic cheques (not what the seed champion learnt)."""
    monthly = frame["MonthlyCharges"].astype(float).to_numpy()
    tenure = frame["tenure"].astype(int).to_numpy()
    logit = -1.0 + 0.07 * (monthly - 70.0) + 1.6 * (tenure < 6) + 0.9 * (frame["PaymentMethod"] == "Electronic check")
    return np.random.default_rng(seed).random(len(frame)) < 1.0 / (1.0 + np.exp(-np.asarray(logit, dtype=float)))


def shifted(n: int, seed: int):
    """n generated customers, more of them month-to-month than the seed data (selection on features only)."""
    pool = synth_frame(4 * n, seed=seed)
    w = np.where(pool["Contract"] == "Month-to-month", 4.0, 1.0)
    idx = np.random.default_rng(seed).choice(len(pool), n, replace=False, p=w / w.sum())
    return pool.iloc[np.sort(idx)].reset_index(drop=True)


def rows(frame, prefix: str) -> list[dict]:
    out = frame.drop(columns=["Churn"]).to_dict("records")
    for i, r in enumerate(out):
        r["customerID"] = f"{prefix}-{i}"
    return out


class Loop:
    """What the tests of this module share, in file order."""

    def __init__(self, stack, registry, model_store) -> None:
        self.stack, self.registry, self.model_store = stack, registry, model_store
        self.bucket = stack.outputs["ModelBucketName"]
        self.s3, self.sfn = stack.client("s3"), stack.client("stepfunctions")
        self.seed_champion = registry.alias()["version"]
        self.state: dict = {}

    def hash_key(self) -> bytes:
        cfn = self.stack.client("cloudformation")
        arn = cfn.describe_stack_resource(
            StackName=self.stack.target.stack_name, LogicalResourceId="CustomerIdHashKeySecret"
        )["StackResourceDetail"]["PhysicalResourceId"]
        return self.stack.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"].encode()

    def record_outcomes(self, name: str, ids: list[str], churned: np.ndarray, observed) -> dict:
        """A feedback CSV dropped under feedback/ and ingested by the deployed FeedbackIngestFunction."""
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["customer_id", "churned", "observed_date"])
        w.writerows([cid, "yes" if c else "no", observed.isoformat()] for cid, c in zip(ids, churned, strict=True))
        key = f"feedback/{name}.csv"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=buf.getvalue().encode())
        event = {
            "Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": self.bucket}, "object": {"key": key}}}]
        }
        out = self.stack.invoke("FeedbackIngestFunctionName", event)
        # The stack also ingests the file by itself (S3 -> EventBridge): whichever ran first stored each outcome.
        counts = out["files"][0]
        assert counts["ok"] and counts["stored"] + counts["duplicates"] == len(ids), out
        return out

    def predict_batches(self, customers: list[dict]) -> list[dict]:
        answers = []
        for i in range(0, len(customers), 100):
            r = self.stack.api.post("/predict/batch", json={"customers": customers[i : i + 100]})
            assert r.status_code == 200, r.text
            answers += r.json()["predictions"]
        return answers

    def flush_log(self) -> None:
        """The predict function sends its buffered log when the oldest record is 2 s old, at the next request."""
        time.sleep(2.5)
        r = self.stack.api.post("/predict", json=rows(synth_frame(1, seed=999), "flush")[0])
        assert r.status_code == 200, r.text

    def logged_keys(self, day) -> set[str]:
        from churnguard.domain.prediction_log import parse_jsonl, partition_prefix

        keys: set[str] = set()
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=partition_prefix(day))
        for o in listed.get("Contents", []):
            body = self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            keys |= {r.get("customer_key") for r in parse_jsonl(body)}
        return keys

    def wait_for_state(self, execution_arn: str, state: str, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            events = history(self.sfn, execution_arn)
            if any(e.get("stateEnteredEventDetails", {}).get("name") == state for e in events):
                return
            status = self.sfn.describe_execution(executionArn=execution_arn)["status"]
            assert status == "RUNNING", f"ended {status} before {state}:\n{explain(self.sfn, execution_arn)}"
            assert time.monotonic() < deadline, (
                f"no {state} after {timeout_s:.0f} s:\n{explain(self.sfn, execution_arn)}"
            )
            time.sleep(2)

    def live_traffic_during_canary(self, execution_arn: str, version: str, prefix: str, needed: int = 130) -> int:
        """Single predictions (the canary answers only those) until ``needed`` were answered by ``version``."""
        self.wait_for_state(execution_arn, "WaitCanary")
        time.sleep(6)  # the predict function re-reads the canary alias every ChampionTtlSeconds (5 s here)
        customers = rows(shifted(600, seed=zlib.crc32(prefix.encode()) % 1000), prefix)
        answered = 0
        for c in customers:
            r = self.stack.api.post("/predict", json=c)
            assert r.status_code == 200, r.text
            answered += r.json()["model_version"] == version
            if answered >= needed:
                break
        self.flush_log()
        return answered


@pytest.fixture(scope="module")
def loop(stack, registry, model_store):
    stack.require("BuildTrainingSetFunctionName", "CanaryFunctionName", "ChampionWatchAlarmName")
    return Loop(stack, registry, model_store)


def test_served_traffic_reaches_the_drift_check_through_firehose(loop):
    from churnguard.domain.features import FeatureEncoder
    from churnguard.domain.identity import customer_key
    from churnguard.domain.prediction_log import prediction_record, to_jsonl
    from churnguard.domain.predictor import Predictor

    now = datetime.now(UTC)
    key = loop.hash_key()
    champion = loop.registry.champion()
    predictor = Predictor(loop.model_store.get(champion.version, champion.manifest_sha256))
    names = predictor.schema.feature_names

    # Earlier served traffic (six weeks ago) and its outcomes: the periods a fresh training set trains on.
    past = synth_frame(800, seed=141)
    past_ids = [f"hist-{i}" for i in range(len(past))]
    p = predictor.probabilities(FeatureEncoder(predictor.schema).encode_frame(past[names]))
    records = [
        prediction_record(
            features=r,
            prediction={
                "model_version": champion.version,
                "churn_probability": float(p[i]),
                "will_churn": bool(p[i] >= predictor.threshold),
            },
            variant="champion",
            customer_key=customer_key(past_ids[i], key),
            request_id=f"hist-{i}",
            feature_names=names,
            ts=now - timedelta(days=45, seconds=-i),
        )
        for i, r in enumerate(past[names].to_dict("records"))
    ]
    firehose = loop.stack.client("firehose")
    stream = loop.stack.outputs["PredictionLogStreamName"]
    lines = to_jsonl(records).splitlines(keepends=True)
    for i in range(0, len(lines), 400):
        firehose.put_record_batch(DeliveryStreamName=stream, Records=[{"Data": line} for line in lines[i : i + 400]])
    loop.record_outcomes("e2e-history", past_ids, new_world_churn(past, 141), (now - timedelta(days=40)).date())

    # Today's traffic, through API Gateway: more month-to-month customers than the champion was trained on.
    live = shifted(600, seed=142)
    live_rows = rows(live, "live")
    answers = loop.predict_batches(live_rows)
    assert {a["model_version"] for a in answers} == {loop.seed_champion}
    loop.flush_log()

    # The stream delivered them where the drift check reads: today's partition, not a literal "!{timestamp...}".
    logged = loop.logged_keys(now.date())
    assert {customer_key(r["customerID"], key) for r in live_rows} <= logged
    listed = loop.s3.list_objects_v2(Bucket=loop.bucket, Prefix="predictions/")
    assert not [o["Key"] for o in listed.get("Contents", []) if "!{" in o["Key"]]

    # Their outcomes, as a business reports them: tomorrow (the day after the predictions).
    loop.record_outcomes(
        "e2e-live", [r["customerID"] for r in live_rows], new_world_churn(live, 142), (now + timedelta(days=1)).date()
    )

    summary = loop.stack.invoke("DriftCheckFunctionName", {})

    assert summary["decision"] == "retrain", summary
    assert "Contract" in summary["drifted_features"] and summary["rows"] >= 600
    assert summary["triggers"][:1] == ["drift"] and summary["retraining"]["started"] is True, summary
    loop.state["execution"] = summary["retraining"]["execution_arn"]


def test_the_drift_run_builds_trains_evaluates_canaries_and_promotes(loop):
    arn = loop.state.get("execution")
    assert arn, "the drift check did not start a run"
    loop.wait_for_state(arn, "WaitCanary")
    candidate = output_of_state(loop, arn, "Train")["version"]
    answered = loop.live_traffic_during_canary(arn, candidate, "canary")
    assert answered >= 100, f"only {answered} live requests were answered by the canary"

    execution = wait_execution(loop.sfn, arn, timeout_s=600)

    story = explain(loop.sfn, arn)
    assert execution["status"] == "SUCCEEDED", story
    out = output(execution)
    ts = out["training_set"]
    assert ts["status"] == "built" and ts["source"] == "prediction_log", ts
    assert ts["rows"]["holdout"] == 600 and ts["rows"]["train"] == 800, ts["rows"]
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    assert ts["period"]["holdout"]["end"] == tomorrow and ts["period"]["train"]["periods"] >= 1
    assert out["evaluation"]["passed"] is True, out["evaluation"]
    assert out["canary_check"]["decision"] == "promote", out["canary_check"]
    assert {"WaitCanary", "CheckCanary", "Promote", "Promoted"} <= set(entered(loop, arn)), story
    assert loop.registry.alias()["version"] == candidate
    entry = loop.registry.get(candidate)
    assert entry.status == "production" and entry.lineage["training_set"]["rows"]["holdout"] == 600
    loop.state["promoted"] = candidate


def entered(loop, arn: str) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history(loop.sfn, arn) if "stateEnteredEventDetails" in e]


def output_of_state(loop, arn: str, state: str) -> dict:
    """The Payload a Task state's function returned (from the execution history)."""
    current = None
    for e in history(loop.sfn, arn):
        if e["type"].endswith("StateEntered"):
            current = e["stateEnteredEventDetails"]["name"]
        elif e["type"] == "TaskSucceeded" and current == state:
            return json.loads(e["taskSucceededEventDetails"]["output"])["Payload"]
    raise AssertionError(f"{state} has not succeeded:\n{explain(loop.sfn, arn)}")


def test_an_alarm_after_the_promotion_rolls_back_by_itself(loop):
    promoted = loop.state.get("promoted")
    assert promoted, "nothing was promoted"
    sns, sqs = loop.stack.client("sns"), loop.stack.client("sqs")
    queue = sqs.create_queue(QueueName="e2e-operators")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=loop.stack.outputs["AlarmTopicArn"], Protocol="sqs", Endpoint=queue_arn)
    cw = loop.stack.client("cloudwatch")
    alarm = loop.stack.outputs["ChampionWatchAlarmName"]
    cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="e2e: start from OK")
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="e2e: forced, as a burst of 5xx would")

    deadline = time.monotonic() + 60
    while loop.registry.alias()["version"] == promoted and time.monotonic() < deadline:
        time.sleep(1)
    assert loop.registry.alias()["version"] == loop.seed_champion, loop.stack.function_logs("AutoRollbackFunction")
    entry = loop.registry.get(promoted)
    assert entry.status == "archived" and entry.rolled_back and entry.rolled_back["alarm"] == alarm
    told = []
    while time.monotonic() < deadline and not any("rolled back" in m for m in told):
        told += [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    assert any(f"{promoted} rolled back to {loop.seed_champion}" in m for m in told), told


def test_a_degraded_candidate_fails_its_canary_and_the_champion_stays(loop):
    champion = loop.registry.alias()["version"]

    def feed(n: int, seed: int, key: str) -> str:
        # The new feed writes MonthlyCharges in tens of dollars: consistent within itself, wrong for live traffic.
        frame = shifted(n, seed)
        frame["Churn"] = np.where(new_world_churn(frame, seed), "Yes", "No")
        frame["MonthlyCharges"] = [f"{float(v) / 10:.3f}" for v in frame["MonthlyCharges"]]
        buf = io.StringIO()
        frame.to_csv(buf, index=False)
        loop.s3.put_object(Bucket=loop.bucket, Key=key, Body=buf.getvalue().encode())
        return f"s3://{loop.bucket}/{key}"

    run = {
        "reason": "manual",
        "data": feed(1500, 143, "data/e2e-tens-feed-train.csv"),
        "holdout": feed(600, 144, "data/e2e-tens-feed-holdout.csv"),
        "config": {"n_folds": 3, "inner_folds": 3, "max_rounds": 400, "early_stopping_rounds": 40},
    }
    arn = loop.sfn.start_execution(stateMachineArn=loop.stack.outputs["RetrainStateMachineArn"], input=json.dumps(run))[
        "executionArn"
    ]
    loop.wait_for_state(arn, "WaitCanary")
    candidate = output_of_state(loop, arn, "Train")["version"]
    evaluation = output_of_state(loop, arn, "Evaluate")
    assert evaluation["passed"] is True, f"the degraded candidate should pass its own feed's gate: {evaluation}"
    loop.live_traffic_during_canary(arn, candidate, "degraded")

    execution = wait_execution(loop.sfn, arn, timeout_s=600)

    story = explain(loop.sfn, arn)
    assert execution["status"] == "SUCCEEDED", story
    out = output(execution)
    assert out["canary_check"]["decision"] == "reject", out["canary_check"]
    assert any("PSI" in r for r in out["canary_check"]["reasons"]), out["canary_check"]
    states = entered(loop, arn)
    assert "PublishCanaryRejected" in states and "Promote" not in states, story
    assert loop.registry.alias()["version"] == champion
    entry = loop.registry.get(candidate)
    assert entry.status == "rejected" and "canary reject" in entry.reason
    assert loop.registry.canary() is None


def test_the_pre_traffic_check_of_a_code_deploy_passes_the_live_version(stack):
    # LocalStack has no CodeDeploy: {"verify": "live"} runs the hook's checks (health, a bad request refused by
    # name, six fixed customers answered as the live alias answers them) against the deployed live alias.
    result = stack.invoke("PredictDeployCheckFunctionName", {"verify": "live"})

    assert result["passed"] is True, result
    names = {c["name"] for c in result["checks"]}
    assert len(names) >= 3 and all(c["passed"] for c in result["checks"]), result["checks"]
