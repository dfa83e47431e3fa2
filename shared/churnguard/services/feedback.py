"""Ground truth arriving: one outcome from the API, or a CSV of them dropped in the bucket.

stored = record_feedback({"customer_id": "7590-VHVEG", "churned": "yes", "observed_date": "2026-05-01"}, key, store)
report = ingest_feedback_csv(csv_bytes, key, store, source="s3://bucket/feedback/may.csv")
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from churnguard.domain.errors import DataValidationError, RecordValidationError
from churnguard.domain.outcomes import parse_feedback, parse_feedback_csv
from churnguard.services.ports import ObjectStore, OutcomeStore


def record_feedback(
    payload: Mapping[str, Any], hash_key: bytes, store: OutcomeStore, source: str = "api"
) -> dict[str, Any]:
    """Parse and store one outcome (RecordValidationError names each bad field; OutcomeConflictError on a
    contradiction). ``stored`` is False when the same outcome was already there."""
    outcome = parse_feedback(payload, hash_key)
    stored = store.record(outcome, source=source)
    return {
        "stored": stored,
        "duplicate": not stored,
        "customer_key": outcome.customer_key,
        "observed_date": outcome.observed_date.isoformat(),
        "churned": outcome.churned,
    }


def ingest_feedback_csv(
    data: bytes, hash_key: bytes, store: OutcomeStore, source: str, today: date | None = None
) -> dict[str, Any]:
    """The bulk use case: parse a CSV, store each good row once, report the rest.

    Bad rows are reported, never stored; a row contradicting an outcome already stored is reported
    as a conflict. Every row is accounted for: ``rows_in == stored + duplicates + repeated +
    rejected_rows + empty`` (``duplicates``: already stored before; ``repeated``: the same row
    earlier in this file; ``empty``: rows of empty fields).
    """
    try:
        parsed = parse_feedback_csv(data, hash_key, today)
    except RecordValidationError as e:
        return {
            "source": source,
            "rows_in": None,
            "valid_rows": 0,
            "stored": 0,
            "duplicates": 0,
            "repeated": 0,
            "empty": 0,
            "rejected_rows": None,
            "rejected": e.problems,
            "ok": False,
        }
    rows = parsed.outcomes
    problems = list(parsed.rejected)
    result = store.record_many([o for _, o in rows], source=source)
    for c in result["conflicts"]:
        problems.append({"row": rows[c["index"]][0], "field": "churned", "value": None, "problem": c["problem"]})
    problems.sort(key=lambda p: p.get("row", 0))
    report = {
        "source": source,
        "rows_in": parsed.rows,
        "valid_rows": len(rows),
        "stored": result["stored"],
        "duplicates": result["duplicates"],
        "repeated": len(parsed.repeated),
        "repeats": [{"row": n, "same_as_row": first} for n, first in parsed.repeated],
        "empty": parsed.empty,
        "rejected_rows": len({p["row"] for p in problems}),
        "rejected": problems,
        "ok": not problems,
    }
    accounted = report["stored"] + report["duplicates"] + report["repeated"] + report["rejected_rows"] + parsed.empty
    if accounted != parsed.rows:  # a lost row is a bug, not a statistic
        raise DataValidationError(f"feedback counts do not reconcile: {parsed.rows} rows in, {accounted} accounted for")
    return report


FEEDBACK_PREFIX = "feedback/"
REPORT_PREFIX = "feedback-reports/"


def report_uri(uri: str) -> str:
    """Where a dropped file's report goes: under ``feedback-reports/`` (outside ``feedback/``, so writing
    it does not trigger the ingest again), named after the file."""
    scheme, _, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    return f"{scheme}://{bucket}/{REPORT_PREFIX}{key.removeprefix(FEEDBACK_PREFIX)}.report.json"


def ingest_feedback_object(
    objects: ObjectStore, hash_key: bytes, store: OutcomeStore, candidates: Sequence[str]
) -> dict[str, Any]:
    """Ingest one dropped feedback file and write its report beside it; returns the report.

    ``candidates`` are the URIs the file may have (an S3 notification URL-encodes the key; an
    EventBridge event does not): the first that exists is read. None existing raises DataValidationError.
    """
    uri, data = _read_first(objects, candidates)
    report = ingest_feedback_csv(data, hash_key, store, source=uri)
    report["report"] = report_uri(uri)
    objects.write(report["report"], json.dumps(report, indent=2, default=str).encode(), "application/json")
    return report


def _read_first(objects: ObjectStore, candidates: Sequence[str]) -> tuple[str, bytes]:
    missing: DataValidationError | None = None
    for uri in candidates:
        try:
            return uri, objects.read(uri)
        except DataValidationError as e:  # this spelling of the key does not exist
            missing = e
    raise missing or DataValidationError("no feedback file named")
