"""Sizes before contents: a model file that is not what the manifest says, or is declared too big,
is refused before it is downloaded, cleanly and counted, never after filling the function's memory.

S3 is moto's server in a process of its own, so tracemalloc here measures the reader alone.
"""

from __future__ import annotations

import json
import time
import tracemalloc

import boto3
import pytest

from churnguard.adapters.model_store import S3ModelStore
from churnguard.adapters.registry import DynamoRegistry
from churnguard.domain.bundle import MAX_FILE_BYTES, MODEL_FILE, sha256_hex
from churnguard.domain.errors import ArtifactIntegrityError, ModelUnavailableError
from churnguard.domain.model_registry import ModelVersion
from churnguard.local.template import create_resources, load_template
from churnguard.services.champion import ChampionProvider
from tests.conftest import ROOT
from tests.functional.aws_process import moto_server_process

BIG = 48 << 20  # a planted model file: 48 MiB


@pytest.fixture(scope="module")
def aws_process():
    """moto's server in its own process, with the template's buckets and tables."""
    with moto_server_process() as endpoint:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        s3, ddb = session.client("s3", endpoint_url=endpoint), session.client("dynamodb", endpoint_url=endpoint)
        yield s3, ddb, create_resources(load_template(ROOT / "template.yaml"), s3, ddb)


@pytest.fixture
def stored(aws_process, trained):
    """A registered version, its bundle in S3, and the store and registry over them."""
    s3, ddb, env = aws_process
    store = S3ModelStore(env["MODEL_BUCKET"], s3)
    registry = DynamoRegistry(env["REGISTRY_TABLE"], ddb)
    version = f"v-limit-{time.monotonic_ns()}"
    bundle = trained[0]
    from churnguard.domain.bundle import ModelBundle

    out = store.put(ModelBundle(version, bundle.model_text, {**bundle.metadata, "version": version}))
    registry.register(
        ModelVersion(
            version=version, status="candidate", location=out["location"], manifest_sha256=out["manifest_sha256"]
        )
    )
    return store, registry, version


def _peak_while(call) -> tuple[int, BaseException | None]:
    tracemalloc.start()
    try:
        call()
        error = None
    except Exception as e:  # noqa: BLE001 - returned to the test
        error = e
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, error


def test_a_planted_model_file_is_refused_before_it_is_read(stored):
    store, registry, version = stored
    planted = b"tree\n" + b"x" * (BIG - 5)
    store.s3.put_object(Bucket=store.bucket, Key=f"models/{version}/{MODEL_FILE}", Body=planted)
    del planted
    refused = []
    provider = ChampionProvider(registry, store, on_integrity_failure=lambda v, message: refused.append(message))
    peak, error = _peak_while(lambda: provider.version(version))
    assert peak < 8 << 20, f"refusing a {BIG >> 20} MiB file held {peak >> 20} MiB"
    assert isinstance(error, ArtifactIntegrityError)
    assert f"is {BIG} bytes, the manifest says" in str(error) and "refusing to read it" in str(error)
    assert refused == [str(error)]  # counted (the predict function turns it into ArtifactIntegrityFailure)


def test_a_model_declared_over_the_limit_is_refused_before_it_is_read(stored):
    """Even a manifest the registry vouches for cannot make a function load a model it cannot hold."""
    store, registry, version = stored
    big = MAX_FILE_BYTES[MODEL_FILE] + 1
    model = b"tree\n" + b"x" * (big - 5)
    manifest = json.loads(
        store.s3.get_object(Bucket=store.bucket, Key=f"models/{version}/manifest.json")["Body"].read()
    )
    manifest["files"][MODEL_FILE] = {"sha256": sha256_hex(model), "bytes": big}
    manifest_bytes = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    store.s3.put_object(Bucket=store.bucket, Key=f"models/{version}/{MODEL_FILE}", Body=model)
    store.s3.put_object(Bucket=store.bucket, Key=f"models/{version}/manifest.json", Body=manifest_bytes)
    del model
    peak, error = _peak_while(lambda: store.get(version, sha256_hex(manifest_bytes)))
    assert peak < 8 << 20, f"refusing a model declared {big >> 20} MiB held {peak >> 20} MiB"
    assert isinstance(error, ArtifactIntegrityError)
    assert f"declared {big} bytes, over the {MAX_FILE_BYTES[MODEL_FILE]}-byte limit" in str(error)


def test_with_no_model_to_fall_back_on_the_refusal_is_a_503_not_a_crash(stored):
    store, registry, version = stored
    registry.promote(version)
    store.s3.put_object(Bucket=store.bucket, Key=f"models/{version}/{MODEL_FILE}", Body=b"tree\n" + b"y" * (4 << 20))
    refused = []
    provider = ChampionProvider(registry, store, on_integrity_failure=lambda v, m: refused.append(v))
    with pytest.raises(ModelUnavailableError, match="refusing to read it"):
        provider.champion()
    assert refused == [version]
