"""Batch job records in DynamoDB (``pk = JOB#<job id>``).

The same table holds Powertools' idempotency records for chunks (their ``pk`` is the function
name plus a hash of the chunk), so a job's state and its chunks' state live side by side.

    jobs = DynamoJobStore("batch-jobs", boto3.client("dynamodb"))
    jobs.put("job-1", {"status": "RUNNING", "chunks": 12})
    jobs.get("job-1")["status"]
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.dynamo_items import from_item, to_item
from churnguard.domain.errors import StorageError
from churnguard.domain.model_registry import now_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class DynamoJobStore:
    def __init__(self, table: str, dynamodb_client: DynamoDBClient) -> None:
        self.table = table
        self.client = dynamodb_client

    def put(self, job_id: str, record: dict[str, Any]) -> dict[str, Any]:
        """Write the whole record of a job (a later state replaces an earlier one)."""
        item = {"job_id": job_id, **record, "updated_at": now_iso()}
        try:
            self.client.put_item(TableName=self.table, Item=to_item({"pk": f"JOB#{job_id}", **item}))
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot write job {job_id} to {self.table}: {e}") from e
        return item

    def update(self, job_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        current = self.get(job_id) or {}
        current.pop("updated_at", None)
        current.pop("job_id", None)
        return self.put(job_id, {**current, **changes})

    def get(self, job_id: str) -> dict[str, Any] | None:
        try:
            out = self.client.get_item(TableName=self.table, Key={"pk": {"S": f"JOB#{job_id}"}}, ConsistentRead=True)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read job {job_id} from {self.table}: {e}") from e
        item = out.get("Item")
        if not item:
            return None
        record = from_item(item)
        record.pop("pk", None)
        return record

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """Job records, newest first (by start). A Scan: the table holds one item per job plus chunks'
        idempotency records, which expire, so it stays small; the console reads it, never a hot path."""
        jobs: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "begins_with(pk, :job)",
            "ExpressionAttributeValues": {":job": {"S": "JOB#"}},
        }
        try:
            while True:
                page = self.client.scan(**kwargs)
                for item in page.get("Items", []):
                    record = from_item(item)
                    record.pop("pk", None)
                    jobs.append(record)
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list jobs in {self.table}: {e}") from e
        jobs.sort(key=lambda j: str(j.get("started_at") or j.get("updated_at") or ""), reverse=True)
        return jobs[:limit]
