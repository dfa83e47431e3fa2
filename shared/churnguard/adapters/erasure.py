"""Erasure adapters (churnguard.domain.privacy): each removes one customer's records from one store.

All take boto3 clients; ClientError becomes StorageError. Deleting is idempotent, so a retried
or repeated erasure is harmless.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import StorageError


def _check_table(ddb: Any, table: str) -> None:
    try:
        ddb.describe_table(TableName=table)
    except (ClientError, BotoCoreError) as e:
        raise StorageError(f"table {table} cannot be reached: {e}") from e


class OutcomeEraser:
    """Every outcome item of the customer (OutcomesTable: hash customer_key, range observed_date)."""

    name = "outcomes"

    def __init__(self, table: str, dynamodb_client: Any) -> None:
        self.table, self.ddb = table, dynamodb_client

    def check(self) -> None:
        _check_table(self.ddb, self.table)

    def erase(self, customer_key: str) -> dict[str, Any]:
        removed = 0
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "customer_key = :k",
            "ExpressionAttributeValues": {":k": {"S": customer_key}},
            "ProjectionExpression": "customer_key, observed_date",
            "ConsistentRead": True,
        }
        try:
            while True:
                page = self.ddb.query(**kwargs)
                for item in page.get("Items", []):
                    self.ddb.delete_item(TableName=self.table, Key=item)
                    removed += 1
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot erase outcomes from {self.table} ({removed} removed so far): {e}") from e
        return {"removed": removed}


class ScoreEraser:
    """The stored score of the customer (ScoresTable: hash customer_key)."""

    name = "scores"

    def __init__(self, table: str, dynamodb_client: Any) -> None:
        self.table, self.ddb = table, dynamodb_client

    def check(self) -> None:
        _check_table(self.ddb, self.table)

    def erase(self, customer_key: str) -> dict[str, Any]:
        try:
            out = self.ddb.delete_item(
                TableName=self.table, Key={"customer_key": {"S": customer_key}}, ReturnValues="ALL_OLD"
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot erase the stored score from {self.table}: {e}") from e
        return {"removed": 1 if out.get("Attributes") else 0}


class PredictionLogEraser:
    """Prediction-log records of the customer under ``{prefix}/`` (JSON lines with ``customer_key``).

    Objects that hold none are left alone; each that does is rewritten without those lines, then
    its other versions are deleted so the records do not survive as noncurrent versions. An object
    that only held this customer's records is deleted with all its versions.
    """

    name = "prediction_log"

    def __init__(self, bucket: str, s3_client: Any, prefix: str = "predictions") -> None:
        self.bucket, self.s3, self.prefix = bucket, s3_client, prefix.strip("/") + "/"

    def check(self) -> None:
        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"bucket {self.bucket} cannot be reached: {e}") from e

    def erase(self, customer_key: str) -> dict[str, Any]:
        needle = json.dumps(customer_key).encode()
        removed, objects, scanned = 0, [], 0
        try:
            for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix):
                for obj in page.get("Contents", []):
                    scanned += 1
                    key = obj["Key"]
                    body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    if needle not in body:
                        continue
                    kept, dropped = [], 0
                    for line in body.splitlines(keepends=True):
                        if line.strip() and _key_of(line) == customer_key:
                            dropped += 1
                        else:
                            kept.append(line)
                    if not dropped:
                        continue
                    self._replace(key, b"".join(kept))
                    removed += dropped
                    objects.append(key)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot erase prediction-log records in s3://{self.bucket}/{self.prefix}: {e}") from e
        return {"removed": removed, "objects_rewritten": objects, "objects_scanned": scanned}

    def _replace(self, key: str, body: bytes) -> None:
        keep = None
        if body.strip():
            keep = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body).get("VersionId")
            if keep is None:
                return  # unversioned bucket: the overwrite is the erasure
        else:
            self.s3.delete_object(Bucket=self.bucket, Key=key)
        listing = self.s3.list_object_versions(Bucket=self.bucket, Prefix=key)
        for v in listing.get("Versions", []) + listing.get("DeleteMarkers", []):
            if v["Key"] == key and v["VersionId"] != keep:
                self.s3.delete_object(Bucket=self.bucket, Key=key, VersionId=v["VersionId"])


def _key_of(line: bytes) -> str | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record.get("customer_key") if isinstance(record, dict) else None
