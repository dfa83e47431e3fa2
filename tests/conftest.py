"""Shared fixtures: paths, event files, a trained model, and AWS under moto built from template.yaml."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from churnguard.local.functions import LambdaContext, import_function

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
TELCO_CSV = ROOT.parent / "shared" / "data" / "telco-customer-churn.csv"

# Fast but real training settings for tests that need a model, not a benchmark: the fixed 4-leaf
# configuration (no model search; tests/unit/test_model_selection.py tests the search).
FAST = {"n_folds": 3, "inner_folds": 3, "max_rounds": 400, "early_stopping_rounds": 40, "search": "off"}


def load_event(name: str) -> dict[str, Any]:
    """An event fixture: the same files `sam local invoke -e events/<name>.json` takes."""
    return json.loads((EVENTS / f"{name}.json").read_text())


def telco_row(i: int = 0) -> dict[str, Any]:
    import pandas as pd

    df = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False) if TELCO_CSV.exists() else synth_frame(50)
    return {k: v for k, v in df.iloc[i].to_dict().items()}


def synth_frame(n: int = 2000, seed: int = 3):
    from churnguard.local.synth import generate_customers

    return generate_customers(n, seed=seed)


def synth_csv_bytes(n: int = 2000, seed: int = 3) -> bytes:
    buf = io.StringIO()
    synth_frame(n, seed).to_csv(buf, index=False)
    return buf.getvalue().encode()


@pytest.fixture(scope="session")
def schema():
    from churnguard.domain.schema import Schema

    return Schema.default()


@pytest.fixture(scope="session")
def trained(schema):
    """(bundle, training result) from generated data, trained once per session."""
    from churnguard.domain.training import TrainingConfig, train
    from churnguard.services.lifecycle import build_bundle

    result = train(synth_frame(2000), schema, TrainingConfig.from_dict(FAST))
    bundle = build_bundle("v-test-1", result, schema, data_sha256="0" * 64, source="synthetic")
    return bundle, result


@pytest.fixture(scope="session")
def predictor(trained):
    from churnguard.domain.predictor import Predictor

    return Predictor(trained[0])


@pytest.fixture
def aws(monkeypatch) -> Iterator[dict[str, str]]:
    """moto in process, with the buckets and tables template.yaml declares; yields the environment."""
    from moto import mock_aws

    from churnguard.local.template import create_resources, load_template
    from churnguard.settings import get_settings

    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        import boto3

        env = create_resources(load_template(ROOT / "template.yaml"), boto3.client("s3"), boto3.client("dynamodb"))
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        yield env
    get_settings.cache_clear()


@pytest.fixture
def services(aws):
    from churnguard.bootstrap import build_services
    from churnguard.settings import Settings

    return build_services(Settings.from_env())


@pytest.fixture
def champion(services, trained):
    """The session's trained bundle stored, registered and promoted; returns its version."""
    from churnguard.domain.model_registry import ModelVersion

    bundle = trained[0]
    stored = services.store.put(bundle)
    services.registry.register(
        ModelVersion(
            version=bundle.version,
            status="candidate",
            location=stored["location"],
            manifest_sha256=stored["manifest_sha256"],
        )
    )
    services.registry.promote(bundle.version)
    return bundle.version


def load_function(name: str):
    """Import functions/<name>/app.py fresh (each is its own module, as in its own Lambda)."""
    return import_function(name, ROOT)


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext("test")
