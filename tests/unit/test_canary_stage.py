"""The canary stage's judgement (domain/canary.judge_canary) and the watch after a promotion (domain/watch.py):
what promotes, what rejects, what is left inconclusive, and when an alarm rolls back."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from churnguard.domain.canary import CanaryPolicy, judge_canary
from churnguard.domain.errors import PromotionConflictError
from churnguard.domain.reference_profile import score_profile
from churnguard.domain.watch import check_automatic_promotion, rollback_decision, watch_after

POLICY = CanaryPolicy(share=0.2, min_requests=200)
EXPECTED = score_profile(np.random.default_rng(0).beta(2, 5, 2000))


def records(n, variant="canary", version="v2", seed=1, latency=0.5, scores=None, **extra):
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 5, n) if scores is None else scores
    return [
        {
            "variant": variant,
            "model_version": version,
            "churn_probability": float(p[i]),
            "will_churn": bool(p[i] > 0.5),
            "customer_key": f"{variant}-{seed}-{i}",
            "ts": "2026-05-01T10:00:00Z",
            "latency_ms": latency * (1 + 0.1 * rng.random()),
            **extra,
        }
        for i in range(n)
    ]


def checks(verdict):
    return {c["name"]: c["status"] for c in verdict.checks}


def test_a_healthy_canary_is_promoted():
    log = records(300) + records(1200, variant="champion", version="v1", seed=2)
    v = judge_canary(
        "v2", POLICY, log, expected_scores=EXPECTED, service={"requests": 1500, "errors": 0, "fallbacks": 1}
    )
    assert v.decision == "promote", v.reasons
    assert checks(v) == {
        "traffic": "pass",
        "errors": "pass",
        "latency": "pass",
        "score distribution": "pass",
        "outcomes": "unknown",
        "service": "pass",
    }
    assert v.counts == {"requests": 300, "answered": 300, "failed": 0, "labelled": 0}


def test_canary_answers_that_failed_reject_it():
    failed = records(20, variant="champion", version="v1", seed=3, canary_error="unavailable")
    v = judge_canary("v2", POLICY, records(280) + failed, expected_scores=EXPECTED)
    assert v.decision == "reject"
    assert "20 of 300 canary requests failed" in v.reasons[0] and "unavailable" in v.reasons[0]


def test_live_scores_unlike_the_held_out_period_reject_it():
    # Training-serving skew: the candidate scores live customers far higher than it scored the held-out period.
    skewed = np.random.default_rng(4).beta(5, 2, 300)
    v = judge_canary("v2", POLICY, records(300, scores=skewed), expected_scores=EXPECTED)
    assert v.decision == "reject" and checks(v)["score distribution"] == "fail"
    assert "PSI" in v.reasons[0]


def test_a_slow_canary_is_rejected():
    log = records(300, latency=40.0) + records(500, variant="champion", version="v1", seed=5, latency=0.5)
    v = judge_canary("v2", POLICY, log, expected_scores=EXPECTED)
    assert v.decision == "reject" and checks(v)["latency"] == "fail"


def test_more_errors_on_outcomes_reject_it():
    joined = [
        {
            "variant": "canary",
            "customer_key": f"c{i}",
            "observed_date": "2026-05-02",
            "churned": i % 2 == 0,
            "will_churn": i % 2 == 1,
            "churn_probability": 0.5,
            "model_version": "v2",
        }
        for i in range(100)
    ] + [
        {
            "variant": "champion",
            "customer_key": f"h{i}",
            "observed_date": "2026-05-02",
            "churned": i % 2 == 0,
            "will_churn": i % 2 == 0,
            "churn_probability": 0.5,
            "model_version": "v1",
        }
        for i in range(100)
    ]
    v = judge_canary("v2", POLICY, records(300), expected_scores=EXPECTED, joined=joined)
    assert v.decision == "reject" and checks(v)["outcomes"] == "fail"
    assert "canary makes more errors" in v.reasons[0]


def test_a_service_failing_during_the_canary_rejects_it():
    v = judge_canary("v2", POLICY, records(300), expected_scores=EXPECTED, service={"requests": 1000, "errors": 30})
    assert v.decision == "reject" and checks(v)["service"] == "fail"


def test_too_little_traffic_is_inconclusive_never_promoted():
    v = judge_canary("v2", POLICY, records(50), expected_scores=EXPECTED)
    assert v.decision == "inconclusive"
    assert v.reasons == ["only 50 canary requests in the window; at least 200 are needed"]
    assert judge_canary("v2", POLICY, [], expected_scores=EXPECTED).decision == "inconclusive"


def test_a_shadow_is_judged_on_its_shadow_scores():
    shadow = CanaryPolicy(share=0.0, shadow=True, min_requests=200)
    log = records(400, variant="shadow") + records(400, variant="champion", version="v1", seed=6)
    v = judge_canary("v2", shadow, log, expected_scores=EXPECTED)
    assert v.decision == "promote" and "errors" not in checks(v)


def test_the_policy_refuses_nonsense():
    with pytest.raises(ValueError, match="share"):
        CanaryPolicy(share=0)
    assert CanaryPolicy.from_dict({"shadow": "false", "share": "0.3"}) == CanaryPolicy(share=0.3)
    assert CanaryPolicy.from_dict({"shadow": "true", "share": "0"}).shadow is True


# ----- the watch -----------------------------------------------------------------------------------
NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ALIAS = {"version": "v2", "previous": ["v1"], "revision": 5}


def test_an_alarm_during_the_watch_rolls_back_to_the_previous_champion():
    watch = watch_after(ALIAS, hours=24, now=NOW, reason="drift")
    act, why = rollback_decision(watch, ALIAS, "ALARM", NOW + timedelta(hours=1))
    assert act and "back to v1" in why


@pytest.mark.parametrize(
    "alias, state, later, expected",
    [
        (ALIAS, "OK", 1, "the alarm is OK"),
        (ALIAS, "ALARM", 25, "ended at"),
        ({"version": "v3", "previous": ["v2", "v1"], "revision": 6}, "ALARM", 1, "the champion changed"),
        ({"version": "v2", "previous": ["v1"], "revision": 6}, "ALARM", 1, "the champion changed"),
        (None, "ALARM", 1, "no champion"),
    ],
)
def test_an_alarm_outside_the_watch_or_after_another_switch_rolls_nothing_back(alias, state, later, expected):
    watch = watch_after(ALIAS, hours=24, now=NOW, reason="drift")
    act, why = rollback_decision(watch, alias, state, NOW + timedelta(hours=later))
    assert not act and expected in why


def test_a_first_champion_or_no_watch_has_nothing_to_roll_back():
    first = watch_after({"version": "v1", "previous": [], "revision": 1}, 24, NOW, "seed")
    assert rollback_decision(first, {"version": "v1", "revision": 1}, "ALARM", NOW)[0] is False
    assert rollback_decision(None, ALIAS, "ALARM", NOW) == (False, "no promotion is being watched")


def test_a_rolled_back_version_is_never_promoted_automatically():
    check_automatic_promotion("v2", None)
    with pytest.raises(PromotionConflictError, match="never promoted again automatically"):
        check_automatic_promotion("v2", {"at": "2026-05-01T12:00:00Z", "reason": "alarm"})
