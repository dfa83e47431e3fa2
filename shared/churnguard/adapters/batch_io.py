"""S3 side of batch scoring: find input objects, read byte ranges, write outputs.

io = S3BatchIO(boto3.client("s3"))
io.list_inputs("s3://bucket/customers/")   # -> [("s3://bucket/customers/a.csv", 1234), ...]
io.read_lines("s3://bucket/customers/a.csv", 0, 64 << 20, size)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.s3_objects import parse_s3_uri
from churnguard.domain.batch import MAX_LINE_BYTES, slice_lines
from churnguard.domain.errors import DataValidationError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_MISSING = ("NoSuchKey", "NoSuchBucket", "404", "NotFound")


def _code(e: Exception) -> str:
    return getattr(e, "response", {}).get("Error", {}).get("Code", "")


class S3BatchIO:
    def __init__(self, s3_client: S3Client) -> None:
        self.s3 = s3_client

    def list_inputs(self, uri: str) -> list[tuple[str, int]]:
        """One object, or every ``.csv`` object under a prefix; DataValidationError when there are none."""
        if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise DataValidationError(f"input must be an s3://bucket/key or s3://bucket/prefix/ location, not {uri!r}")
        bucket, _, key = uri[5:].partition("/")
        try:
            if key and not key.endswith("/"):
                try:
                    head = self.s3.head_object(Bucket=bucket, Key=key)
                    return [(f"s3://{bucket}/{key}", int(head["ContentLength"]))]
                except ClientError as e:
                    if _code(e) not in _MISSING:
                        raise
                    key += "/"  # not an object: try it as a prefix
            found: list[tuple[str, int]] = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith(".csv"):
                        found.append((f"s3://{bucket}/{obj['Key']}", int(obj["Size"])))
        except ClientError as e:
            if _code(e) in _MISSING:
                raise DataValidationError(f"input {uri} does not exist (no such bucket)") from e
            raise StorageError(f"cannot list {uri}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot list {uri}: {e}") from e
        if not found:
            raise DataValidationError(
                f"input {uri} does not exist: no such object and no .csv objects under that prefix"
            )
        return sorted(found)

    def read_range(self, uri: str, first: int, last: int) -> bytes:
        """Bytes ``first..last`` inclusive (S3 clips ``last`` to the object's end)."""
        bucket, key = parse_s3_uri(uri)
        try:
            return self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")["Body"].read()
        except ClientError as e:
            if _code(e) in _MISSING:
                raise DataValidationError(f"input object {uri} does not exist") from e
            if _code(e) == "InvalidRange":
                return b""
            raise StorageError(f"cannot read {uri}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot read {uri}: {e}") from e

    def header(self, uri: str) -> bytes:
        head = self.read_range(uri, 0, MAX_LINE_BYTES - 1)
        nl = head.find(b"\n")
        return head if nl < 0 else head[: nl + 1]

    def read_lines(self, uri: str, start: int, end: int, size: int) -> bytes:
        """The header line plus the lines that start in [start, end) (see batch.slice_lines)."""
        buf_start = max(start - 1, 0)
        last = min(end - 1 + MAX_LINE_BYTES, size - 1)
        buf = self.read_range(uri, buf_start, last) if size else b""
        body = slice_lines(buf, buf_start, start, end, at_eof=last >= size - 1)
        if start == 0:
            return body  # the header is the first line of the first range
        return self.header(uri) + body

    def put(self, uri: str, body: bytes, content_type: str = "text/csv") -> None:
        bucket, key = parse_s3_uri(uri)
        try:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot write {uri}: {e}") from e

    def count(self, prefix_uri: str) -> int:
        """How many objects are under a prefix (progress of a running job)."""
        bucket, prefix = parse_s3_uri(prefix_uri)
        try:
            return sum(
                page.get("KeyCount", 0)
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list {prefix_uri}: {e}") from e
