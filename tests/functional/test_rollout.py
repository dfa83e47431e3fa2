"""After the gate, under moto: the canary function (start, check, finish), the promote function's conditional
promotion and the watch it starts, and the automatic rollback on the watch alarm. The faults of the issue each end
in a defined, recorded state: a canary without traffic, a watch alarm during a second promotion, a second run's
canary while one runs, a rolled-back version offered again."""

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from churnguard.domain.errors import GateNotPassedError, PromotionConflictError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.prediction_log import iso, partition_prefix, to_jsonl
from churnguard.domain.reference_profile import score_profile
from tests.conftest import load_event, load_function, synth_frame
from tests.functional.loop_fixtures import log_records, register

PASSED = {"passed": True, "reasons": []}


@pytest.fixture
def stage(aws, services, trained, predictor, monkeypatch):
    """A champion (v-test-1) and a candidate (v-cand, the same model under another id) whose evaluation wrote
    the score profile of the held-out period; SNS AlarmTopic with a queue behind it to read what it was told."""
    champion = register(services, trained[0])
    services.registry.promote(champion, reason="test")
    candidate = register(services, trained[0], version="v-cand")
    holdout = synth_frame(1000, seed=61)
    p = predictor.probabilities(FeatureEncoder(predictor.schema).encode_frame(holdout[predictor.schema.feature_names]))
    report = f"s3://{aws['MODEL_BUCKET']}/reports/evaluation/{candidate}/evaluation.json"
    services.objects.write(report, json.dumps({"score_profile": score_profile(p)}).encode())
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="churnguard-alarms")["TopicArn"]
    queue = sqs.create_queue(QueueName="operators")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    monkeypatch.setenv("ALARM_TOPIC_ARN", topic)
    monkeypatch.setenv("CANARY_MIN_REQUESTS", "200")
    monkeypatch.setenv("ROLLBACK_WATCH_HOURS", "24")
    return {"champion": champion, "candidate": candidate, "report": report, "queue": queue, "services": services}


def served(aws, predictor, started, n, variant="canary", version="v-cand", seed=62, shift=None, **extra):
    """n served predictions in the canary's window, written where the Firehose stream puts them."""
    records, _ = log_records(predictor, n=n, seed=seed, shift=shift, variant=variant)
    for i, r in enumerate(records):
        r.update(model_version=version, ts=iso(started + timedelta(seconds=1 + i * 0.01)), latency_ms=0.4, **extra)
    key = f"{partition_prefix(started)}{variant}-{seed}.jsonl"
    boto3.client("s3").put_object(Bucket=aws["MODEL_BUCKET"], Key=key, Body=to_jsonl(records))
    return records


def start(lambda_context, version="v-cand", **options):
    return load_function("canary").handler(
        {"action": "start", "version": version, "options": options, "execution": "run-1"}, lambda_context
    )


def backdated(state, minutes=30):
    """The canary's state as if it had started ``minutes`` ago (the Wait state is the state machine's business)."""
    return {**state, "started_at": iso(datetime.now(UTC) - timedelta(minutes=minutes))}


def check(state, report, lambda_context):
    return load_function("canary").handler(
        {"action": "check", "canary": state, "evaluation_report": report}, lambda_context
    )


def test_a_healthy_canary_is_promoted_and_the_watch_starts(stage, aws, predictor, lambda_context):
    reg = stage["services"].registry
    state = backdated(start(lambda_context, share=0.5, wait_seconds=0))
    assert state["wait_seconds"] == 0 and state["share"] == 0.5 and state["champion"] == stage["champion"]
    assert reg.canary()["version"] == "v-cand" and reg.canary()["share"] == 0.5
    window_start = datetime.now(UTC) - timedelta(minutes=20)
    served(aws, predictor, window_start, 300)
    served(aws, predictor, window_start, 300, variant="champion", version=stage["champion"], seed=63)

    verdict = check(state, stage["report"], lambda_context)

    assert verdict["decision"] == "promote", verdict["reasons"]
    assert {c["name"]: c["status"] for c in verdict["checks"]}["score distribution"] == "pass"
    report = json.loads(stage["services"].objects.read(verdict["report"]))
    assert report["decision"] == "promote" and report["canary"]["version"] == "v-cand"

    promote = load_function("promote")
    out = promote.handler(
        {
            "action": "promote",
            "version": "v-cand",
            "evaluation": {**PASSED, "version": "v-cand"},
            "expected_revision": state["champion_revision"],
            "reason": "drift",
        },
        lambda_context,
    )
    assert out["champion"] == "v-cand" and reg.canary() is None  # the canary ended with the promotion
    from churnguard.bootstrap import build_watch_store

    watch = build_watch_store(stage["services"]).current()
    assert (watch.version, watch.revision, watch.previous) == ("v-cand", out["revision"], stage["champion"])


def test_a_canary_whose_live_scores_are_unlike_its_held_out_scores_is_rejected(stage, aws, predictor, lambda_context):
    reg = stage["services"].registry
    # Training-serving skew: the held-out period came from a feed that wrote every contract as two-year,
    # so the candidate passed its gate on scores unlike the ones it now gives live customers.
    skewed = synth_frame(1000, seed=65).assign(Contract="Two year")
    p = predictor.probabilities(FeatureEncoder(predictor.schema).encode_frame(skewed[predictor.schema.feature_names]))
    report = stage["report"].replace("evaluation.json", "evaluation-skewed.json")
    stage["services"].objects.write(report, json.dumps({"score_profile": score_profile(p)}).encode())
    state = backdated(start(lambda_context))
    served(aws, predictor, datetime.now(UTC) - timedelta(minutes=20), 400)

    verdict = check(state, report, lambda_context)
    assert verdict["decision"] == "reject" and "PSI" in verdict["reasons"][0]

    out = load_function("canary").handler(
        {
            "action": "finish",
            "version": "v-cand",
            "outcome": "reject",
            "reasons": verdict["reasons"],
            "report": verdict["report"],
        },
        lambda_context,
    )
    assert out == {**out, "cleared": True, "status": "rejected"}
    assert reg.canary() is None and reg.get("v-cand").status == "rejected"
    assert "canary reject" in reg.get("v-cand").reason
    assert reg.alias()["version"] == stage["champion"]


def test_a_canary_that_fails_to_answer_is_rejected(stage, aws, predictor, lambda_context):
    state = backdated(start(lambda_context))
    now = datetime.now(UTC) - timedelta(minutes=20)
    served(aws, predictor, now, 250)
    served(aws, predictor, now, 50, variant="champion", version=stage["champion"], seed=64, canary_error="unavailable")
    verdict = check(state, stage["report"], lambda_context)
    assert verdict["decision"] == "reject" and "50 of 300 canary requests failed" in verdict["reasons"][0]


def test_a_canary_without_traffic_ends_inconclusive_and_the_candidate_stays(stage, lambda_context):
    reg = stage["services"].registry
    state = backdated(start(lambda_context))
    verdict = check(state, stage["report"], lambda_context)
    assert verdict["decision"] == "inconclusive" and "only 0 canary requests" in verdict["reasons"][0]
    out = load_function("canary").handler(
        {"action": "finish", "version": "v-cand", "outcome": "inconclusive", "reasons": verdict["reasons"]},
        lambda_context,
    )
    assert out["status"] == "candidate" and reg.canary() is None
    assert reg.get("v-cand").status == "candidate" and "inconclusive" in reg.get("v-cand").reason
    assert reg.alias()["version"] == stage["champion"]


def test_a_canary_changed_during_its_window_concludes_nothing(stage, trained, lambda_context):
    state = backdated(start(lambda_context))
    register(stage["services"], trained[0], version="v-other")
    stage["services"].registry.set_canary("v-other", share=0.3, reason="an operator")
    verdict = check(state, stage["report"], lambda_context)
    assert verdict["decision"] == "inconclusive" and "changed during its window" in verdict["reasons"][0]
    out = load_function("canary").handler(
        {"action": "finish", "version": "v-cand", "outcome": "inconclusive", "reasons": verdict["reasons"]},
        lambda_context,
    )
    assert out["cleared"] is False and stage["services"].registry.canary()["version"] == "v-other"


def test_a_second_run_does_not_replace_a_running_canary(stage, trained, lambda_context):
    from churnguard.services.rollout import CanaryConflictError

    register(stage["services"], trained[0], version="v-second")
    start(lambda_context)
    with pytest.raises(CanaryConflictError, match="a canary of v-cand is already running"):
        start(lambda_context, version="v-second")
    out = load_function("canary").handler(
        {
            "action": "finish",
            "version": "v-second",
            "outcome": "not_started",
            "error": {"Error": "CanaryConflictError", "Cause": "a canary of v-cand is already running"},
        },
        lambda_context,
    )
    assert out["cleared"] is False and out["status"] == "candidate"
    assert stage["services"].registry.canary()["version"] == "v-cand"


def test_a_champion_changed_during_the_canary_is_not_overwritten(stage, trained, lambda_context):
    reg = stage["services"].registry
    state = start(lambda_context)
    register(stage["services"], trained[0], version="v-hotfix")
    reg.promote("v-hotfix", reason="an operator's hotfix during the canary")
    with pytest.raises(PromotionConflictError):
        load_function("promote").handler(
            {
                "action": "promote",
                "version": "v-cand",
                "evaluation": {**PASSED, "version": "v-cand"},
                "expected_revision": state["champion_revision"],
            },
            lambda_context,
        )
    assert reg.alias()["version"] == "v-hotfix"
    out = load_function("canary").handler(
        {
            "action": "finish",
            "version": "v-cand",
            "outcome": "superseded",
            "error": {"Error": "PromotionConflictError", "Cause": "the champion changed"},
        },
        lambda_context,
    )
    assert out["status"] == "candidate" and "the champion changed" in out["reason"]


def test_bad_canary_events_are_refused_by_name(stage, lambda_context):
    from churnguard.entrypoints.events import BadEventError

    fn = load_function("canary")
    with pytest.raises(BadEventError, match="share"):
        fn.handler({"action": "start", "version": "v-cand", "options": {"share": 7}}, lambda_context)
    with pytest.raises(BadEventError, match="may set"):
        fn.handler({"action": "start", "version": "v-cand", "options": {"min_requests": 1}}, lambda_context)
    with pytest.raises(BadEventError, match="outcome"):
        fn.handler({"action": "finish", "version": "v-cand", "outcome": "whatever"}, lambda_context)
    with pytest.raises(BadEventError, match="unknown action"):
        fn.handler({"action": "dance"}, lambda_context)
    with pytest.raises(GateNotPassedError):
        load_function("promote").handler(
            {"action": "promote", "version": "v-cand", "evaluation": {"passed": False, "version": "v-cand"}},
            lambda_context,
        )


# ----- the watch and the automatic rollback -------------------------------------------------------------
def alarm(state="ALARM"):
    event = load_event("auto_rollback_alarm")
    event["alarmData"]["state"]["value"] = state
    return event


def told(queue):
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_an_alarm_during_the_watch_rolls_back_by_itself_once(stage, lambda_context):
    reg = stage["services"].registry
    promoted = load_function("promote").handler({"action": "promote", "version": "v-cand"}, lambda_context)
    assert promoted["champion"] == "v-cand"

    out = load_function("auto_rollback").handler(alarm(), lambda_context)

    assert out["rolled_back"] is True and out["champion"] == stage["champion"]
    assert reg.alias()["version"] == stage["champion"]
    entry = reg.get("v-cand")
    assert entry.status == "archived" and entry.rolled_back["alarm"] == "churnguard-ChampionWatchAlarm"
    assert "automatic rollback" in entry.reason
    [note] = told(stage["queue"])
    assert note["Subject"].startswith("churnguard: v-cand rolled back to") and '"rolled_back": true' in note["Message"]
    # A second delivery of the same alarm does nothing more; the loop never promotes v-cand again.
    again = load_function("auto_rollback").handler(alarm(), lambda_context)
    assert again["rolled_back"] is False and "already ended (rolled_back" in again["reason"]
    with pytest.raises(PromotionConflictError, match="never promoted again automatically"):
        load_function("promote").handler(
            {"action": "promote", "version": "v-cand", "evaluation": {**PASSED, "version": "v-cand"}}, lambda_context
        )
    with pytest.raises(PromotionConflictError, match="never promoted again automatically"):
        start(lambda_context)
    # An operator still may.
    assert load_function("promote").handler({"action": "promote", "version": "v-cand"}, lambda_context)["champion"]


def test_a_watch_alarm_during_a_second_promotion_rolls_nothing_back(stage, trained, lambda_context):
    reg = stage["services"].registry
    load_function("promote").handler({"action": "promote", "version": "v-cand"}, lambda_context)
    register(stage["services"], trained[0], version="v-third")
    reg.promote("v-third", reason="a second promotion, its watch not written yet")

    out = load_function("auto_rollback").handler(alarm(), lambda_context)

    assert out["rolled_back"] is False and "the champion changed since the watched promotion" in out["reason"]
    assert reg.alias()["version"] == "v-third" and reg.get("v-cand").rolled_back is None


def test_alarms_outside_a_watch_or_recovering_roll_nothing_back(stage, lambda_context, monkeypatch):
    reg = stage["services"].registry
    assert load_function("auto_rollback").handler(alarm(), lambda_context)["reason"] == "no promotion is being watched"
    monkeypatch.setenv("ROLLBACK_WATCH_HOURS", "0.0001")  # a watch of a third of a second
    load_function("promote").handler({"action": "promote", "version": "v-cand"}, lambda_context)
    assert load_function("auto_rollback").handler(alarm("OK"), lambda_context)["reason"] == "the alarm is OK, not ALARM"
    import time

    time.sleep(0.5)
    out = load_function("auto_rollback").handler(alarm(), lambda_context)
    assert out["rolled_back"] is False and "ended at" in out["reason"]
    assert reg.alias()["version"] == "v-cand"


def test_the_alarm_also_arrives_through_sns(stage, lambda_context):
    load_function("promote").handler({"action": "promote", "version": "v-cand"}, lambda_context)
    message = {
        "AlarmName": "churnguard-ChampionWatchAlarm",
        "NewStateValue": "ALARM",
        "OldStateValue": "OK",
        "NewStateReason": "Threshold Crossed",
        "StateChangeTime": "2026-05-01T12:00:00.000+0000",
    }
    event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]}
    assert load_function("auto_rollback").handler(event, lambda_context)["rolled_back"] is True
