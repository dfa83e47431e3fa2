"""Reading the events Lambda hands our functions: scheduled events, S3 notifications, state inputs.

Handlers parse their event here and get a ``BadEventError`` naming what is missing or malformed
(a DataValidationError, so Step Functions and the logs show the reason, not a KeyError).

    now = event_time({"time": "2026-05-01T06:00:00Z"})
    files = dropped_objects(s3_put_event)      # [["s3://bucket/feedback/a%20b.csv", "s3://bucket/feedback/a b.csv"]]
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from churnguard.domain.errors import DataValidationError
from churnguard.domain.model_registry import InvalidVersionIdError, check_version_id


class BadEventError(DataValidationError):
    """The event given to a function is not one it can handle; the message says what it expected."""


def require_str(event: Mapping[str, Any], name: str, what: str, prefix: str = "") -> str:
    """``event[name]`` as a non-empty string (starting with ``prefix``), else BadEventError naming ``what``."""
    value = event.get(name)
    if not isinstance(value, str) or not value or not value.startswith(prefix):
        raise BadEventError(f"the event must name {what} as {name!r}" + (f" ({prefix}...)" if prefix else ""))
    return value


def require_version(event: Mapping[str, Any], action: str, name: str = "version") -> str:
    """``event[name]`` as a model version id (domain/model_registry.VERSION_ID), else BadEventError."""
    value = event.get(name)
    if value is None or value == "":
        raise BadEventError(f"a {action} event needs {name!r}")
    try:
        return check_version_id(value)
    except InvalidVersionIdError as e:
        raise BadEventError(f"the event's {name!r}: {e}") from e


def event_time(event: Mapping[str, Any]) -> datetime:
    """The scheduled event's ``time`` as "now" (a replayed event checks its own day); now when absent."""
    raw = event.get("time")
    if raw is None:
        return datetime.now(UTC)
    try:
        return datetime.fromisoformat(str(raw).replace("Z", "+00:00")).astimezone(UTC)
    except ValueError as e:
        raise BadEventError(f"'time' must be an ISO 8601 timestamp, not {raw!r}") from e


def dropped_objects(event: Mapping[str, Any]) -> list[list[str]]:
    """For each object an S3 notification or an EventBridge "Object Created" event names, the URIs it
    may have: S3 notifications URL-encode the key; EventBridge events carry it as is (tried first),
    and decoded in case the sender encoded it."""
    try:
        if event.get("source") == "aws.s3":
            detail = event.get("detail") or {}
            bucket, key = detail["bucket"]["name"], detail["object"]["key"]
            keys = list(dict.fromkeys([key, unquote_plus(key)]))
            return [[f"s3://{bucket}/{k}" for k in keys]]
        return [
            [f"s3://{r['s3']['bucket']['name']}/{unquote_plus(r['s3']['object']['key'])}"]
            for r in event.get("Records", [])
        ]
    except (KeyError, TypeError) as e:
        raise BadEventError(f"not an S3 object-created event: missing {e}") from e
