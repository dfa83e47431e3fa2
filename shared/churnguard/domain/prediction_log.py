"""The prediction log: one JSON object per scored customer, for drift checks and evaluation.

Online predictions (through Firehose) and batch scores land in the same layout:
``s3://{MODEL_BUCKET}/predictions/dt=YYYY-MM-DD/*.jsonl``, one record per line::

    {"ts": "2026-05-01T10:00:00.123456Z", "model_version": "v1", "variant": "champion",
     "customer_key": "<HMAC hex or null>", "features": {"tenure": 2, ...},
     "churn_probability": 0.71, "will_churn": true, "request_id": "...", "source": "online",
     "latency_ms": 0.41}

The raw customer id never appears: only its keyed hash (``identity.customer_key``).
Pure functions, no I/O: the Firehose writer and the batch scorer both build records here.

    rec = prediction_record(features=row, prediction=pred, variant="champion",
                            customer_key=key, request_id="r-1")
    to_jsonl([rec])  # b'{"ts": ...}\\n'
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

PREFIX = "predictions"
VARIANTS = ("champion", "canary", "shadow")
SOURCES = ("online", "batch")


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("prediction timestamps must be timezone-aware (UTC)")
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def partition_prefix(day: date | datetime, prefix: str = PREFIX) -> str:
    """``predictions/dt=2026-05-01/``: the folder one day's records land in."""
    if isinstance(day, datetime):
        day = day.astimezone(UTC).date()
    return f"{prefix}/dt={day.isoformat()}/"


def _clean(v: Any) -> Any:
    # JSON has no NaN/inf; a missing numeric is null in the log, as in the API.
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def prediction_record(
    *,
    features: Mapping[str, Any],
    prediction: Mapping[str, Any],
    variant: str,
    customer_key: str | None,
    request_id: str,
    feature_names: Sequence[str] | None = None,
    ts: datetime | None = None,
    source: str = "online",
    latency_ms: float | None = None,
    canary_error: str | None = None,
) -> dict[str, Any]:
    """One log record. ``features`` may hold extra keys (id, target): only ``feature_names`` are kept.

    Online answers also carry ``latency_ms`` (the model's scoring time) and, when the canary should have
    answered but could not (its model failed to load or to score) and the champion answered instead,
    ``canary_error``: the canary stage of the retraining loop judges the canary on both."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, not {source!r}")
    names = feature_names if feature_names is not None else list(features)
    return {
        "ts": iso(ts or utc_now()),
        "model_version": str(prediction["model_version"]),
        "variant": variant,
        "customer_key": customer_key,
        "features": {n: _clean(features.get(n)) for n in names},
        "churn_probability": float(prediction["churn_probability"]),
        "will_churn": bool(prediction["will_churn"]),
        "request_id": request_id,
        "source": source,
        **({"latency_ms": round(latency_ms, 3)} if latency_ms is not None else {}),
        **({"canary_error": canary_error} if canary_error else {}),
    }


def to_jsonl(records: Iterable[Mapping[str, Any]]) -> bytes:
    """Newline-delimited JSON; every record ends with a newline, so concatenated batches stay valid."""
    return b"".join(json.dumps(r, separators=(",", ":"), allow_nan=False).encode() + b"\n" for r in records)


def parse_jsonl(data: bytes) -> list[dict[str, Any]]:
    """Records from one log object; blank lines are skipped, a broken line raises ValueError naming it."""
    out = []
    for i, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ValueError(f"line {i} is not JSON: {e}") from e
    return out


def parse_ts(value: Any) -> datetime | None:
    """A record's ``ts`` as an aware UTC datetime, or None when unreadable.

    The log writes ``2026-05-01T10:00:00.123456Z``; other ISO-8601 forms are read too, a time without
    a zone is taken as UTC and one with an offset is converted to UTC.
    """
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
