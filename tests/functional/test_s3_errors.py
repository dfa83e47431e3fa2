"""S3's failures as the domain's, through the one translation (adapters/aws_errors.s3_errors) every S3
reader uses: a missing object or bucket is each caller's own error, an unreachable S3 a StorageError
naming what was being done. moto in process for S3; a closed port for the unreachable one."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config

from churnguard.adapters.batch_io import S3BatchIO
from churnguard.adapters.duckdb_engine import DuckDBFeatureEngine
from churnguard.adapters.model_store import S3ModelStore
from churnguard.adapters.report_archive import S3ReportArchive
from churnguard.adapters.s3_objects import S3ObjectStore
from churnguard.domain.bundle import MANIFEST_FILE
from churnguard.domain.errors import ArtifactIntegrityError, DataValidationError, ModelNotFoundError, StorageError


@pytest.fixture
def s3(aws):
    return boto3.client("s3")


@pytest.fixture
def unreachable():
    """An S3 client whose endpoint refuses connections: botocore's EndpointConnectionError, no retries."""
    return boto3.client(
        "s3",
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )


def _reads(s3, bucket: str, tmp_path):
    """Each S3 reader's read of ``s3://{bucket}/nope.csv``, and what it raises when that is missing."""
    uri = f"s3://{bucket}/nope.csv"
    return [
        (lambda: S3ObjectStore(s3).read(uri), DataValidationError, f"input object {uri} does not exist"),
        (lambda: S3BatchIO(s3).read_range(uri, 0, 10), DataValidationError, f"input object {uri} does not exist"),
        (lambda: S3BatchIO(s3).list_inputs(f"s3://{bucket}/nope/"), DataValidationError, "does not exist"),
        (
            lambda: DuckDBFeatureEngine(s3_client=s3)._download(uri, "csv", tmp_path, "source 'events'"),
            DataValidationError,
            f"source 'events': {uri} does not exist",
        ),
        (lambda: S3ModelStore(bucket, s3).get("v-missing", None), ModelNotFoundError, "no model bundle at"),
        (
            lambda: S3ModelStore(bucket, s3)._read("v-missing", "model.txt", 10),
            ArtifactIntegrityError,
            "model.txt of v-missing is missing from",
        ),
    ]


def test_a_missing_object_is_each_callers_own_error(aws, s3, tmp_path):
    for read, error, message in _reads(s3, aws["MODEL_BUCKET"], tmp_path):
        with pytest.raises(error, match=message):
            read()
    assert S3ReportArchive(aws["MODEL_BUCKET"], s3).evaluation("v-missing") is None  # no report yet: None


def test_a_missing_bucket_reads_as_missing_too(aws, s3, tmp_path):
    """NoSuchBucket is in MISSING_OBJECT for every reader (the model store used to leave it out)."""
    for read, error, _message in _reads(s3, "no-such-bucket-here", tmp_path):
        with pytest.raises(error):
            read()
    with pytest.raises(DataValidationError, match="no such bucket"):
        S3BatchIO(s3).list_inputs("s3://no-such-bucket-here/nope/")


def test_an_unreachable_s3_is_a_storage_error_naming_the_operation(unreachable, tmp_path):
    uri = "s3://bucket/data.csv"
    for read, doing in [
        (lambda: S3ObjectStore(unreachable).read(uri), f"cannot read {uri}"),
        (lambda: S3BatchIO(unreachable).read_range(uri, 0, 10), f"cannot read {uri}"),
        (lambda: S3BatchIO(unreachable).list_inputs(uri), f"cannot list {uri}"),
        (lambda: DuckDBFeatureEngine(s3_client=unreachable)._download(uri, "csv", tmp_path, "x"), f"cannot read {uri}"),
        (lambda: S3ModelStore("bucket", unreachable).get("v1", None), f"cannot read {MANIFEST_FILE} of v1"),
        (lambda: S3ReportArchive("bucket", unreachable).evaluation("v1"), "cannot read s3://bucket/reports/"),
    ]:
        with pytest.raises(StorageError, match=doing) as caught:
            read()
        assert "Could not connect" in str(caught.value)  # the cause is kept in the message


def test_a_range_past_the_end_is_empty_not_an_error(aws, s3):
    s3.put_object(Bucket=aws["MODEL_BUCKET"], Key="small.csv", Body=b"a,b\n1,2\n")
    assert S3BatchIO(s3).read_range(f"s3://{aws['MODEL_BUCKET']}/small.csv", 100, 200) == b""
