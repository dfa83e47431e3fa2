"""Firehose's custom S3 prefixes, evaluated as AWS evaluates them (no LocalStack import: tested on its own).

AWS Data Firehose replaces ``!{timestamp:<pattern>}`` in a prefix with the record's arrival time in UTC, formatted
with a Java DateTimeFormatter pattern, and ``!{firehose:random-string}`` with 11 random characters; when a prefix
holds an expression, Firehose adds no ``YYYY/MM/DD/HH/`` folders of its own. Objects are named
``<stream>-<version>-<yyyy-MM-dd-HH-mm-ss>-<uuid>`` (docs.aws.amazon.com/firehose/latest/dev/s3-prefixes.html,
/basic-deliver.html#s3-object-name).

    render_prefix("predictions/dt=!{timestamp:yyyy-MM-dd}/", datetime(2026, 5, 1, 10, tzinfo=UTC))
    # 'predictions/dt=2026-05-01/'
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

EXPRESSION = re.compile(r"!\{(timestamp|firehose):([^}]*)\}")
# The DateTimeFormatter letters prefixes use, longest first, as strftime directives.
JAVA_TO_STRFTIME = (("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"))


def has_expressions(prefix: str) -> bool:
    return EXPRESSION.search(prefix) is not None


def _timestamp(pattern: str, at: datetime) -> str:
    out, i = [], 0
    while i < len(pattern):
        for java, directive in JAVA_TO_STRFTIME:
            if pattern.startswith(java, i):
                out.append(at.strftime(directive))
                i += len(java)
                break
        else:
            out.append(pattern[i])
            i += 1
    return "".join(out)


def render_prefix(prefix: str, at: datetime, error_output_type: str = "processing-failed") -> str:
    def one(m: re.Match[str]) -> str:
        namespace, value = m.group(1), m.group(2)
        if namespace == "timestamp":
            return _timestamp(value, at)
        if value == "random-string":
            return uuid.uuid4().hex[:11]
        if value == "error-output-type":
            return error_output_type
        raise ValueError(f"unknown Firehose prefix expression !{{firehose:{value}}}")

    return EXPRESSION.sub(one, prefix)


def object_key(stream_name: str, prefix: str, at: datetime, file_extension: str = "") -> str:
    """Where AWS puts one delivered object for a prefix with expressions."""
    return f"{render_prefix(prefix, at)}{stream_name}-1-{at:%Y-%m-%d-%H-%M-%S}-{uuid.uuid4()}{file_extension}"
