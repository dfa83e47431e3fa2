"""Reads the prediction log back from S3 (``predictions/dt=YYYY-MM-DD/*``), for drift checks,
evaluation and per-variant comparison.

    reader = S3PredictionLogReader(bucket, s3_client)
    for rec in reader.records(date(2026, 5, 1), date(2026, 5, 7)):
        ...

Firehose writes objects without an extension (and may gzip them when configured to); both
plain and gzip objects are read. A line that is not JSON is skipped and counted in
``reader.skipped`` rather than failing the whole read.
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Iterator
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import StorageError
from churnguard.domain.prediction_log import PREFIX, partition_prefix

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)


class S3PredictionLogReader:
    def __init__(self, bucket: str, s3_client: S3Client, prefix: str = PREFIX) -> None:
        self.bucket = bucket
        self.s3 = s3_client
        self.prefix = prefix
        self.skipped = 0

    def keys(self, start: date, end: date) -> list[str]:
        """Object keys of every day from ``start`` to ``end`` inclusive.

        One listing from the first day's partition on, stopped after the last (keys sort by date), rather
        than one per day: a six-month training window is then a handful of requests, not 180."""
        if end < start:
            raise ValueError(f"end {end} is before start {start}")
        first = partition_prefix(start, self.prefix)
        past_end = partition_prefix(end + timedelta(days=1), self.prefix)
        keys: list[str] = []
        try:
            paginator = self.s3.get_paginator("list_objects_v2")
            # "…/dt=2026-05-01" sorts before every key of that day and after every key of the day before.
            pages = paginator.paginate(Bucket=self.bucket, Prefix=f"{self.prefix}/dt=", StartAfter=first.rstrip("/"))
            for page in pages:
                batch = [o["Key"] for o in page.get("Contents", [])]
                keys.extend(k for k in batch if k < past_end)
                if batch and batch[-1] >= past_end:
                    break
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list the prediction log in s3://{self.bucket}/{self.prefix}/: {e}") from e
        return sorted(keys)

    def records(self, start: date, end: date) -> Iterator[dict[str, Any]]:
        import json

        for key in self.keys(start, end):
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except (ClientError, BotoCoreError) as e:
                raise StorageError(f"cannot read s3://{self.bucket}/{key}: {e}") from e
            if body[:2] == b"\x1f\x8b":
                body = gzip.decompress(body)
            for line in body.splitlines():
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    self.skipped += 1
            if self.skipped:
                log.warning("prediction log: %d unreadable lines skipped so far", self.skipped)
