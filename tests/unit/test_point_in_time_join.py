"""The one point-in-time join of outcomes to predictions (domain/outcomes.py), used by the drift check,
the canary report and every evaluation on served traffic.

The rule: an outcome observed on day D is matched with the latest prediction made strictly before
00:00 UTC on D, no older than ``max_age_days`` when given; one outcome per customer and day counts.
"""

from datetime import UTC, date, datetime, timedelta, timezone

from churnguard.domain.identity import customer_key
from churnguard.domain.outcomes import SERVED_VARIANTS, Outcome, join_point_in_time
from churnguard.domain.prediction_log import prediction_record

KEY = b"k"


def _raw(key, ts, p, version="v1", variant="champion"):
    return {"customer_key": key, "ts": ts, "churn_probability": p, "model_version": version, "variant": variant}


def _logged(key, ts, variant="champion", p=0.8, version="v1"):
    return prediction_record(
        features={},
        prediction={"churn_probability": p, "will_churn": p >= 0.5, "model_version": version},
        variant=variant,
        customer_key=key,
        request_id="r",
        ts=ts,
    )


def _drift_join(preds, outcomes, **kw):
    rows = join_point_in_time(preds, outcomes, model_version="v1", variants=SERVED_VARIANTS, by_variant=False, **kw)
    return [r["churned"] for r in rows], [r["churn_probability"] for r in rows]


def test_the_drift_check_takes_the_latest_served_prediction_before_the_outcome_date():
    preds = [
        _raw("a", "2026-03-01T10:00:00.000000Z", 0.1),
        _raw("a", "2026-03-09T23:59:59.000000Z", 0.7),  # latest before the 10th: counts
        _raw("a", "2026-03-10T00:00:00.000000Z", 0.99),  # on the outcome date: must not count
        _raw("b", "2026-03-12T08:00:00.000000Z", 0.9),  # only after b's outcome: b is dropped
        _raw("c", "2026-03-05T08:00:00.000000Z", 0.8, variant="shadow"),  # shadow: never answered, ignored
        _raw("d", "2026-03-05T08:00:00.000000Z", 0.6, version="v0"),  # another version: ignored
        _raw("e", "2026-01-01T08:00:00.000000Z", 0.3),
    ]
    outcomes = [
        ("a", True, "2026-03-10"),
        ("b", False, date(2026, 3, 11)),
        ("c", True, "2026-03-10"),
        ("d", True, "2026-03-10"),
        ("e", False, "2026-03-10"),
        ("a", True, "2026-03-10"),
        ("zz", True, "2026-03-10"),
    ]
    y, p = _drift_join(preds, outcomes)
    assert y == [True, False] and p == [0.7, 0.3]  # the duplicate outcome counts once
    y, p = _drift_join(preds, outcomes, max_age_days=30)
    assert p == [0.7]  # e's prediction is 68 days old


def test_the_canary_report_matches_each_variant_on_its_own():
    k = customer_key("a", KEY)
    preds = [
        _logged(k, datetime(2026, 4, 1, tzinfo=UTC), p=0.2),
        _logged(k, datetime(2026, 4, 30, 23, 59, tzinfo=UTC), p=0.9),  # the latest before: counts
        _logged(k, datetime(2026, 5, 1, 0, 0, tzinfo=UTC), p=0.1),  # on the outcome date: too late
        _logged(k, datetime(2026, 4, 20, tzinfo=UTC), variant="shadow", p=0.4, version="v2"),
        _logged(customer_key("other", KEY), datetime(2026, 4, 1, tzinfo=UTC)),
        _logged(None, datetime(2026, 4, 1, tzinfo=UTC)),
    ]
    rows = join_point_in_time(
        preds, [Outcome(k, True, date(2026, 5, 1)), Outcome(customer_key("z", KEY), False, date(2026, 5, 1))]
    )
    assert [(r["variant"], r["churn_probability"], r["model_version"]) for r in rows] == [
        ("champion", 0.9, "v1"),
        ("shadow", 0.4, "v2"),
    ]
    assert all(r["churned"] is True and r["observed_date"] == "2026-05-01" for r in rows)
    assert join_point_in_time(preds, [Outcome(k, True, date(2026, 4, 1))]) == []


def test_timestamps_with_an_offset_are_compared_in_utc():
    # 01:30 on 10 March in UTC+02:00 is 23:30 UTC on the 9th: before the cutoff of an outcome on the 10th.
    preds = [_raw("a", "2026-03-10T01:30:00+02:00", 0.4), _raw("b", "2026-03-09T23:30:00-02:00", 0.6)]
    rows = join_point_in_time(preds, [("a", True, "2026-03-10"), ("b", True, "2026-03-10")])
    # b's 23:30 at UTC-02:00 is 01:30 UTC on the 10th: on the outcome date, so it does not count.
    assert [(r["customer_key"], r["churn_probability"]) for r in rows] == [("a", 0.4)]


def test_the_age_limit_is_inclusive_at_its_edge_and_unreadable_records_are_skipped():
    cutoff = datetime(2026, 3, 10, tzinfo=UTC)
    preds = [
        _raw("a", (cutoff - timedelta(days=30)).isoformat(), 0.5),  # exactly 30 days: kept
        _raw("b", (cutoff - timedelta(days=30, microseconds=1)).isoformat(), 0.5),  # older: dropped
        _raw("c", "not a time", 0.5),
        _raw("d", "2026-03-01T00:00:00Z", "0.5"),  # a probability that is not a number
        _raw("e", "2026-03-01T00:00:00Z", True),
        _raw("f", datetime(2026, 3, 9, 12, tzinfo=timezone(timedelta(hours=5))).isoformat(), 0.7),
    ]
    outcomes = [(k, False, date(2026, 3, 10)) for k in "abcdef"]
    rows = join_point_in_time(preds, outcomes, max_age_days=30)
    assert [r["customer_key"] for r in rows] == ["a", "f"]
