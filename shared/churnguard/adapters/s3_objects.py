"""``s3://bucket/key`` helpers with S3 errors translated into domain errors."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import DataValidationError, StorageError


def parse_s3_uri(uri: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise DataValidationError(f"not an s3://bucket/key location: {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    if not bucket or not key:
        raise DataValidationError(f"not an s3://bucket/key location: {uri!r}")
    return bucket, key


def read_s3_uri(s3: Any, uri: str) -> bytes:
    bucket, key = parse_s3_uri(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise DataValidationError(f"input object {uri} does not exist") from e
        raise StorageError(f"cannot read {uri}: {e}") from e
    except BotoCoreError as e:
        raise StorageError(f"cannot read {uri}: {e}") from e


def write_s3_uri(s3: Any, uri: str, body: bytes, content_type: str = "application/octet-stream") -> None:
    bucket, key = parse_s3_uri(uri)
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    except (ClientError, BotoCoreError) as e:
        raise StorageError(f"cannot write {uri}: {e}") from e
