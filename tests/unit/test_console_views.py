"""The console's pure parts: the call list, formula-safe cells, the canary over time, training runs, sessions."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest

from churnguard.domain.call_list import CallListBuilder, RetentionEconomics, call_list_csv
from churnguard.domain.canary import error_rates_over_time
from churnguard.domain.model_registry import ModelVersion, retraining_runs
from churnguard.domain.spreadsheet import formula_safe
from churnguard.services.console import ConsoleSessions

HEADER = "customerID,churn_probability,will_churn,risk_level,reasons,model_version\n"


def _reasons(*features: str) -> str:
    return json.dumps([{"feature": f, "value": "x", "effect": "increases risk", "contribution": 0.1} for f in features])


def _csv_part(rows: list[tuple[str, float, str, str]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    buf.write(HEADER)
    for cid, p, risk, reasons in rows:
        w.writerow([cid, p, "true" if p >= 0.3 else "false", risk, reasons, "v1"])
    return buf.getvalue().encode()


def _risk(p: float) -> str:
    return "high" if p >= 0.6 else "medium" if p >= 0.3 else "low"


def _population(n: int, seed: int = 0) -> list[tuple[str, float, str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        p = round(rng.random(), 4)
        out.append((f"C{i:05d}", p, _risk(p), _reasons("Contract" if i % 3 else "tenure") if p >= 0.3 else ""))
    return out


def test_the_call_list_keeps_at_risk_customers_most_likely_first_and_counts_everyone():
    rows = _population(1000)
    b = CallListBuilder()
    b.add_csv(_csv_part(rows[:400]))
    b.add_csv(_csv_part(rows[400:]))
    cl = b.build()
    at_risk = sorted((r for r in rows if r[2] != "low"), key=lambda r: (-r[1], r[0]))
    assert [e.customer_id for e in cl.entries] == [r[0] for r in at_risk]
    assert cl.rows_scored == 1000 and sum(cl.histogram) == 1000 and not cl.truncated
    assert cl.risk_counts == {lvl: sum(r[2] == lvl for r in rows) for lvl in ("high", "medium", "low")}
    assert cl.entries[0].action.startswith("Contact within 7 days") and "main driver:" in cl.entries[0].action


def test_a_capped_call_list_keeps_the_most_likely_whatever_the_order_of_the_files():
    rows = _population(500, seed=1)
    kept = []
    for order in (rows, list(reversed(rows))):
        b = CallListBuilder(max_entries=50)
        for i in range(0, 500, 100):
            b.add_csv(_csv_part(order[i : i + 100]))
        cl = b.build()
        assert cl.truncated and len(cl.entries) == 50
        kept.append([e.customer_id for e in cl.entries])
    best = sorted((r for r in rows if r[2] != "low"), key=lambda r: (-r[1], r[0]))[:50]
    assert kept[0] == kept[1] == [r[0] for r in best]


def test_select_and_page():
    b = CallListBuilder()
    b.add_csv(_csv_part(_population(600, seed=2)))
    cl = b.build()
    high = cl.select({"high"})
    assert high.entries and all(e.risk_level == "high" for e in high.entries)
    contract = cl.select(None, "Contract")
    assert contract.entries and all("Contract" in e.risk_drivers() for e in contract.entries)
    assert len(contract.entries) + len(cl.select(None, "tenure").entries) == len(cl.entries)
    pages = [cl.page(n, 25) for n in range(1, cl.page(1, 25).pages + 1)]
    assert [e for p in pages for e in p.entries] == cl.entries
    assert cl.page(10_000, 25).number == pages[-1].number and cl.page(0, 25).number == 1  # clamped
    assert cl.page(1, 10_000).size == 200


def test_expected_value_follows_the_training_configs_economics():
    meta = {"training": {"config": {"offer_cost": 20.0, "customer_value": 600.0, "save_rate": 0.25}}}
    econ = RetentionEconomics.from_metadata(meta)
    assert econ == RetentionEconomics(20.0, 600.0, 0.25)
    assert econ.expected_value(0.8) == pytest.approx(0.8 * 0.25 * 600 - 20)
    assert RetentionEconomics.from_metadata({"training": {"config": {"offer_cost": 20.0}}}) is None
    b = CallListBuilder(economics=econ)
    b.add_csv(_csv_part([("A", 0.9, "high", _reasons("Contract")), ("B", 0.1, "low", "")]))
    (entry,) = b.build().entries
    assert entry.expected_value == pytest.approx(0.9 * 0.25 * 600 - 20)


@pytest.mark.parametrize("cell", ["=1+2", "+33", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")'])
def test_formula_cells_are_neutralised(cell):
    assert formula_safe(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["7590-VHVEG", "Month-to-month", "", "a=b"])
def test_plain_cells_are_left_alone(cell):
    assert formula_safe(cell) == cell


def test_the_export_is_formula_safe_and_keeps_numbers_as_numbers():
    b = CallListBuilder()
    b.add_csv(_csv_part([('=HYPERLINK("http://evil","x")', 0.91, "high", _reasons("Contract"))]))
    body = call_list_csv(b.build().entries).decode()
    row = next(csv.DictReader(io.StringIO(body)))
    assert row["customer_id"] == '\'=HYPERLINK("http://evil","x")'
    assert row["churn_probability"] == "0.9100" and row["rank"] == "1"
    assert row["reason_1"] == "Contract = x (increases risk)" and row["reason_3"] == ""


def test_error_rates_over_time_per_variant_and_week():
    joined = [
        {"variant": "champion", "observed_date": "2026-05-04", "will_churn": True, "churned": True},  # Monday
        {"variant": "champion", "observed_date": "2026-05-10", "will_churn": True, "churned": False},  # Sunday
        {"variant": "champion", "observed_date": "2026-05-11", "will_churn": False, "churned": False},
        {"variant": "canary", "observed_date": "2026-05-06", "will_churn": False, "churned": True},
    ]
    out = error_rates_over_time(joined)
    assert out["champion"] == [
        {"start": "2026-05-04", "n": 2, "errors": 1, "error_rate": 0.5},
        {"start": "2026-05-11", "n": 1, "errors": 0, "error_rate": 0.0},
    ]
    assert out["canary"] == [{"start": "2026-05-04", "n": 1, "errors": 1, "error_rate": 1.0}]
    with pytest.raises(ValueError):
        error_rates_over_time(joined, 0)


def test_training_runs_say_how_each_ended():
    def mv(version, status, created, **kw):
        return ModelVersion(version, status, "s3://b/m", "0" * 64, created_at=created, **kw)

    versions = [
        mv("v1", "archived", "2026-01-01", promoted_at="2026-01-02"),
        mv("v2", "production", "2026-02-01", promoted_at="2026-02-02", lineage={"reason": "drift"}),
        mv("v3", "rejected", "2026-03-01", reason="gate: ROC-AUC below 0.70"),
        mv("v4", "failed", "2026-04-01"),
        mv("v5", "candidate", "2026-05-01", evaluation={"passed": True}, lineage={"execution": {"name": "drift-x"}}),
    ]
    runs = retraining_runs(versions, champion_version="v2")
    assert [(r["version"], r["outcome"]) for r in runs] == [
        ("v5", "pending"),
        ("v4", "failed"),
        ("v3", "rejected"),
        ("v2", "serving"),
        ("v1", "promoted"),
    ]
    assert runs[0]["gate_passed"] is True and runs[0]["execution"] == "drift-x"
    assert runs[2]["detail"] == "gate: ROC-AUC below 0.70" and runs[3]["trigger"] == "drift"


def test_sessions_ask_the_identity_provider_at_most_once_a_minute_per_token():
    asked: list[str] = []
    now = [0.0]

    def user_of(token: str) -> str | None:
        asked.append(token)
        return "ana" if token == "good" else None

    sessions = ConsoleSessions(user_of, ttl_s=60, clock=lambda: now[0])
    assert sessions.user("good") == "ana" and sessions.user("good") == "ana"
    assert sessions.user("bad") is None and sessions.user(None) is None and sessions.user("") is None
    assert asked == ["good", "bad"]
    now[0] = 61
    assert sessions.user("good") == "ana" and asked == ["good", "bad", "good"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("models", "models"),
        ("call-list?risk=high&reason=Contract", "call-list?risk=high&reason=Contract"),
        ("//evil.example", "call-list"),
        ("https://evil.example", "call-list"),
        ("/console/models", "call-list"),
        ("../x", "call-list"),
        (None, "call-list"),
    ],
)
def test_sign_in_returns_only_to_console_pages(target, expected):
    from churnguard.entrypoints.console_pages import _safe_next

    assert _safe_next(target) == expected


def test_runs_that_never_registered_a_model_come_from_the_state_machine():
    registered = ModelVersion(
        "v9", "candidate", "s3://b/m", "0" * 64, created_at="2026-05-02T03:00:00Z",
        lineage={"reason": "drift", "execution": {"name": "drift-20260502-030000-aa"}},
    )  # fmt: skip
    executions = [
        {"name": "drift-20260503-030000-bb", "status": "FAILED", "started_at": "2026-05-03T03:00:00+00:00",
         "stopped_at": "2026-05-03T03:01:00+00:00"},
        {"name": "drift-20260502-030000-aa", "status": "SUCCEEDED", "started_at": "2026-05-02T02:59:00+00:00",
         "stopped_at": "2026-05-02T03:10:00+00:00"},
        {"name": "manual-x", "status": "RUNNING", "started_at": "2026-05-04T00:00:00+00:00", "stopped_at": None},
    ]  # fmt: skip
    runs = retraining_runs([registered], champion_version=None, executions=executions)
    assert [(r["execution"], r["outcome"]) for r in runs] == [
        ("manual-x", "running"),
        ("drift-20260503-030000-bb", "failed before registering a model"),
        ("drift-20260502-030000-aa", "pending"),
    ]
    assert runs[2]["version"] == "v9" and runs[2]["execution_status"] == "SUCCEEDED"
    assert runs[1]["version"] is None and runs[1]["trigger"] == "drift"
