"""Outcomes (ground truth) in DynamoDB: one item per customer key and observed date.

Table keys: ``customer_key`` (hash, the keyed hash of the id) and ``observed_date`` (range,
``YYYY-MM-DD``). Every write is conditional on the item not existing, so a repeated outcome is
stored once; the same customer and date with the opposite value raises OutcomeConflictError.

    store = DynamoOutcomeStore(table, boto3.client("dynamodb"))
    store.record(outcome, source="api")          # True: stored, False: already there
    for key, churned, day in store.outcomes(since=date(2026, 1, 1)):
        ...
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code
from churnguard.domain.errors import OutcomeConflictError, StorageError
from churnguard.domain.outcomes import Outcome

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class DynamoOutcomeStore:
    def __init__(self, table: str, dynamodb_client: DynamoDBClient) -> None:
        self.table = table
        self.ddb = dynamodb_client

    def record(self, outcome: Outcome, source: str) -> bool:
        """Store an outcome once. True if written now, False if the same outcome was already stored."""
        key = {"customer_key": {"S": outcome.customer_key}, "observed_date": {"S": outcome.observed_date.isoformat()}}
        item: dict[str, Any] = {
            **key,
            "churned": {"BOOL": outcome.churned},
            "source": {"S": source[:1024]},
            "received_at": {"S": _now()},
        }
        try:
            self.ddb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(customer_key)")
            return True
        except ClientError as e:
            if error_code(e) != "ConditionalCheckFailedException":
                raise StorageError(f"cannot store the outcome: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot store the outcome: {e}") from e
        existing = self._get(key)
        if existing is not None and existing["churned"]["BOOL"] != outcome.churned:
            stored = "churned" if existing["churned"]["BOOL"] else "did not churn"
            raise OutcomeConflictError(
                f"an outcome for this customer on {outcome.observed_date.isoformat()} is already stored "
                f"({stored}, from {existing.get('source', {}).get('S', 'unknown')}); it was not changed"
            )
        return False

    def record_many(self, outcomes: Iterable[Outcome], source: str) -> dict[str, Any]:
        """Store each outcome once: ``{"stored": n, "duplicates": n, "conflicts": [{"index", "problem"}]}``."""
        stored = duplicates = 0
        conflicts: list[dict[str, Any]] = []
        for i, o in enumerate(outcomes):
            try:
                if self.record(o, source):
                    stored += 1
                else:
                    duplicates += 1
            except OutcomeConflictError as e:
                conflicts.append({"index": i, "problem": str(e)})
        return {"stored": stored, "duplicates": duplicates, "conflicts": conflicts}

    def _get(self, key: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self.ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read the outcome: {e}") from e

    def outcomes(self, since: date | None = None, until: date | None = None) -> Iterator[Outcome]:
        """Every stored outcome with ``since <= observed_date <= until`` (either bound optional)."""
        kwargs: dict[str, Any] = {"TableName": self.table}
        conds, values = [], {}
        if since is not None:
            conds.append("observed_date >= :since")
            values[":since"] = {"S": since.isoformat()}
        if until is not None:
            conds.append("observed_date <= :until")
            values[":until"] = {"S": until.isoformat()}
        if conds:
            kwargs["FilterExpression"] = " AND ".join(conds)
            kwargs["ExpressionAttributeValues"] = values
        try:
            paginator = self.ddb.get_paginator("scan")
            for page in paginator.paginate(**kwargs):
                for item in page.get("Items", []):
                    yield Outcome(
                        item["customer_key"]["S"],
                        item["churned"]["BOOL"],
                        date.fromisoformat(item["observed_date"]["S"]),
                    )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read outcomes: {e}") from e
