"""A DynamoDB table with one item per customer, keyed by the customer id's keyed hash: what the score
store and the feature store share (the key, the read of one item, the batched upsert).

``customer_key`` is HMAC-SHA256 of the id (domain/identity.py); the clear id is never stored.

    class DynamoScoreStore(CustomerTable):
        contents = "customer scores"       # names the items in errors and write reports
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.dynamo_batch import write_batches
from churnguard.domain.errors import StorageError
from churnguard.domain.identity import customer_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class CustomerTable:
    contents: ClassVar[str]  # what the items are, plural ("customer scores"): said in errors

    def __init__(self, table: str, dynamodb_client: DynamoDBClient, hash_key: bytes, threads: int = 8) -> None:
        if not hash_key:
            raise ValueError("a customer-id hash key is required")
        self.table = table
        self.client = dynamodb_client
        self.hash_key = hash_key
        self.threads = threads

    def key_of(self, customer_id: str) -> str:
        return customer_key(customer_id, self.hash_key)

    def _item(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's item as DynamoDB holds it, or None; StorageError when the table does not answer."""
        try:
            out = self.client.get_item(TableName=self.table, Key={"customer_key": {"S": self.key_of(customer_id)}})
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read {self.contents} from {self.table}: {e}") from e
        return out.get("Item") or None

    def _upsert(self, items: Iterable[dict[str, Any]]) -> int:
        """Write whole items (each with its ``customer_key``), overwriting; returns how many were written."""
        return write_batches(
            self.client, self.table, ({"PutRequest": {"Item": item}} for item in items), self.contents, self.threads
        )
