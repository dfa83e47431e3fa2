"""The watch after the latest promotion (domain/watch.py), as one item in the registry table.

Key ``pk`` = ``MODEL#{model}`` (as the registry's), ``sk`` = ``WATCH#champion``: beside the champion alias,
outside the registry's ``VERSION#`` items. A new promotion replaces the item; ending a watch is conditioned
on it still being the same, unended watch, so two alarm deliveries roll back once.

    store = DynamoWatchStore(table, boto3.client("dynamodb"))
    store.start(watch); store.current(); store.end(watch, "rolled_back", "why", at)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code
from churnguard.adapters.dynamo_items import from_item, to_item
from churnguard.domain.errors import StorageError
from churnguard.domain.watch import Watch

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoWatchStore:
    def __init__(self, table: str, dynamodb_client: DynamoDBClient, model_name: str = "churn") -> None:
        self.table = table
        self.ddb = dynamodb_client
        self.key = {"pk": f"MODEL#{model_name}", "sk": "WATCH#champion"}

    def start(self, watch: Watch) -> None:
        try:
            # Unset fields are left out, not stored as NULL: ending a watch is conditioned on "ended" not existing.
            fields = {k: v for k, v in watch.to_dict().items() if v is not None}
            self.ddb.put_item(TableName=self.table, Item=to_item({**self.key, **fields}))
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot record the watch of {watch.version}: {e}") from e

    def current(self) -> Watch | None:
        try:
            resp = self.ddb.get_item(TableName=self.table, Key=to_item(self.key), ConsistentRead=True)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read the watch: {e}") from e
        return Watch.from_dict(from_item(resp["Item"])) if "Item" in resp else None

    def end(self, watch: Watch, outcome: str, detail: str, at: str) -> bool:
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=to_item(self.key),
                UpdateExpression="SET #e = :o, ended_at = :at, detail = :d",
                ConditionExpression="#v = :v AND #r = :r AND attribute_not_exists(#e)",
                ExpressionAttributeNames={"#e": "ended", "#v": "version", "#r": "revision"},
                ExpressionAttributeValues=to_item(
                    {":o": outcome, ":at": at, ":d": detail[:2000], ":v": watch.version, ":r": watch.revision}
                ),
            )
        except ClientError as e:
            if error_code(e) == "ConditionalCheckFailedException":
                return False
            raise StorageError(f"cannot end the watch of {watch.version}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot end the watch of {watch.version}: {e}") from e
        return True
