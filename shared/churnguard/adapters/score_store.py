"""Customers' latest scores in DynamoDB, keyed by the customer id's keyed hash.

One item per customer (``customer_key`` = HMAC-SHA256 of the id, see churnguard.domain.identity): a
rescore overwrites it, so a retried chunk cannot leave duplicates. The clear id is never
stored. Writes go out as BatchWriteItem calls of 25 items from a few threads; unprocessed
items are retried with backoff and a write that still fails raises StorageError.

    store = DynamoScoreStore("scores", boto3.client("dynamodb"), hash_key=b"secret")
    store.put_many(result.score_items(), job_id="job-1", scored_at="2026-11-21T06:00:00Z")
    store.get("7590-VHVEG")   # -> {"churn_probability": 0.61, "reasons": [...], ...} or None
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code
from churnguard.domain.errors import StorageError
from churnguard.domain.identity import customer_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH = 25  # BatchWriteItem's limit
MAX_ATTEMPTS = 8


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

        def batches() -> Iterator[list[dict[str, Any]]]:
            it = items()
            while batch := list(islice(it, BATCH)):
                yield batch

        written = 0
        with ThreadPoolExecutor(max_workers=self.threads) as pool:
            for n in pool.map(self._write, batches()):
                written += n
        return written

    def _write(self, requests: list[Any]) -> int:
        pending: list[Any] = requests
        for attempt in range(MAX_ATTEMPTS):
            try:
                out: Any = self.client.batch_write_item(RequestItems={self.table: pending})
            except (ClientError, BotoCoreError) as e:
                code = error_code(e)
                if code not in (
                    "ProvisionedThroughputExceededException",
                    "ThrottlingException",
                    "RequestLimitExceeded",
                ):
                    raise StorageError(f"cannot write customer scores to {self.table}: {e}") from e
                out = {"UnprocessedItems": {self.table: pending}}
            pending = out.get("UnprocessedItems", {}).get(self.table, [])
            if not pending:
                return len(requests)
            time.sleep(min(0.05 * 2**attempt, 2.0))
        raise StorageError(
            f"{len(pending)} customer scores stayed unprocessed by {self.table} after {MAX_ATTEMPTS} attempts"
        )

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
