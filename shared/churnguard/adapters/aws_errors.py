"""Reading AWS errors: one place that knows where botocore keeps an error's code, and one that turns
S3's failures into the domain's errors.

with s3_errors(f"cannot read {uri}", missing=DataValidationError(f"input object {uri} does not exist")):
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import StorageError

# What S3 answers for an object or bucket that does not exist (HEAD requests give bare status codes).
MISSING_OBJECT = ("NoSuchKey", "NoSuchBucket", "404", "NotFound")


def error_code(e: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else, e.g. a connection error)."""
    return e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else ""


def is_missing(e: BaseException) -> bool:
    """Whether S3 said the object (or its bucket) does not exist."""
    return error_code(e) in MISSING_OBJECT


@contextmanager
def s3_errors(doing: str, missing: Exception | None = None) -> Iterator[None]:
    """S3 calls in the block, their failures as the domain's: a missing object or bucket raises ``missing``
    (when given; the caller's own error and message), anything else StorageError("{doing}: {error}")."""
    try:
        yield
    except ClientError as e:
        if missing is not None and is_missing(e):
            raise missing from e
        raise StorageError(f"{doing}: {e}") from e
    except BotoCoreError as e:
        raise StorageError(f"{doing}: {e}") from e
