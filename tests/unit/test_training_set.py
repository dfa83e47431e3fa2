"""A fresh training set from served predictions and outcomes (domain/training_set.py): the one join, periods,
a customer once per period, the newest period held out and never trained on, and clear reasons when too few."""

import io
from datetime import UTC, date, datetime, timedelta

import pytest

from churnguard.domain import training_set as T
from churnguard.domain.errors import DataValidationError
from churnguard.domain.outcomes import Outcome
from churnguard.domain.training import read_csv
from tests.conftest import synth_frame

TODAY = date(2026, 6, 30)


def features(i: int, **changes):
    row = synth_frame(1, seed=1000 + i).drop(columns=["customerID", "Churn"]).iloc[0].to_dict()
    return {**row, **changes}


def record(key, day, hour=9, variant="champion", **feature_changes):
    ts = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    return {
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "customer_key": key,
        "variant": variant,
        "model_version": "v1",
        "churn_probability": 0.3,
        "will_churn": False,
        "features": features(hash(key) % 1000, **feature_changes),
    }


def row(key, observed, churned=False, known_at=None, **feature_changes):
    return T.LabelledRow(key, features(hash(key) % 1000, **feature_changes), churned, observed, known_at or f"{key}-t")


def test_each_outcome_gets_the_features_of_the_latest_prediction_before_its_day():
    d = date(2026, 6, 1)
    records = [
        record("a", d, tenure="3"),
        record("a", d + timedelta(days=4), tenure="7"),
        record("a", d + timedelta(days=5), tenure="9"),  # made on the day of the outcome: may know it
        record("a", d + timedelta(days=4), hour=10, variant="shadow", tenure="99"),  # never answered
    ]
    rows = T.rows_from_prediction_log(records, [Outcome("a", True, d + timedelta(days=5))], 90)
    assert len(rows) == 1
    assert rows[0].features["tenure"] == "7" and rows[0].churned is True
    assert rows[0].known_at.startswith("2026-06-05T09")
    # Too old a prediction is not matched.
    assert T.rows_from_prediction_log(records[:1], [Outcome("a", True, d + timedelta(days=5))], 3) == []


def test_the_newest_period_is_held_out_and_a_customer_counts_once_per_period(schema):
    plan = T.TrainingSetPlan(window_days=90, period_days=30, min_train_rows=1, min_holdout_rows=1, min_class_count=1)
    rows = [
        row("a", TODAY - timedelta(days=2), churned=True),  # the newest label: periods count back from it
        row("b", TODAY - timedelta(days=31), churned=False),  # still the newest period (30 days)
        row("c", TODAY - timedelta(days=32), churned=True),  # the period before
        row("d", TODAY - timedelta(days=40), churned=False, known_at="d-1"),
        row("d", TODAY - timedelta(days=35), churned=True, known_at="d-2"),  # d's latest in that period wins
        row("e", TODAY - timedelta(days=70), churned=False),
        row("f", TODAY - timedelta(days=95), churned=True),  # outside the window
        row("g", TODAY - timedelta(days=50), churned=False, Contract="Fortnightly"),  # no longer fits the schema
    ]
    split = T.split_by_period(rows, plan, TODAY, schema)
    assert split.ok, split.reasons
    assert sorted(r.customer_key for r in split.holdout) == ["a", "b"]
    assert sorted((r.customer_key, r.churned) for r in split.train) == [("c", True), ("d", True), ("e", False)]
    assert split.counts == {
        "labelled": 8,
        "outside_window": 1,
        "not_fitting_schema": 1,
        "repeats_in_period": 1,
        "shared_with_holdout": 0,
    }
    assert split.holdout_period.start == TODAY - timedelta(days=31) and split.holdout_period.end == TODAY - timedelta(
        days=2
    )
    described = split.describe()
    assert described["rows"]["train"] == 3 and described["rows"]["holdout"] == 2
    assert described["period"]["holdout"] == {
        "start": split.holdout_period.start.isoformat(),
        "end": split.holdout_period.end.isoformat(),
        "periods": 1,
    }
    assert described["period"]["train"]["periods"] == 2


def test_a_prediction_a_held_out_row_uses_is_never_trained_on(schema):
    plan = T.TrainingSetPlan(window_days=90, period_days=10, min_train_rows=1, min_holdout_rows=1, min_class_count=1)
    # One prediction, two outcomes in two periods (no newer prediction in between): the same features twice.
    rows = [
        row("a", TODAY - timedelta(days=15), churned=False, known_at="a-once"),
        row("a", TODAY - timedelta(days=1), churned=True, known_at="a-once"),
        row("b", TODAY - timedelta(days=15), churned=True),
        row("c", TODAY - timedelta(days=1), churned=False),
    ]
    split = T.split_by_period(rows, plan, TODAY, schema)
    assert [r.customer_key for r in split.train] == ["b"]
    assert split.counts["shared_with_holdout"] == 1


def test_too_few_rows_give_reasons_not_a_set(schema):
    plan = T.TrainingSetPlan()
    split = T.split_by_period([row("a", TODAY)], plan, TODAY, schema)
    assert not split.ok
    assert "has 1 labelled rows (0 churned)" in split.reasons[0] and "at least 200" in split.reasons[0]
    assert "0 training rows" in split.reasons[1] and "at least 500" in split.reasons[1]
    # The original training file counts towards training (not towards the held-out period).
    split = T.split_by_period([row("a", TODAY)], plan, TODAY, schema, original=(2000, 500))
    assert len(split.reasons) == 1 and "newest period" in split.reasons[0]

    assert T.split_by_period([], plan, TODAY, schema).reasons == ["no labelled rows in the last 180 days"]
    # The source says why in its own terms (services/training_set: ServedPredictions, EventFeatureRows).
    nothing = T.split_by_period([], plan, TODAY, schema, why_none="the logs end too early")
    assert nothing.reasons == ["the logs end too early"]


def test_the_csv_is_what_training_reads_and_holds_no_customer_key(schema):
    rows = [row(f"key-{i}", TODAY - timedelta(days=i % 20), churned=i % 3 == 0) for i in range(30)]
    original = synth_frame(5, seed=4)
    data = T.to_csv(schema, rows, original.to_dict("records"))
    frame = read_csv(io.BytesIO(data))
    assert len(frame) == 35 and list(frame.columns) == [*schema.feature_names, "Churn", "period"]
    assert schema.validate_frame(frame).ok
    assert set(frame["Churn"]) == {"Yes", "No"} and (frame["period"] == "original").sum() == 5
    assert b"key-" not in data and "customerID" not in frame.columns

    parsed, churned = T.read_original(original.to_csv(index=False).encode(), schema, "s3://b/train.csv")
    assert len(parsed) == 5 and churned == (original["Churn"] == "Yes").sum()
    with pytest.raises(DataValidationError, match="lacks columns: Churn"):
        T.read_original(original.drop(columns=["Churn"]).to_csv(index=False).encode(), schema, "s3://b/x.csv")


def test_rows_built_at_cutoffs_carry_their_times_for_time_ordered_validation(schema):
    from churnguard.domain.time_folds import time_folds

    # Ten customers at three cutoffs a month apart, each labelled a month later.
    cutoffs = ["2025-12-01T00:00:00Z", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"]
    rows = [
        T.LabelledRow(
            f"c{i % 10}", features(i), i % 4 == 0, date(2026, 1 + i // 10, 1), cutoffs[i // 10], cutoffs[i // 10 + 1]
        )
        for i in range(30)
    ]
    original = synth_frame(4, seed=5).assign(cutoff="2025-11-01T00:00:00Z", label_end="2025-12-01T00:00:00Z")
    frame = read_csv(io.BytesIO(T.to_csv(schema, rows, original.to_dict("records"), time_ordered=True)))

    assert list(frame.columns)[-3:] == ["period", "cutoff", "label_end"]
    assert frame["cutoff"].nunique() == 4
    folds = time_folds(frame, 3)
    assert len(folds) == 3 and all(
        frame["label_end"].iloc[tr].max() <= frame["cutoff"].iloc[te].min() for tr, te in folds
    )
    # An original file without the times cannot join rows validated in time order: said, with the fix.
    plain = synth_frame(3, seed=6).to_csv(index=False).encode()
    with pytest.raises(DataValidationError, match="lacks columns: cutoff, label_end.*churn features build"):
        T.read_original(plain, schema, "s3://b/original.csv", time_ordered=True)
    assert T.read_original(plain, schema, "s3://b/original.csv")[0]


def test_a_bad_plan_is_refused():
    with pytest.raises(ValueError, match="period_days must not exceed window_days"):
        T.TrainingSetPlan(window_days=10, period_days=30)
    # Every broken rule at once, so one deploy fixes them all.
    with pytest.raises(ValueError, match=r"^training set: period_days must not .*; min_train_rows, .* must be >= 1$"):
        T.TrainingSetPlan(window_days=10, period_days=30, min_train_rows=0)
    with pytest.raises(ValueError, match="unknown training set settings"):
        T.TrainingSetPlan.from_dict({"windows": "3"})
    assert T.TrainingSetPlan.from_dict({"window_days": "60"}).window_days == 60


def test_the_source_is_the_event_logs_only_for_a_champion_trained_on_their_features(schema):
    from churnguard.domain.event_features import FeatureDefinition
    from churnguard.domain.schema import CategoricalFeature, NumericFeature, Schema
    from churnguard.services.training_set import choose_source

    definition = FeatureDefinition.from_dict(
        {
            "name": "subs",
            "entity": {"path": "c.csv", "id": "id", "attributes": [{"name": "plan", "type": "categorical"}]},
            "sources": {"usage": {"path": "u.csv", "customer_id": "id", "time": "t"}},
            "features": [{"name": "sessions", "source": "usage", "agg": "count", "window": 30}],
            "label": {"horizon_days": 30, "cancellation": {"source": "usage"}},
        }
    )

    def served(why):
        return ("served", why)

    def events(d, why):
        return ("events", d.name, why)

    chosen = choose_source(schema, None, served, events, no_definition="no feature definition (not uploaded)")
    assert chosen == ("served", "no feature definition (not uploaded): served predictions joined to outcomes")
    chosen = choose_source(schema, definition, served, events)
    assert (
        chosen[0] == "served"
        and "does not compute (gender, SeniorCitizen, Partner, Dependents, tenure, ...)" in chosen[1]
    )
    trained_on_it = Schema(
        name="subs-features",
        id_column="id",
        target="churned",
        positive_label="Yes",
        features=(CategoricalFeature("plan", ("a", "b"), nullable=True), NumericFeature("sessions")),
    )
    assert choose_source(trained_on_it, definition, served, events) == (
        "events",
        "subs",
        "the champion reads the features of the definition 'subs'",
    )
