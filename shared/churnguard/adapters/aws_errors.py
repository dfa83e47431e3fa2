"""Reading AWS errors: one place that knows where botocore keeps an error's code.

except ClientError as e:
    if error_code(e) in MISSING_OBJECT:
        raise DataValidationError(...) from e
"""

from __future__ import annotations

from botocore.exceptions import ClientError

# What S3 answers for an object or bucket that does not exist (HEAD requests give bare status codes).
MISSING_OBJECT = ("NoSuchKey", "NoSuchBucket", "404", "NotFound")


def error_code(e: BaseException) -> str:
    """The AWS error code of a ClientError ("" for anything else, e.g. a connection error)."""
    return e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else ""
