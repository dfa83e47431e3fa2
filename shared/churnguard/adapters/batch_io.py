"""S3 side of batch scoring: find input objects, read byte ranges, write outputs.

io = S3BatchIO(boto3.client("s3"))
io.list_inputs("s3://bucket/customers/")   # -> [("s3://bucket/customers/a.csv", 1234), ...]
io.read_lines("s3://bucket/customers/a.csv", 0, 64 << 20, size)
"""

from __future__ import annotations

from collections.abc import Iterator

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code, is_missing, s3_errors
from churnguard.adapters.s3_objects import S3ObjectStore, parse_s3_uri
from churnguard.domain.batch.chunks import chunk_records, header_record
from churnguard.domain.errors import DataValidationError, StorageError


class S3BatchIO(S3ObjectStore):
    """The BatchIO port (services/ports.py) over S3: whole objects as S3ObjectStore, plus byte ranges."""

    def list_inputs(self, uri: str) -> list[tuple[str, int]]:
        """One object, or every ``.csv`` object under a prefix; DataValidationError when there are none."""
        if not isinstance(uri, str) or not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
            raise DataValidationError(f"input must be an s3://bucket/key or s3://bucket/prefix/ location, not {uri!r}")
        bucket, _, key = uri[5:].partition("/")
        no_bucket = DataValidationError(f"input {uri} does not exist (no such bucket)")
        with s3_errors(f"cannot list {uri}", missing=no_bucket):
            if key and not key.endswith("/"):
                try:
                    head = self.s3.head_object(Bucket=bucket, Key=key)
                    return [(f"s3://{bucket}/{key}", int(head["ContentLength"]))]
                except ClientError as e:
                    if not is_missing(e):
                        raise
                    key += "/"  # not an object: try it as a prefix
            found: list[tuple[str, int]] = []
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith(".csv"):
                        found.append((f"s3://{bucket}/{obj['Key']}", int(obj["Size"])))
        if not found:
            raise DataValidationError(
                f"input {uri} does not exist: no such object and no .csv objects under that prefix"
            )
        return sorted(found)

    def read_range(self, uri: str, first: int, last: int) -> bytes:
        """Bytes ``first..last`` inclusive (S3 clips ``last`` to the object's end)."""
        bucket, key = parse_s3_uri(uri)
        with s3_errors(f"cannot read {uri}", missing=DataValidationError(f"input object {uri} does not exist")):
            try:
                return self.s3.get_object(Bucket=bucket, Key=key, Range=f"bytes={first}-{last}")["Body"].read()
            except ClientError as e:
                if error_code(e) == "InvalidRange":
                    return b""  # a range that starts past the object's end: nothing there
                raise

    def header(self, uri: str) -> bytes:
        return header_record(lambda first, last: self.read_range(uri, first, last))

    def read_lines(self, uri: str, start: int, end: int, size: int) -> bytes:
        """The header record plus the CSV records that start in [start, end) (domain/batch/chunks.py)."""
        return chunk_records(lambda first, last: self.read_range(uri, first, last), start, end, size)

    def locate(self, uri: str) -> dict[str, str]:
        """Where a Distributed Map's ItemReader finds an object; DataValidationError for a malformed URI."""
        bucket, key = parse_s3_uri(uri)
        return {"bucket": bucket, "key": key}

    def put(self, uri: str, body: bytes, content_type: str = "text/csv") -> None:
        self.write(uri, body, content_type)

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

    def score_files(self, output: str) -> Iterator[bytes]:
        """A job's ``scores/part-*.csv`` objects under ``output``, one at a time (the console's call list)."""
        bucket, prefix = parse_s3_uri(output.rstrip("/") + "/scores/")
        try:
            keys = [
                obj["Key"]
                for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for obj in page.get("Contents", [])
                if obj["Key"].endswith(".csv")
            ]
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list {output}/scores/: {e}") from e
        for key in sorted(keys):
            yield self.read(f"s3://{bucket}/{key}")
