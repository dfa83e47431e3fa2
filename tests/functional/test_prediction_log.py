"""The Firehose writer under moto, and the S3 layout through the reader.

moto's Firehose delivers to S3 but ignores the `!{timestamp:...}` prefix expression (it writes
`<prefix>/YYYY/MM/DD/HH/...`), so the writer is checked through moto's Firehose API and the
delivered bytes, and the agreed `predictions/dt=YYYY-MM-DD/` layout through the reader.
"""

import gzip
import socket
from datetime import UTC, date, datetime

import boto3
import pytest

from churnguard.adapters.prediction_log_reader import S3PredictionLogReader
from churnguard.adapters.prediction_log_writer import FirehosePredictionLog, firehose_client_config
from churnguard.domain.prediction_log import parse_jsonl, prediction_record, to_jsonl

PRED = {"churn_probability": 0.25, "will_churn": False, "model_version": "v1"}


def rec(i, day=1):
    return prediction_record(
        features={"tenure": i},
        prediction=PRED,
        variant="champion",
        customer_key=f"{i:064x}",
        request_id=f"r{i}",
        ts=datetime(2026, 5, day, 12, tzinfo=UTC),
    )


@pytest.fixture
def stream(aws):
    name = "churnguard-predictions"
    boto3.client("firehose").create_delivery_stream(
        DeliveryStreamName=name,
        DeliveryStreamType="DirectPut",
        ExtendedS3DestinationConfiguration={
            "RoleARN": "arn:aws:iam::123456789012:role/firehose",
            "BucketARN": f"arn:aws:s3:::{aws['MODEL_BUCKET']}",
            "Prefix": "predictions/",
        },
    )
    return name


def delivered(bucket):
    s3 = boto3.client("s3")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="predictions/").get("Contents", [])]
    return [r for k in keys for r in parse_jsonl(s3.get_object(Bucket=bucket, Key=k)["Body"].read())]


def test_records_buffer_until_due_then_land_in_s3_as_json_lines(aws, stream):
    clock = [0.0]
    writer = FirehosePredictionLog(
        stream, boto3.client("firehose"), max_records=5, max_age_s=10, clock=lambda: clock[0]
    )
    writer.add([rec(i) for i in range(3)])
    assert len(writer) == 3 and delivered(aws["MODEL_BUCKET"]) == []  # nothing sent on the request path yet
    writer.add([rec(3), rec(4)])  # the fifth record makes the batch due
    assert len(writer) == 0
    got = delivered(aws["MODEL_BUCKET"])
    assert [r["request_id"] for r in got] == [f"r{i}" for i in range(5)]
    assert got[0] == rec(0)

    writer.add([rec(5)])
    clock[0] = 10.0  # the oldest buffered record is now max_age_s old
    writer.add([rec(6)])
    assert len(delivered(aws["MODEL_BUCKET"])) == 7 and writer.dropped == 0


def test_a_missing_stream_loses_records_counted_never_raised(aws):
    drops = []
    writer = FirehosePredictionLog("no-such-stream", boto3.client("firehose"), on_drop=drops.append, max_records=2)
    writer.add([rec(0), rec(1)])
    assert sum(drops) == 2 and writer.dropped == 2 and len(writer) == 0


def test_an_unreachable_endpoint_is_a_counted_loss(aws):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = boto3.client("firehose", endpoint_url=f"http://127.0.0.1:{port}", config=firehose_client_config())
    drops = []
    writer = FirehosePredictionLog("s", client, on_drop=drops.append)
    writer.add([rec(0)])
    assert writer.flush() == 0 and drops == [1]


def test_a_failing_drop_counter_and_unserialisable_records_do_not_raise(aws):
    def broken(n):
        raise RuntimeError("metrics down")

    writer = FirehosePredictionLog("no-such-stream", boto3.client("firehose"), on_drop=broken, max_records=1)
    writer.add([{"ts": float("nan")}])
    writer.add([rec(0)])
    assert writer.dropped == 2


def test_a_full_buffer_keeps_the_newest_and_counts_the_rest(aws):
    drops = []
    writer = FirehosePredictionLog(
        "s",
        boto3.client("firehose"),
        on_drop=drops.append,
        max_records=100,
        max_age_s=1e9,
        max_buffered=3,
        clock=lambda: 0.0,
    )
    writer.add([rec(i) for i in range(5)])
    assert len(writer) == 3 and sum(drops) == 2


def test_reader_reads_the_agreed_layout_day_by_day(aws):
    s3, bucket = boto3.client("s3"), aws["MODEL_BUCKET"]
    s3.put_object(Bucket=bucket, Key="predictions/dt=2026-05-01/a", Body=to_jsonl([rec(0), rec(1)]))
    s3.put_object(Bucket=bucket, Key="predictions/dt=2026-05-02/b.gz", Body=gzip.compress(to_jsonl([rec(2, day=2)])))
    s3.put_object(Bucket=bucket, Key="predictions/dt=2026-05-03/c", Body=to_jsonl([rec(3, day=3)]) + b"{torn\n")
    reader = S3PredictionLogReader(bucket, s3)
    assert [r["request_id"] for r in reader.records(date(2026, 5, 1), date(2026, 5, 2))] == ["r0", "r1", "r2"]
    assert [r["request_id"] for r in reader.records(date(2026, 5, 3), date(2026, 5, 9))] == ["r3"]
    assert reader.skipped == 1
    with pytest.raises(ValueError):
        reader.keys(date(2026, 5, 2), date(2026, 5, 1))


def test_the_local_log_writes_the_layout_firehose_gives_and_the_reader_reads_it(aws):
    """BucketPredictionLog (the emulator's PREDICTION_LOG_BUCKET): the same buffering, objects under
    predictions/dt=<UTC day of delivery>/, read back by the drift check's reader unchanged."""
    from churnguard.adapters.prediction_log_writer import BucketPredictionLog

    clock = [0.0]
    log = BucketPredictionLog(aws["MODEL_BUCKET"], boto3.client("s3"), max_records=4, clock=lambda: clock[0])
    log.add([rec(i) for i in range(3)])
    assert delivered(aws["MODEL_BUCKET"]) == []  # buffered, as Firehose's writer
    log.add([rec(3)])  # the fourth makes the batch due
    log.add([rec(4)])
    assert log.flush() == 1 and log.sent == 5 and log.dropped == 0
    today = datetime.now(UTC).date()
    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=aws["MODEL_BUCKET"])["Contents"]]
    assert len(keys) == 2 and all(k.startswith(f"predictions/dt={today.isoformat()}/") for k in keys)
    read = list(S3PredictionLogReader(aws["MODEL_BUCKET"], boto3.client("s3")).records(today, today))
    assert sorted(r["request_id"] for r in read) == [f"r{i}" for i in range(5)]


def test_the_local_log_counts_what_it_cannot_write(aws):
    from churnguard.adapters.prediction_log_writer import BucketPredictionLog

    drops = []
    log = BucketPredictionLog("no-such-bucket", boto3.client("s3"), on_drop=drops.append, max_records=2)
    log.add([rec(1), rec(2)])  # due: the write fails, the prediction path never sees it
    assert sum(drops) == 2 and log.dropped == 2 and len(log) == 0
