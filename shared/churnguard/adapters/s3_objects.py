"""Whole S3 objects by ``s3://bucket/key`` URI, with S3's errors translated into domain errors.

objects = S3ObjectStore(boto3.client("s3"))
data = objects.read("s3://bucket/data/train.csv")        # DataValidationError if it does not exist
objects.write("s3://bucket/reports/x.json", body, "application/json")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import s3_errors
from churnguard.domain.errors import DataValidationError, StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise DataValidationError(f"not an s3://bucket/key location: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise DataValidationError(f"not an s3://bucket/key location: {uri!r}")
    return bucket, key


class S3ObjectStore:
    """The ObjectStore port (services/ports.py) over S3."""

    def __init__(self, s3_client: S3Client) -> None:
        self.s3 = s3_client

    def read(self, uri: str) -> bytes:
        bucket, key = parse_s3_uri(uri)
        with s3_errors(f"cannot read {uri}", missing=DataValidationError(f"input object {uri} does not exist")):
            return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def write(self, uri: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        bucket, key = parse_s3_uri(uri)
        try:
            self.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot write {uri}: {e}") from e
