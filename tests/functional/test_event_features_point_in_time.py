"""Point in time, adversarially: the DuckDB engine over small hand-made logs where every timestamp sits on
an edge (exactly at the cutoff, recorded exactly at it, arriving late, a window's first instant, other time
zones), customers churned before or signing up at the cutoff, and bad records of every kind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from churnguard.adapters.duckdb_engine import DuckDBFeatureEngine
from churnguard.domain.errors import DataValidationError
from churnguard.domain.event_features import FeatureDefinition, FeatureDefinitionError, sql

C1 = datetime(2026, 1, 1, tzinfo=UTC)
C2 = datetime(2026, 2, 1, tzinfo=UTC)
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)

CUSTOMERS = """customer_id,signup,plan
A,2025-06-01,basic
B,2025-06-01,pro
C,2025-06-01,basic
D,2026-01-01T00:00:00Z,pro
E,2026-01-15,basic
F,2025-06-01,basic
G,2025-06-01,pro
"""
# customer, event time, ingestion time, minutes
USAGE = """customer_id,ts,ing,minutes
A,2025-12-31T23:59:59.999999Z,2025-12-31T23:59:59.999999Z,1
A,2026-01-01T00:00:00Z,2026-01-01T00:01:00Z,100
A,2025-12-30T10:00:00Z,2026-01-03T00:00:00Z,200
A,2025-12-31T12:00:00Z,2026-01-01T00:00:00Z,300
A,2025-12-25T00:00:00Z,2025-12-25T00:00:10Z,2
A,2025-12-24T23:59:59.999999Z,2025-12-25T00:00:00Z,4
A,2025-12-20T10:00:00Z,2025-12-20T10:01:00Z,8
A,2025-12-20T10:00:00Z,2025-12-20T10:01:00Z,8
A,2026-01-20T00:00:00Z,2026-01-20T00:00:05Z,16
B,2026-01-01T01:30:00+02:00,2026-01-01T01:30:00+02:00,32
B,2026-01-01T00:30:00-01:00,2026-01-01T00:30:00-01:00,64
Z,2025-12-20T10:00:00Z,2025-12-20T10:01:00Z,1
A,yesterday,2025-12-20T10:01:00Z,1
A,2026-07-01T00:00:00Z,2026-07-01T00:00:00Z,1
A,2026-01-10T12:00:00Z,2026-01-10T11:00:00Z,1
A,2025-12-21T00:00:00Z,2025-12-21T00:00:00Z,abc
A,2025-12-22T00:00:00Z,,1
A,2026-03-05T00:00:00Z,2026-03-05T00:00:00Z,1
"""
# A naive local time in New York: 20:00 on 31 December is 01:00 UTC on 1 January.
TICKETS = """customer_id,opened
B,2025-12-31 20:00:00
B,2025-12-31 18:00:00
"""
SUBSCRIPTION = """customer_id,ts,kind
C,2025-12-15T00:00:00Z,cancel
F,2026-01-01T00:00:00Z,cancel
G,2026-01-31T00:00:00Z,cancel
B,2026-01-20T00:00:00Z,cancel
A,2025-12-01T00:00:00Z,upgrade
"""
DEFINITION = {
    "name": "edges",
    "entity": {
        "path": "customers.csv",
        "id": "customer_id",
        "created_at": "signup",
        "attributes": [{"name": "plan", "type": "categorical"}],
    },
    "sources": {
        "usage": {
            "path": "usage.csv",
            "customer_id": "customer_id",
            "time": "ts",
            "ingested": "ing",
            "values": ["minutes"],
        },
        "tickets": {
            "path": "tickets.csv",
            "customer_id": "customer_id",
            "time": "opened",
            "timezone": "America/New_York",
        },
        "subscription": {"path": "subscription.csv", "customer_id": "customer_id", "time": "ts", "type": "kind"},
    },
    "features": [
        {"name": "sessions", "source": "usage", "agg": "count", "windows": [7, 30]},
        {"name": "minutes_30d", "source": "usage", "agg": "sum", "column": "minutes", "window": 30},
        {"name": "sessions_ever", "source": "usage", "agg": "count"},
        {"name": "minutes_ever", "source": "usage", "agg": "sum", "column": "minutes"},
        {"name": "days_since_last_session", "source": "usage", "agg": "days_since_last"},
        {"name": "tickets_30d", "source": "tickets", "agg": "count", "window": 30},
    ],
    "label": {"horizon_days": 30, "cancellation": {"source": "subscription", "types": ["cancel"]}},
}


@pytest.fixture
def logs(tmp_path):
    for name, body in [
        ("customers", CUSTOMERS),
        ("usage", USAGE),
        ("tickets", TICKETS),
        ("subscription", SUBSCRIPTION),
    ]:
        (tmp_path / f"{name}.csv").write_text(body)
    return tmp_path


def build(logs, definition=DEFINITION, cutoffs=(C1, C2), **kwargs):
    d = FeatureDefinition.from_dict(definition, base=str(logs))
    return DuckDBFeatureEngine(threads=1).compute(d, list(cutoffs), as_of=AS_OF, **kwargs)


def rows(frame):
    out = {}
    for i, (cid, vec) in enumerate(frame.vectors()):
        out[(frame.cutoffs[frame.k[i]], cid)] = {**vec, "churned": bool(frame.churned[i])}
    return out


def test_who_is_a_row_at_each_cutoff(logs):
    got = rows(build(logs))

    # C churned before C1; D signed up exactly at C1 and E after it; F cancelled exactly at C1 (still a customer
    # then); B, F and G cancelled before C2.
    assert sorted(cid for c, cid in got if c == C1) == ["A", "B", "F", "G"]
    assert sorted(cid for c, cid in got if c == C2) == ["A", "D", "E"]


def test_labels_come_from_the_horizon_after_the_cutoff_only(logs):
    got = rows(build(logs))

    assert got[(C1, "B")]["churned"] is True  # cancelled 19 days after
    assert got[(C1, "F")]["churned"] is True  # cancelled exactly at the cutoff: inside [cutoff, cutoff + 30d)
    assert got[(C1, "G")]["churned"] is False  # cancelled exactly 30 days after: outside the horizon
    assert got[(C1, "A")]["churned"] is False  # an upgrade is not a cancellation


def test_an_event_at_the_cutoff_or_recorded_at_or_after_it_is_not_known_then(logs):
    a1, a2 = (rows(build(logs))[(c, "A")] for c in (C1, C2))

    # Known at C1: 23:59:59.999999 (1), the window-edge pair (2, 4) and the de-duplicated 20 December (8).
    # Not: the event at exactly C1 (100), the late arrival (200), the one recorded exactly at C1 (300).
    assert a1["sessions_ever"] == 4
    assert a1["minutes_ever"] == 1 + 2 + 4 + 8
    # At C2 all three are known, plus 20 January (16); the rejected records never count.
    assert a2["sessions_ever"] == 8
    assert a2["minutes_ever"] == 1 + 100 + 200 + 300 + 2 + 4 + 8 + 16


def test_a_window_includes_its_first_instant_and_nothing_before(logs):
    a1 = rows(build(logs))[(C1, "A")]

    # The 7-day window is [C1 - 7 days, C1): 25 December 00:00 is in, a microsecond before it is out.
    assert a1["sessions_7d"] == 2
    assert a1["sessions_30d"] == 4
    assert a1["minutes_30d"] == 15.0
    assert a1["days_since_last_session"] == 0  # a microsecond before the cutoff: within the last day


def test_days_since_the_last_known_event(logs):
    a2 = rows(build(logs))[(C2, "A")]

    assert a2["days_since_last_session"] == 12  # 20 January -> 1 February
    assert a2["sessions_30d"] == 1


def test_time_zones_offsets_and_a_source_timezone_for_naive_times(logs):
    b1 = rows(build(logs))[(C1, "B")]

    # +02:00 01:30 is 23:30 UTC the day before (known at C1); -01:00 00:30 is 01:30 UTC (not).
    assert b1["sessions_ever"] == 1 and b1["minutes_ever"] == 32
    # New York 18:00 on 31 December is 23:00 UTC (known); 20:00 is 01:00 UTC on 1 January (not).
    assert b1["tickets_30d"] == 1


def test_customers_without_events_get_zero_counts_and_missing_recency(logs):
    d2 = rows(build(logs))[(C2, "D")]

    assert d2["sessions_ever"] == 0 and d2["minutes_30d"] == 0.0
    assert d2["days_since_last_session"] is None


def test_bad_records_are_counted_by_reason_and_never_used(logs):
    frame = build(logs)

    assert frame.rejected["usage"] == {
        sql.UNKNOWN_CUSTOMER: 1,
        sql.BAD_TIME: 1,
        sql.BAD_INGESTED: 1,
        sql.BAD_VALUE: 1,
        sql.FUTURE: 1,
        sql.RECORDED_EARLY: 1,
        sql.DUPLICATE: 1,
    }
    assert frame.accepted["usage"] == 11  # 18 lines - 6 rejected - 1 duplicate copy
    assert "tickets" not in frame.rejected


def test_the_training_csv_holds_the_same_rows_and_values(logs, tmp_path):
    import csv

    frame = build(logs, training_csv=str(tmp_path / "out" / "train.csv"))
    with open(tmp_path / "out" / "train.csv") as f:
        table = list(csv.DictReader(f))
    got = rows(frame)

    assert list(table[0]) == [
        "customer_id",
        "cutoff",
        "label_end",
        "plan",
        "sessions_7d",
        "sessions_30d",
        "minutes_30d",
        "sessions_ever",
        "minutes_ever",
        "days_since_last_session",
        "tickets_30d",
        "churned",
    ]
    assert len(table) == len(got)
    for r in table:
        cutoff = datetime.fromisoformat(r["cutoff"].replace("Z", "+00:00"))
        want = got[(cutoff, r["customer_id"])]
        assert r["churned"] == ("Yes" if want["churned"] else "No")
        assert r["label_end"] == ("2026-01-31T00:00:00Z" if cutoff == C1 else "2026-03-03T00:00:00Z")
        for name in ("minutes_30d", "minutes_ever", "sessions_ever"):
            assert float(r[name]) == want[name]
        recency = want["days_since_last_session"]
        assert (r["days_since_last_session"] or None) == (None if recency is None else str(int(recency)))


def test_a_definition_naming_a_missing_column_fails_before_any_work(logs):
    bad = {
        **DEFINITION,
        "sources": {**DEFINITION["sources"], "tickets": {**DEFINITION["sources"]["tickets"], "time": "created"}},
    }

    with pytest.raises(
        FeatureDefinitionError,
        match="source 'tickets' .* has no column 'created' .* its columns are: customer_id, opened",
    ):
        build(logs, bad)


def test_duplicate_customer_ids_are_refused_naming_them(logs):
    (logs / "customers.csv").write_text(CUSTOMERS + "A,2025-07-01,pro\nB,2025-07-01,pro\n")

    with pytest.raises(DataValidationError, match=r"2 ids on more than one row \(e.g. A, B\)"):
        build(logs)


def test_missing_files_and_unreadable_files_are_named(logs):
    (logs / "tickets.csv").unlink()
    with pytest.raises(DataValidationError, match="source 'tickets': no csv file at"):
        build(logs)

    (logs / "tickets.csv").write_bytes(b"\x00\x01PAR1 not really")
    (logs / "usage.parquet").write_bytes(b"not parquet")
    definition = {
        **DEFINITION,
        "sources": {**DEFINITION["sources"], "usage": {**DEFINITION["sources"]["usage"], "path": "usage.parquet"}},
    }
    with pytest.raises(DataValidationError, match="cannot read source 'usage' .* as parquet"):
        build(logs, definition)


def test_cutoffs_after_the_as_of_time_are_refused(logs):
    with pytest.raises(DataValidationError, match="cutoffs after the build's as-of time"):
        build(logs, cutoffs=(C1, datetime(2026, 7, 1, tzinfo=UTC)))


def test_a_cutoff_inside_a_day_splits_that_days_events_by_when_they_were_known(logs):
    noon = datetime(2026, 1, 10, 12, tzinfo=UTC)
    (logs / "usage.csv").write_text(
        "customer_id,ts,ing,minutes\n"
        "A,2026-01-10T11:00:00Z,2026-01-10T11:30:00Z,1\n"  # known at 11:30: before noon
        "A,2026-01-10T11:59:00Z,2026-01-10T12:00:00Z,2\n"  # recorded exactly at noon: not yet known
        "A,2026-01-10T13:00:00Z,2026-01-10T13:00:01Z,4\n"  # after noon
        "A,2026-03-05T00:00:00Z,2026-03-05T00:00:00Z,8\n"
    )

    got = rows(build(logs, cutoffs=(noon, C2)))

    assert got[(noon, "A")]["minutes_ever"] == 1 and got[(noon, "A")]["sessions_ever"] == 1
    assert got[(C2, "A")]["minutes_ever"] == 7 and got[(C2, "A")]["sessions_ever"] == 3
    assert got[(noon, "A")]["minutes_30d"] == 1


def test_cutoffs_less_than_a_day_apart_are_refused(logs):
    with pytest.raises(DataValidationError, match="at least a day apart"):
        build(logs, cutoffs=(C1, datetime(2026, 1, 1, 23, tzinfo=UTC)))
