"""Reading the events Lambda hands our functions: API Gateway requests, scheduled events, S3 notifications,
state inputs.

Handlers parse their event here and get a ``BadEventError`` naming what is missing or malformed
(a DataValidationError, so Step Functions and the logs show the reason, not a KeyError).

    now = event_time({"time": "2026-05-01T06:00:00Z"})
    files = dropped_objects(s3_put_event)      # [["s3://bucket/feedback/a%20b.csv", "s3://bucket/feedback/a b.csv"]]
    request = http_request(api_gateway_event)  # REST (v1) or HTTP API (v2) proxy event, as Mangum reads it

The shapes are those `sam local generate-event` makes (copies in events/, each tested through its handler).
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


def _kind(event: Mapping[str, Any]) -> str:
    """What an event looks like, for error messages."""
    if "httpMethod" in event or "routeKey" in event or "rawPath" in event:
        return "an HTTP request (API Gateway)"
    if "Records" in event:
        sources = {str(r.get("eventSource") or r.get("EventSource")) for r in event["Records"] if isinstance(r, dict)}
        return f"a notification with Records from {', '.join(sorted(sources)) or 'an unknown source'}"
    if "detail-type" in event:
        return f"an EventBridge {event.get('detail-type')!r} event from {event.get('source')!r}"
    return f"an event with keys {sorted(event)[:8]}"


def http_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """An API Gateway proxy event (REST ``aws-proxy`` v1, HTTP API v2) or an ALB request, ready for Mangum.

    An HTTP API on a named stage (not ``$default``) puts the stage in front of the path (``/prod/predict``);
    the app's routes do not have it, so it is removed. Any other kind of event raises BadEventError: Mangum
    would fail on it with a message about its own handlers.
    """
    if not isinstance(event, Mapping):
        raise BadEventError(f"expected an API Gateway request event (a JSON object), not {type(event).__name__}")
    context = event.get("requestContext")
    if event.get("version") == "2.0" and isinstance(context, Mapping) and isinstance(context.get("http"), Mapping):
        stage = str(context.get("stage") or "$default")
        prefix = f"/{stage}"
        raw_path = str(event.get("rawPath") or "/")
        if stage == "$default" or not (raw_path == prefix or raw_path.startswith(prefix + "/")):
            return dict(event)
        path = raw_path[len(prefix) :] or "/"
        http = {**context["http"], "path": path} if context["http"].get("path") == raw_path else context["http"]
        return {**event, "rawPath": path, "requestContext": {**context, "http": http}}
    if "httpMethod" in event and (isinstance(context, Mapping) or "path" in event):
        return dict(event)  # REST API (v1) and ALB: Mangum reads them as they are
    raise BadEventError(
        "this function answers HTTP requests through API Gateway (REST aws-proxy or HTTP API v2 events, "
        f"as `sam local generate-event apigateway aws-proxy` makes), not {_kind(event)}"
    )


def scheduled_time(event: Mapping[str, Any]) -> datetime:
    """ "now" of a scheduled run: the EventBridge schedule event's ``time``, or ``{}`` / ``{"time": ...}`` by hand.

    Any other kind of event raises BadEventError (an S3 or API event sent here by mistake must not run a check).
    """
    if not isinstance(event, Mapping):
        raise BadEventError(f"expected a scheduled event (a JSON object), not {type(event).__name__}")
    scheduled = event.get("detail-type") == "Scheduled Event" or event.get("source") == "aws.events"
    by_hand = set(event) <= {"time", "trigger"}
    if not (scheduled or by_hand):
        raise BadEventError(
            'this function runs on its EventBridge schedule (or by hand with {} or {"time": "<ISO 8601>"}), '
            f"not on {_kind(event)}"
        )
    return event_time(event)


# What a schedule rule may name in its constant input: {"trigger": "schedule"} starts a retraining
# whatever the drift check finds (the RetrainSchedule rule).
TRIGGERS = ("schedule",)


def scheduled_trigger(event: Mapping[str, Any]) -> str | None:
    """The trigger a scheduled event names (``{"trigger": "schedule"}``), or None for a plain drift check."""
    trigger = event.get("trigger") if isinstance(event, Mapping) else None
    if trigger is not None and trigger not in TRIGGERS:
        raise BadEventError(f"'trigger' must be one of {list(TRIGGERS)}, not {trigger!r}")
    return trigger


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
    if not isinstance(event, Mapping) or not (event.get("source") == "aws.s3" or "Records" in event):
        raise BadEventError(
            "expected an S3 object-created event (an S3 notification with Records, or EventBridge "
            f"'Object Created'), not {_kind(event) if isinstance(event, Mapping) else type(event).__name__}"
        )
    try:
        if event.get("source") == "aws.s3":
            detail = event.get("detail") or {}
            bucket, key = detail["bucket"]["name"], detail["object"]["key"]
            keys = list(dict.fromkeys([key, unquote_plus(key)]))
            return [[f"s3://{bucket}/{k}" for k in keys]]
        records = event["Records"]
        if not all(isinstance(r, Mapping) and r.get("eventSource", "aws:s3") == "aws:s3" for r in records):
            raise BadEventError(f"expected S3 notification records, not {_kind(event)}")
        return [[f"s3://{r['s3']['bucket']['name']}/{unquote_plus(r['s3']['object']['key'])}"] for r in records]
    except (KeyError, TypeError) as e:
        raise BadEventError(f"not an S3 object-created event: missing {e}") from e


def alarm_state_change(event: Mapping[str, Any]) -> dict[str, Any]:
    """``{"name", "state", "previous", "reason", "time"}`` of a CloudWatch alarm's state change, as a Lambda
    alarm action delivers it (``{"source": "aws.cloudwatch", "alarmData": {...}}``) or through SNS (a
    ``Records`` event whose message is the alarm notification). Anything else raises BadEventError."""
    if not isinstance(event, Mapping):
        raise BadEventError(f"expected a CloudWatch alarm event (a JSON object), not {type(event).__name__}")
    try:
        if event.get("source") == "aws.cloudwatch" and isinstance(event.get("alarmData"), Mapping):
            data = event["alarmData"]
            return {
                "name": str(data["alarmName"]),
                "state": str(data["state"]["value"]),
                "previous": (data.get("previousState") or {}).get("value"),
                "reason": data["state"].get("reason"),
                "time": event.get("time") or data["state"].get("timestamp"),
            }
        records = event.get("Records")
        if isinstance(records, list) and records and isinstance(records[0], Mapping) and "Sns" in records[0]:
            import json

            message = json.loads(records[0]["Sns"]["Message"])
            return {
                "name": str(message["AlarmName"]),
                "state": str(message["NewStateValue"]),
                "previous": message.get("OldStateValue"),
                "reason": message.get("NewStateReason"),
                "time": message.get("StateChangeTime"),
            }
    except (KeyError, TypeError, ValueError) as e:
        raise BadEventError(f"not a readable CloudWatch alarm state change: missing or malformed {e}") from e
    raise BadEventError(
        "this function runs on a CloudWatch alarm's state change (the alarm's Lambda action, or its SNS "
        f"notification), not on {_kind(event)}"
    )


def _feature_definition(event: Mapping[str, Any]) -> str | None:
    definition = event.get("definition")
    if definition is not None and (not isinstance(definition, str) or not definition.startswith("s3://")):
        raise BadEventError("'definition', when given, must be an s3:// location of a feature definition")
    return definition


def feature_refresh_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """The refresh's ``{"now", "definition_uri"}``: from its EventBridge schedule event, or by hand from ``{}`` /
    ``{"time": "<ISO 8601>", "definition"?: "s3://..."}``. Any other kind of event is a BadEventError."""
    if not isinstance(event, Mapping):
        raise BadEventError(f"expected a scheduled event (a JSON object), not {type(event).__name__}")
    definition = _feature_definition(event)
    return {
        "now": scheduled_time({k: v for k, v in event.items() if k not in ("action", "definition")}),
        "definition_uri": definition,
    }


def feature_build_request(event: Mapping[str, Any]) -> dict[str, Any]:
    """``{"action": "build", "cutoffs": [...] | "every": "30d", "from", "to", "out": "s3://...", "definition"?}``
    as ``{"cutoffs": [datetime], "out", "definition_uri"}``; BadEventError names what is wrong."""
    from churnguard.domain.event_features import cutoff_range, parse_days, parse_moment

    out = require_str(event, "out", "where the training CSV goes", prefix="s3://")
    definition = _feature_definition(event)
    try:
        raw = event.get("cutoffs")
        if raw is not None:
            if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
                raise BadEventError("'cutoffs' must be a list of dates or times, e.g. [\"2026-01-01\"]")
            cutoffs = [parse_moment(c) for c in raw]
        elif all(isinstance(event.get(k), str) for k in ("every", "from", "to")):
            cutoffs = cutoff_range(parse_moment(event["from"]), parse_moment(event["to"]), parse_days(event["every"]))
        else:
            raise BadEventError("name the cutoffs: 'cutoffs': [...], or 'every': '30d' with 'from' and 'to'")
    except BadEventError:
        raise
    except DataValidationError as e:
        raise BadEventError(str(e)) from e
    return {"cutoffs": cutoffs, "out": out, "definition_uri": definition}
