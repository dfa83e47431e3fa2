"""Customers' latest feature vectors in DynamoDB (the FeatureStore port), keyed by the id's keyed hash.

One item per active customer: ``customer_key`` (HMAC-SHA256 of the id, domain/identity.py; the clear id
is never stored), ``features`` (the vector as JSON: exact floats, nulls kept), ``as_of`` (the refresh
that computed it) and ``definition_sha256``. A refresh upserts every active customer, then removes
the items an earlier refresh wrote (customers who churned or left the table), so a stale vector is
never served. The store is also an ``Eraser`` (``churn forget``).

    store = DynamoFeatureStore("features", boto3.client("dynamodb"), hash_key=b"secret")
    store.put_many([("C1", {"sessions_30d": 4.0})], as_of="2026-11-21T00:00:00Z", definition_sha256="ab..")
    store.get("C1")   # {"features": {...}, "as_of": "...", "definition_sha256": "..."} or None
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.customer_table import CustomerTable
from churnguard.adapters.dynamo_batch import write_batches
from churnguard.domain.errors import StorageError


class DynamoFeatureStore(CustomerTable):
    name = "features"  # as an Eraser
    contents = "customer features"

    def put_many(self, vectors: Iterable[tuple[str, Mapping[str, Any]]], as_of: str, definition_sha256: str) -> int:
        return self._upsert(
            {
                "customer_key": {"S": self.key_of(cid)},
                "features": {"S": json.dumps(features, separators=(",", ":"), allow_nan=False)},
                "as_of": {"S": as_of},
                "definition_sha256": {"S": definition_sha256},
            }
            for cid, features in vectors
        )

    def get(self, customer_id: str) -> dict[str, Any] | None:
        item = self._item(customer_id)
        if not item:
            return None
        return {
            "features": json.loads(item["features"]["S"]),
            "as_of": item["as_of"]["S"],
            "definition_sha256": item["definition_sha256"]["S"],
        }

    def remove_stale(self, as_of: str) -> int:
        def stale() -> Iterator[dict[str, Any]]:
            kwargs: dict[str, Any] = {
                "TableName": self.table,
                "ProjectionExpression": "customer_key",
                "FilterExpression": "as_of <> :now",
                "ExpressionAttributeValues": {":now": {"S": as_of}},
            }
            while True:
                page = self.client.scan(**kwargs)
                for item in page.get("Items", []):
                    yield {"DeleteRequest": {"Key": {"customer_key": item["customer_key"]}}}
                if "LastEvaluatedKey" not in page:
                    return
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

        try:
            return write_batches(self.client, self.table, stale(), "stale customer features", self.threads)
        except (ClientError, BotoCoreError) as e:  # the scan's own failures
            raise StorageError(f"cannot list customer features in {self.table}: {e}") from e

    def check(self) -> None:
        """As an Eraser: the table is reachable (checked before any store is erased from)."""
        try:
            self.client.describe_table(TableName=self.table)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"table {self.table} cannot be reached: {e}") from e

    def erase(self, customer_key: str) -> dict[str, Any]:
        try:
            out = self.client.delete_item(
                TableName=self.table, Key={"customer_key": {"S": customer_key}}, ReturnValues="ALL_OLD"
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot erase the customer's features from {self.table}: {e}") from e
        return {"removed": 1 if out.get("Attributes") else 0}
