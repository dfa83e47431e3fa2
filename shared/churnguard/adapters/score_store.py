"""Customers' latest scores in DynamoDB, keyed by the customer id's keyed hash.

One item per customer (``customer_key`` = HMAC-SHA256 of the id, see churnguard.domain.identity): a
rescore overwrites it, so a retried chunk cannot leave duplicates. The clear id is never
stored. Writes go out through adapters/dynamo_batch.py (25 items a call from a few threads,
unprocessed items retried with backoff; a write that still fails raises StorageError).

    store = DynamoScoreStore("scores", boto3.client("dynamodb"), hash_key=b"secret")
    store.put_many(result.score_items(), job_id="job-1", scored_at="2026-11-21T06:00:00Z")
    store.get("7590-VHVEG")   # -> {"churn_probability": 0.61, "reasons": [...], ...} or None
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.dynamo_batch import write_batches
from churnguard.domain.errors import StorageError
from churnguard.domain.identity import customer_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoScoreStore:
    def __init__(self, table: str, dynamodb_client: DynamoDBClient, hash_key: bytes, threads: int = 8) -> None:
        if not hash_key:
            raise ValueError("a customer-id hash key is required")
        self.table = table
        self.client = dynamodb_client
        self.hash_key = hash_key
        self.threads = threads

    def key_of(self, customer_id: str) -> str:
        return customer_key(customer_id, self.hash_key)

    # ----- writes -----------------------------------------------------------------------
    def put_many(
        self, rows: Iterable[tuple[str, float, bool, str, str]], job_id: str, scored_at: str, model_version: str
    ) -> int:
        """Upsert (id, probability, will_churn, risk, reasons JSON) rows; returns how many were written."""
        common = {"job_id": {"S": job_id}, "scored_at": {"S": scored_at}, "model_version": {"S": model_version}}
        secret = self.hash_key

        def items() -> Iterator[dict[str, Any]]:
            for cid, p, churn, risk, reasons in rows:
                item = {
                    "customer_key": {"S": customer_key(cid, secret)},
                    "churn_probability": {"N": repr(p)},
                    "will_churn": {"BOOL": churn},
                    "risk_level": {"S": risk},
                    **common,
                }
                if reasons:
                    item["reasons"] = {"S": reasons}
                yield {"PutRequest": {"Item": item}}

        return write_batches(self.client, self.table, items(), "customer scores", self.threads)

    # ----- reads ------------------------------------------------------------------------
    def get(self, customer_id: str) -> dict[str, Any] | None:
        """The latest stored score of a customer, or None when the customer was never scored."""
        try:
            out = self.client.get_item(TableName=self.table, Key={"customer_key": {"S": self.key_of(customer_id)}})
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read customer scores from {self.table}: {e}") from e
        item = out.get("Item")
        if not item:
            return None
        return {
            "churn_probability": float(item["churn_probability"]["N"]),
            "will_churn": bool(item["will_churn"]["BOOL"]),
            "risk_level": item["risk_level"]["S"],
            "reasons": json.loads(item["reasons"]["S"]) if "reasons" in item else [],
            "reasons_computed": "reasons" in item,
            "model_version": item["model_version"]["S"],
            "scored_at": item["scored_at"]["S"],
            "job_id": item["job_id"]["S"],
        }
