"""Drift and evaluation reports, read back from S3 for the console.

The drift check writes ``reports/drift/{date}/{stamp}-{version}.json`` and the evaluate step
``reports/evaluation/{version}/evaluation.json`` (services/retraining.py); the newest is the one
S3 says was written last. Each report comes back as its JSON plus ``uri`` and ``html`` (the page
stored beside it).

    archive = S3ReportArchive("model-bucket", boto3.client("s3"), prefix="reports")
    archive.latest("drift")          # -> {"decision": "ok", ..., "uri": "s3://.../x.json"} or None
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import is_missing, s3_errors
from churnguard.domain.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

KINDS = ("drift", "evaluation")


class S3ReportArchive:
    def __init__(self, bucket: str, s3_client: S3Client, prefix: str = "reports") -> None:
        self.bucket = bucket
        self.s3 = s3_client
        self.prefix = prefix.strip("/")

    def latest(self, kind: str) -> dict[str, Any] | None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        newest: tuple[Any, str] | None = None
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/{kind}/"
            ):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith(".json") and (newest is None or (obj["LastModified"], obj["Key"]) > newest):
                        newest = (obj["LastModified"], obj["Key"])
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list s3://{self.bucket}/{self.prefix}/{kind}/: {e}") from e
        return self._read(newest[1]) if newest else None

    def evaluation(self, version: str) -> dict[str, Any] | None:
        return self._read(f"{self.prefix}/evaluation/{version}/evaluation.json")

    def _read(self, key: str) -> dict[str, Any] | None:
        with s3_errors(f"cannot read s3://{self.bucket}/{key}"):
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError as e:
                if is_missing(e):
                    return None  # no such report (yet) is an answer, not a failure
                raise
        try:
            report = json.loads(body)
        except ValueError as e:
            raise StorageError(f"s3://{self.bucket}/{key} is not JSON: {e}") from e
        uri = f"s3://{self.bucket}/{key}"
        return {**report, "uri": uri, "html": uri[: -len(".json")] + ".html"}
