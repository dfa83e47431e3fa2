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
from typing import Any

from churnguard.adapters.customer_table import CustomerTable


class DynamoScoreStore(CustomerTable):
    contents = "customer scores"

    # ----- writes -----------------------------------------------------------------------
    def put_many(
        self, rows: Iterable[tuple[str, float, bool, str, str]], job_id: str, scored_at: str, model_version: str
    ) -> int:
        """Upsert (id, probability, will_churn, risk, reasons JSON) rows; returns how many were written."""
        common = {"job_id": {"S": job_id}, "scored_at": {"S": scored_at}, "model_version": {"S": model_version}}

        def items() -> Iterator[dict[str, Any]]:
            for cid, p, churn, risk, reasons in rows:
                item = {
                    "customer_key": {"S": self.key_of(cid)},
                    "churn_probability": {"N": repr(p)},
                    "will_churn": {"BOOL": churn},
                    "risk_level": {"S": risk},
                    **common,
                }
                if reasons:
                    item["reasons"] = {"S": reasons}
                yield item

        return self._upsert(items())

    # ----- reads ------------------------------------------------------------------------
    def get(self, customer_id: str) -> dict[str, Any] | None:
        """The latest stored score of a customer, or None when the customer was never scored."""
        item = self._item(customer_id)
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
