"""BatchWriteItem for many items: 25 a call from a few threads, unprocessed items retried with backoff.

Shared by the stores that write one item per customer (scores, features); a write that still fails
raises StorageError naming the table.

    written = write_batches(client, "scores", ({"PutRequest": {"Item": item}} for item in items), "customer scores")
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code
from churnguard.domain.errors import StorageError

BATCH = 25  # BatchWriteItem's limit
MAX_ATTEMPTS = 8
THROTTLED = ("ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded")


def write_batches(client: Any, table: str, requests: Iterable[dict[str, Any]], what: str, threads: int = 8) -> int:
    """Send put or delete requests; returns how many were written."""

    def batches() -> Iterator[list[dict[str, Any]]]:
        it = iter(requests)
        while batch := list(islice(it, BATCH)):
            yield batch

    def write(batch: list[dict[str, Any]]) -> int:
        pending: list[Any] = batch
        for attempt in range(MAX_ATTEMPTS):
            try:
                out: Any = client.batch_write_item(RequestItems={table: pending})
            except (ClientError, BotoCoreError) as e:
                if error_code(e) not in THROTTLED:
                    raise StorageError(f"cannot write {what} to {table}: {e}") from e
                out = {"UnprocessedItems": {table: pending}}
            pending = out.get("UnprocessedItems", {}).get(table, [])
            if not pending:
                return len(batch)
            time.sleep(min(0.05 * 2**attempt, 2.0))
        raise StorageError(f"{len(pending)} {what} stayed unprocessed by {table} after {MAX_ATTEMPTS} attempts")

    written = 0
    with ThreadPoolExecutor(max_workers=threads) as pool:
        for n in pool.map(write, batches()):
            written += n
    return written
