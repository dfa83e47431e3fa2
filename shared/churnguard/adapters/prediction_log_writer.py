"""Sends prediction log records to a Kinesis Data Firehose delivery stream (deployed) or straight
into the bucket in Firehose's layout (local runs), without ever slowing or failing a prediction.

Records are buffered in memory (no I/O on add) and sent with one ``PutRecordBatch`` when the
buffer holds ``max_records`` or its oldest record is ``max_age_s`` old. The client should have
tight timeouts and no retries (``firehose_client_config()``). Every failure is caught: the lost
records are counted through ``on_drop`` (the predict function publishes ``PredictionLogDropped``)
and the caller carries on.

    log = FirehosePredictionLog("churnguard-predictions", boto3.client("firehose", config=firehose_client_config()),
                                on_drop=lambda n: metrics.add_metric("PredictionLogDropped", "Count", n))
    log.add([record])   # buffered; sent when due
    log.flush()         # send now (shutdown, tests)

    # Local runs (the emulator, `churn serve`, the demo): no Firehose, the same objects it would write.
    log = BucketPredictionLog("churnguard-modelbucket", boto3.client("s3"))
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from churnguard.domain.prediction_log import PREFIX, partition_prefix, to_jsonl

if TYPE_CHECKING:
    from mypy_boto3_firehose import FirehoseClient
    from mypy_boto3_s3 import S3Client

log = logging.getLogger(__name__)

# Firehose limits: 500 records and 4 MiB per PutRecordBatch call, 1,000 KiB per record.
MAX_BATCH_RECORDS = 500
MAX_BATCH_BYTES = 4 * 1024 * 1024
MAX_RECORD_BYTES = 1000 * 1024


def firehose_client_config() -> Any:
    """Tight timeouts and a single attempt: a slow stream costs a prediction at most ~1.5 s, once."""
    from botocore.config import Config

    return Config(connect_timeout=0.5, read_timeout=1.0, retries={"max_attempts": 1, "mode": "standard"})


class BufferedPredictionLog:
    """The buffering, batching and loss counting every prediction log shares; ``_deliver`` sends a batch."""

    def __init__(
        self,
        on_drop: Callable[[int], None] | None = None,
        max_records: int = 100,
        max_age_s: float = 2.0,
        max_buffered: int = 5000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.on_drop = on_drop or (lambda n: None)
        self.max_records = max(1, min(max_records, MAX_BATCH_RECORDS))
        self.max_age_s = max_age_s
        self.max_buffered = max_buffered
        self.clock = clock
        self._buffer: list[bytes] = []
        self._oldest = 0.0
        self._lock = threading.Lock()
        self.sent = 0
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._buffer)

    def add(self, records: Sequence[Mapping[str, Any]]) -> None:
        """Buffer records, and send the buffer if it is due. Never raises."""
        try:
            lines = [to_jsonl([r]) for r in records]
        except (TypeError, ValueError) as e:
            log.warning("prediction log record not serialisable, dropped: %s", e)
            self._drop(len(records))
            return
        too_big = sum(len(x) > MAX_RECORD_BYTES for x in lines)
        if too_big:
            lines = [x for x in lines if len(x) <= MAX_RECORD_BYTES]
            self._drop(too_big)
        overflow = 0
        with self._lock:
            if not self._buffer:
                self._oldest = self.clock()
            self._buffer.extend(lines)
            if len(self._buffer) > self.max_buffered:
                # The stream has been failing for a while: keep the newest, count the rest.
                overflow = len(self._buffer) - self.max_buffered
                del self._buffer[:overflow]
        if overflow:
            self._drop(overflow)
        if self.due():
            self.flush()

    def due(self) -> bool:
        return bool(self._buffer) and (
            len(self._buffer) >= self.max_records or self.clock() - self._oldest >= self.max_age_s
        )

    def flush(self) -> int:
        """Send everything buffered; returns how many records Firehose accepted. Never raises."""
        with self._lock:
            pending, self._buffer = self._buffer, []
        accepted = 0
        for batch in _batches(pending):
            accepted += self._send(batch)
        return accepted

    def _deliver(self, batch: list[bytes]) -> int:
        """Send one batch; returns how many records were refused (raising loses the whole batch)."""
        raise NotImplementedError

    def _send(self, batch: list[bytes]) -> int:
        try:
            failed = self._deliver(batch)
        except Exception as e:  # noqa: BLE001 - any failure of the log must not reach the caller
            log.warning("prediction log: %d records lost: %s: %s", len(batch), type(e).__name__, e)
            self._drop(len(batch))
            return 0
        if failed:
            log.warning("prediction log: Firehose refused %d of %d records", failed, len(batch))
            self._drop(failed)
        self.sent += len(batch) - failed
        return len(batch) - failed

    def _drop(self, n: int) -> None:
        self.dropped += n
        try:
            self.on_drop(n)
        except Exception:  # noqa: BLE001 - a broken metric sink must not fail a prediction either
            log.exception("prediction log: on_drop failed")


class FirehosePredictionLog(BufferedPredictionLog):
    """The deployed log: batches go to the stream with PutRecordBatch; Firehose lands them in S3."""

    def __init__(self, stream_name: str, firehose_client: FirehoseClient, **buffering: Any) -> None:
        super().__init__(**buffering)
        self.stream_name = stream_name
        self.firehose = firehose_client

    def _deliver(self, batch: list[bytes]) -> int:
        resp = self.firehose.put_record_batch(DeliveryStreamName=self.stream_name, Records=[{"Data": d} for d in batch])
        return int(resp.get("FailedPutCount", 0))


class BucketPredictionLog(BufferedPredictionLog):
    """The same buffered log, delivered as Firehose's S3 destination would: one object per batch under
    ``predictions/dt=YYYY-MM-DD/`` (the UTC day of delivery, as ``!{timestamp:yyyy-MM-dd}`` is), so the
    drift check and the other readers find it unchanged. For local runs, where there is no Firehose
    (moto's ignores the prefix's timestamp expression)."""

    def __init__(self, bucket: str, s3_client: S3Client, prefix: str = PREFIX, **buffering: Any) -> None:
        super().__init__(**buffering)
        self.bucket, self.s3, self.prefix = bucket, s3_client, prefix

    def _deliver(self, batch: list[bytes]) -> int:
        now = datetime.now(UTC)
        key = (
            f"{partition_prefix(now, self.prefix)}churnguard-local-{now.strftime('%Y-%m-%d-%H-%M-%S')}-"
            f"{uuid.uuid4().hex[:12]}.jsonl"
        )
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=b"".join(batch), ContentType="application/x-ndjson")
        return 0


def _batches(lines: list[bytes]) -> list[list[bytes]]:
    out: list[list[bytes]] = []
    cur: list[bytes] = []
    size = 0
    for line in lines:
        if cur and (len(cur) >= MAX_BATCH_RECORDS or size + len(line) > MAX_BATCH_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(line)
        size += len(line)
    if cur:
        out.append(cur)
    return out
