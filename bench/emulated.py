"""A champion in the S3/DynamoDB emulator (moto in process), for the in-process benchmarks.

with champion_in_moto(bundle) as env:   # env: the variables the template gives the functions
    handler = load_predict_handler()
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from churnguard.local.functions import LambdaContext as _LambdaContext
from churnguard.local.functions import import_function

ROOT = Path(__file__).resolve().parents[1]
TELCO_CSV = ROOT.parent / "shared" / "data" / "telco-customer-churn.csv"


IRANIAN_CSV = ROOT.parent / "shared" / "data" / "iranian-churn.csv"


def train_recipe(
    csv: Path, target: str = "Churn", version: str = "v-bench-1", schema: Any = None
) -> tuple[Any, Any, dict[str, Any]]:
    """(bundle, training result, timing) for ``churn train`` with the default TrainingConfig on a CSV,
    with ``schema`` or the one ``churn schema infer`` writes: wall and CPU seconds and the load average."""
    import os
    import time

    from churnguard.domain.bundle import sha256_hex
    from churnguard.domain.schema_inference import infer_schema
    from churnguard.domain.training import TrainingConfig, read_csv
    from churnguard.services.lifecycle import build_bundle, train_from_bytes

    data = csv.read_bytes()
    schema = schema or infer_schema(read_csv(csv), target).schema
    load_before = os.getloadavg()[0]
    started, cpu = time.perf_counter(), time.process_time()
    result = train_from_bytes(data, schema, TrainingConfig())
    timing = {
        "seconds": round(time.perf_counter() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "loadavg_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }
    bundle = build_bundle(version, result, schema, data_sha256=sha256_hex(data), source=str(csv.name))
    return bundle, result, timing


def publish(bundle: Any, s3: Any, dynamodb: Any, env: dict[str, str]) -> None:
    """Store, register and promote a bundle, as the train and promote functions do."""
    from churnguard.adapters.model_store import S3ModelStore
    from churnguard.adapters.registry import DynamoRegistry
    from churnguard.domain.model_registry import ModelVersion

    store = S3ModelStore(env["MODEL_BUCKET"], s3)
    registry = DynamoRegistry(env["REGISTRY_TABLE"], dynamodb)
    stored = store.put(bundle)
    registry.register(
        ModelVersion(
            version=bundle.version,
            status="candidate",
            location=stored["location"],
            manifest_sha256=stored["manifest_sha256"],
            checksums=stored["files"],
            metrics={},
            lineage={"data_source": "bench"},
        )
    )
    registry.promote(bundle.version, reason="bench")


@contextlib.contextmanager
def champion_in_moto(bundle: Any) -> Iterator[dict[str, str]]:
    from moto import mock_aws

    from churnguard.local.template import create_resources, load_template

    saved = dict(os.environ)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_METRICS_NAMESPACE="ChurnGuard",
        POWERTOOLS_SERVICE_NAME="churnguard",
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    try:
        with mock_aws():
            import boto3

            s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
            env = create_resources(load_template(ROOT / "template.yaml"), s3, ddb)
            os.environ.update(env)
            publish(bundle, s3, ddb, env)
            yield env
    finally:
        os.environ.clear()
        os.environ.update(saved)


def load_predict_module() -> Any:
    """functions/predict/app.py imported fresh, as a Lambda container does at cold start."""
    return import_function("predict", ROOT)


def LambdaContext() -> Any:  # noqa: N802 - the name latency.py uses
    return _LambdaContext("PredictFunction")
