"""Ground truth: what really happened to a customer, and joining it to what we predicted.

An outcome is (customer key, churned, observed date). It arrives one at a time through
``POST /feedback`` or in bulk as a CSV dropped under ``feedback/`` in the model bucket; both
are parsed here (no I/O) and stored once per customer and date (adapters/outcomes.py).
The raw customer id is hashed on arrival (identity.customer_key) and never stored.

    parse_feedback({"customer_id": "7590-VHVEG", "churned": "yes", "observed_date": "2026-05-01"}, key)
    # -> Outcome(customer_key="3f1c...", churned=True, observed_date=date(2026, 5, 1))

Evaluation joins outcomes to predictions point in time: only a prediction made before the
outcome's date counts (``join_point_in_time``), so a score made after the customer left
cannot flatter the model.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from churnguard.domain.errors import RecordValidationError
from churnguard.domain.identity import customer_key as hash_customer_id

TRUE = {"yes", "true", "1", "y", "churned"}
FALSE = {"no", "false", "0", "n", "stayed"}
EARLIEST = date(1990, 1, 1)
MAX_ID_LENGTH = 128
# Column names accepted in bulk CSVs (first match wins); the Telco export names them customerID and Churn.
ID_COLUMNS = ("customer_id", "customerID", "customerId")
CHURNED_COLUMNS = ("churned", "Churn", "churn")
DATE_COLUMNS = ("observed_date", "observedDate", "date")


class Outcome(NamedTuple):
    customer_key: str
    churned: bool
    observed_date: date


def _problem(field: str, value: Any, problem: str) -> dict[str, Any]:
    if isinstance(value, str) and len(value) > 200:
        value = value[:200] + "..."
    return {"field": field, "value": value, "problem": problem}


def parse_churned(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ValueError("must be yes or no (also accepted: true/false, 1/0)")


def parse_observed_date(value: Any, today: date | None = None) -> date:
    today = today or datetime.now(UTC).date()
    if not isinstance(value, str):
        raise ValueError("must be a date written YYYY-MM-DD")
    try:
        d = date.fromisoformat(value.strip())
    except ValueError:
        raise ValueError("must be a date written YYYY-MM-DD") from None
    # One day of slack: the sender's today may already be tomorrow in UTC.
    if d > today + timedelta(days=1):
        raise ValueError(f"is in the future (today is {today.isoformat()})")
    if d < EARLIEST:
        raise ValueError(f"is before {EARLIEST.isoformat()}")
    return d


def parse_customer_id(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("is required: the customer's id as a non-empty string")
    if len(value.strip()) > MAX_ID_LENGTH:
        raise ValueError(f"is longer than {MAX_ID_LENGTH} characters")
    return value.strip()


def parse_feedback(payload: Mapping[str, Any], hash_key: bytes, today: date | None = None) -> Outcome:
    """One outcome from ``{"customer_id", "churned", "observed_date"}``; RecordValidationError names every problem."""
    problems: list[dict[str, Any]] = []
    values: dict[str, Any] = {}
    for field, parse in (
        ("customer_id", parse_customer_id),
        ("churned", parse_churned),
        ("observed_date", lambda v: parse_observed_date(v, today)),
    ):
        raw = payload.get(field)
        try:
            values[field] = parse(raw)
        except ValueError as e:
            problems.append(_problem(field, raw, str(e)))
    extra = sorted(set(payload) - {"customer_id", "churned", "observed_date"})
    for name in extra:
        problems.append(_problem(name, None, "unknown field: send customer_id, churned and observed_date"))
    if problems:
        raise RecordValidationError(problems)
    return Outcome(hash_customer_id(values["customer_id"], hash_key), values["churned"], values["observed_date"])


def _pick(header: list[str], candidates: tuple[str, ...]) -> str | None:
    return next((c for c in candidates if c in header), None)


def parse_feedback_csv(
    data: bytes, hash_key: bytes, today: date | None = None
) -> tuple[list[tuple[int, Outcome]], list[dict[str, Any]]]:
    """``(row number, outcome)`` pairs from a CSV (header: customer_id, churned, observed_date), and the rows refused.

    Each refused row is ``{"row": n, "field", "value", "problem"}`` with ``n`` the line in the file
    (the header is line 1, as in a spreadsheet). A file without the needed columns raises RecordValidationError.
    Identical repeats inside the file are kept once; a customer and date given both values is refused.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecordValidationError([_problem("file", None, f"is not UTF-8 text: {e}")]) from e
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip() for h in (reader.fieldnames or [])]
    reader.fieldnames = header
    cols = {
        "customer_id": _pick(header, ID_COLUMNS),
        "churned": _pick(header, CHURNED_COLUMNS),
        "observed_date": _pick(header, DATE_COLUMNS),
    }
    missing = [k for k, v in cols.items() if v is None]
    if missing:
        raise RecordValidationError(
            [_problem("header", ",".join(header)[:200], f"missing column {m}") for m in missing]
        )
    seen: dict[tuple[str, date], tuple[int, bool]] = {}
    outcomes: list[tuple[int, Outcome]] = []
    bad: list[dict[str, Any]] = []
    for row in reader:
        n = reader.line_num  # the line in the file (blank lines are skipped by the reader, not counted out)
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a line of empty fields
        try:
            o = parse_feedback({k: row.get(c) for k, c in cols.items()}, hash_key, today)
        except RecordValidationError as e:
            bad.extend({"row": n, **p} for p in e.problems)
            continue
        first = seen.get((o.customer_key, o.observed_date))
        if first is None:
            seen[(o.customer_key, o.observed_date)] = (n, o.churned)
            outcomes.append((n, o))
        elif first[1] != o.churned:
            bad.append(
                {
                    "row": n,
                    **_problem(
                        "churned",
                        row.get(cols["churned"]),
                        f"contradicts row {first[0]} for the same customer and date",
                    ),
                }
            )
    return outcomes, bad


def _day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def join_point_in_time(predictions: Iterable[Mapping[str, Any]], outcomes: Iterable[Outcome]) -> list[dict[str, Any]]:
    """Each outcome with the latest prediction of each variant made before its observed date.

    Predictions are prediction-log records (``prediction_log.prediction_record``). A prediction at
    or after 00:00 UTC of the observed date does not count. Returns one row per (outcome, variant):
    ``{"customer_key", "variant", "model_version", "churn_probability", "will_churn", "churned",
    "observed_date", "predicted_at"}``.
    """
    by_customer: dict[str, list[Mapping[str, Any]]] = {}
    for p in predictions:
        key = p.get("customer_key")
        if key:
            by_customer.setdefault(key, []).append(p)
    rows: list[dict[str, Any]] = []
    for o in outcomes:
        cutoff = _day_start(o.observed_date).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        latest: dict[str, Mapping[str, Any]] = {}
        for p in by_customer.get(o.customer_key, ()):
            # ISO-8601 UTC strings of one format compare in time order.
            if p["ts"] < cutoff and (p["variant"] not in latest or p["ts"] > latest[p["variant"]]["ts"]):
                latest[p["variant"]] = p
        for variant, p in sorted(latest.items()):
            rows.append(
                {
                    "customer_key": o.customer_key,
                    "variant": variant,
                    "model_version": p["model_version"],
                    "churn_probability": float(p["churn_probability"]),
                    "will_churn": bool(p["will_churn"]),
                    "churned": o.churned,
                    "observed_date": o.observed_date.isoformat(),
                    "predicted_at": p["ts"],
                }
            )
    return rows


def ingest_feedback_csv(
    data: bytes, hash_key: bytes, store: Any, source: str, today: date | None = None
) -> dict[str, Any]:
    """The bulk use case: parse a CSV, store each good row once, report the rest.

    ``store`` is an outcome store (adapters.outcomes.DynamoOutcomeStore). Bad rows are reported,
    never stored; a row contradicting an outcome already stored is reported as a conflict.
    """
    try:
        rows, problems = parse_feedback_csv(data, hash_key, today)
    except RecordValidationError as e:
        return {"source": source, "valid_rows": 0, "stored": 0, "duplicates": 0, "rejected": e.problems, "ok": False}
    result = store.record_many([o for _, o in rows], source=source)
    for c in result["conflicts"]:
        problems.append({"row": rows[c["index"]][0], "field": "churned", "value": None, "problem": c["problem"]})
    problems.sort(key=lambda p: p.get("row", 0))
    return {
        "source": source,
        "valid_rows": len(rows),
        "stored": result["stored"],
        "duplicates": result["duplicates"],
        "rejected": problems,
        "ok": not problems,
    }
