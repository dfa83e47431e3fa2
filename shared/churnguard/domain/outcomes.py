"""Ground truth: what really happened to a customer, and the one point-in-time join to what we predicted.

An outcome is (customer key, churned, observed date). It arrives one at a time through
``POST /feedback`` or in bulk as a CSV dropped under ``feedback/`` in the model bucket; both
are parsed here (no I/O) and stored once per customer and date (adapters/outcomes.py).
The raw customer id is hashed on arrival (identity.customer_key) and never stored.

    parse_feedback({"customer_id": "7590-VHVEG", "churned": "yes", "observed_date": "2026-05-01"}, key)
    # -> Outcome(customer_key="3f1c...", churned=True, observed_date=date(2026, 5, 1))

The point-in-time rule, used by the drift check, the canary report, every evaluation on served
traffic and the retraining loop's fresh training set (``join_point_in_time``):

    An outcome observed on day D is matched with the customer's latest prediction made strictly
    before 00:00 UTC on D: a score made on the day the outcome was recorded, or after it, may
    already know the answer and must not flatter the model. With ``max_age_days`` the prediction
    must also be made no earlier than that many days before 00:00 UTC on D. Timestamps are read
    as UTC (an offset is converted). One outcome per customer and day counts.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Collection, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

from churnguard.domain.errors import RecordValidationError
from churnguard.domain.identity import customer_key as hash_customer_id
from churnguard.domain.prediction_log import parse_ts

TRUE = {"yes", "true", "1", "y", "churned"}
FALSE = {"no", "false", "0", "n", "stayed"}
EARLIEST = date(1990, 1, 1)
DATE_FORM = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_ID_LENGTH = 128
# An id needs one character that is not blank, blank meaning both what str.strip removes and what JSON
# Schema's (ECMA-262) \s matches: the two differ (\x1c-\x1f, \x85 / \ufeff), so the set is written out and
# the same pattern is documented in the OpenAPI document and checked here.
_BLANKS = " \t\n\u000b\f\r\u001c-\u001f\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
ID_PATTERN = f"[^{_BLANKS}]"
_ID_CHARACTER = re.compile(ID_PATTERN)


def is_blank_id(value: str) -> bool:
    """True when the id has no character but blanks (ID_PATTERN's rule): such an id is refused everywhere."""
    return _ID_CHARACTER.search(value) is None


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
    # Exactly YYYY-MM-DD (fromisoformat alone also takes 20260501 and week dates): the form the API
    # documents, so what its OpenAPI document calls invalid is refused.
    if not isinstance(value, str) or not DATE_FORM.fullmatch(value.strip()):
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
    if not isinstance(value, str) or is_blank_id(value):
        raise ValueError("is required: the customer's id as a non-empty string")
    if len(value) > MAX_ID_LENGTH:
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


class FeedbackFile(NamedTuple):
    """A parsed feedback CSV, every row accounted for:
    ``rows == len(outcomes) + repeated + empty + rows refused`` (a refused row may have several problems)."""

    outcomes: list[tuple[int, Outcome]]  # (row number, outcome), each customer and date once
    rejected: list[dict[str, Any]]  # {"row", "field", "value", "problem"}
    repeated: list[tuple[int, int]]  # (row, the earlier row it repeats exactly): stored once, counted here
    rows: int  # every row after the header (blank lines are not rows)
    empty: int  # rows whose fields are all empty, skipped

    @property
    def rejected_rows(self) -> int:
        return len({p["row"] for p in self.rejected})


def _pick(header: list[str], candidates: tuple[str, ...], what: str) -> str | None:
    found = [c for c in candidates if c in header]
    if len(found) > 1:
        raise RecordValidationError(
            [_problem("header", ",".join(header)[:200], f"{' and '.join(found)} both name the {what}: keep one")]
        )
    return found[0] if found else None


def parse_feedback_csv(data: bytes, hash_key: bytes, today: date | None = None) -> FeedbackFile:
    """The outcomes of a CSV (header: customer_id, churned, observed_date), the rows refused, and the
    identical repeats, with row numbers as a spreadsheet shows them (the header is row 1).

    A file without the needed columns, or naming a column twice, raises RecordValidationError.
    Identical repeats inside the file are stored once and counted; a customer and date given both
    values is refused.
    """
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise RecordValidationError([_problem("file", None, f"is not UTF-8 text: {e}")]) from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    twice = sorted({h for h in header if header.count(h) > 1})
    if twice:
        raise RecordValidationError(
            [_problem("header", ",".join(header)[:200], f"names {h!r} more than once: keep one") for h in twice]
        )
    reader.fieldnames = header
    cols = {
        "customer_id": _pick(header, ID_COLUMNS, "customer id"),
        "churned": _pick(header, CHURNED_COLUMNS, "outcome"),
        "observed_date": _pick(header, DATE_COLUMNS, "observed date"),
    }
    missing = [k for k, v in cols.items() if v is None]
    if missing:
        raise RecordValidationError(
            [_problem("header", ",".join(header)[:200], f"missing column {m}") for m in missing]
        )
    seen: dict[tuple[str, date], tuple[int, bool]] = {}
    outcomes: list[tuple[int, Outcome]] = []
    bad: list[dict[str, Any]] = []
    repeated: list[tuple[int, int]] = []
    rows = empty = 0
    for row in reader:
        n = reader.line_num  # the line in the file (blank lines are skipped by the reader, not counted out)
        rows += 1
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            empty += 1  # a line of empty fields
            continue
        try:
            o = parse_feedback({k: row.get(c) for k, c in cols.items()}, hash_key, today)
        except RecordValidationError as e:
            bad.extend({"row": n, **p} for p in e.problems)
            continue
        first = seen.get((o.customer_key, o.observed_date))
        if first is None:
            seen[(o.customer_key, o.observed_date)] = (n, o.churned)
            outcomes.append((n, o))
        elif first[1] == o.churned:
            repeated.append((n, first[0]))
        else:
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
    return FeedbackFile(outcomes, bad, repeated, rows, empty)


# ----- the point-in-time join ------------------------------------------------------------------
# The variants whose predictions were answered to somebody (a shadow score never was).
SERVED_VARIANTS = ("champion", "canary")
# What the one join returns per matched (outcome, variant).
JOINED_FIELDS = (
    "customer_key",
    "variant",
    "model_version",
    "churn_probability",
    "will_churn",
    "churned",
    "observed_date",
    "predicted_at",
)


def as_date(value: Any) -> date | None:
    """An observed date from a date, a datetime (its UTC day) or an ISO string; None when unreadable."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
    return None


def join_point_in_time(
    predictions: Iterable[Mapping[str, Any]],
    outcomes: Iterable[Outcome | tuple[str, bool, Any]],
    *,
    model_version: str | None = None,
    variants: Collection[str] | None = None,
    by_variant: bool = True,
    max_age_days: int | None = None,
    keep: Collection[str] = (),
) -> list[dict[str, Any]]:
    """Each outcome with the latest prediction made before its observed date (the rule above).

    ``predictions`` are prediction-log records (``prediction_log.prediction_record``); those without a
    customer key, a readable ``ts`` or a numeric probability are skipped. ``model_version`` and
    ``variants`` keep only those records. With ``by_variant`` (the canary report) each variant is
    matched on its own, one row per (outcome, variant); without it (the drift check) the latest of
    all the records kept is matched, one row per outcome. Rows hold ``JOINED_FIELDS`` (the observed
    date as ``YYYY-MM-DD``), plus the matched record's fields named in ``keep`` (a fresh training set
    keeps ``features``), in the order of the outcomes, variants sorted by name.

        rows = join_point_in_time(log_records, store.outcomes(since=start), model_version="v3")
    """
    by_key: dict[str, list[tuple[datetime, str, Mapping[str, Any]]]] = {}
    for r in predictions:
        key = r.get("customer_key")
        variant = r.get("variant") or "champion"
        if not key or (variants is not None and variant not in variants):
            continue
        if model_version is not None and r.get("model_version") != model_version:
            continue
        ts = parse_ts(r.get("ts"))
        p = r.get("churn_probability")
        if ts is None or isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p):
            continue
        by_key.setdefault(key, []).append((ts, variant if by_variant else "", r))
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, date]] = set()
    for key, churned, observed in outcomes:
        day = as_date(observed)
        if day is None or key not in by_key or (key, day) in seen:
            continue
        seen.add((key, day))
        cutoff = datetime(day.year, day.month, day.day, tzinfo=UTC)
        earliest = cutoff - timedelta(days=max_age_days) if max_age_days is not None else None
        latest: dict[str, tuple[datetime, Mapping[str, Any]]] = {}
        for ts, group, r in by_key[key]:
            if ts >= cutoff or (earliest is not None and ts < earliest):
                continue
            if group not in latest or ts > latest[group][0]:
                latest[group] = (ts, r)
        for _, (_ts, r) in sorted(latest.items()):
            rows.append(
                {
                    "customer_key": key,
                    "variant": r.get("variant") or "champion",
                    "model_version": r.get("model_version"),
                    "churn_probability": float(r["churn_probability"]),
                    "will_churn": bool(r.get("will_churn")),
                    "churned": bool(churned),
                    "observed_date": day.isoformat(),
                    "predicted_at": r.get("ts"),
                    **{k: r.get(k) for k in keep},
                }
            )
    return rows
