"""Helpers of the event-feature tests (their fixtures are in tests/functional/conftest.py): the generated
logs put where the deployed stack reads them (the model bucket's features/ prefix, FEATURE_DEFINITION_URI),
a model promoted, the customers active at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3

END = datetime(2026, 6, 1, tzinfo=UTC)
AS_OF = END + timedelta(days=1)
CUSTOMERS = 600


def upload_logs(aws, folder: Path, monkeypatch) -> str:
    """The logs under s3://MODEL_BUCKET/features/ and the definition at the URI the template gives the function."""
    s3 = boto3.client("s3")
    bucket = aws["MODEL_BUCKET"]
    for f in sorted(folder.iterdir()):
        key = "features/definition.yaml" if f.name == "features.yaml" else f"features/{f.name}"
        s3.upload_file(str(f), bucket, key)
    uri = f"s3://{bucket}/features/definition.yaml"
    monkeypatch.setenv("FEATURE_DEFINITION_URI", uri)
    monkeypatch.setenv("FEATURE_ENGINE_THREADS", "1")
    from churnguard.settings import get_settings

    get_settings.cache_clear()
    return uri


def promote(services, bundle) -> str:
    from tests.functional.loop_fixtures import register

    services.registry.promote(register(services, bundle))
    return bundle.version


def active_at(data, t: datetime) -> list[str]:
    """Customers signed up before ``t`` who had not cancelled by then (by the logs known at ``t``)."""
    naive = t.replace(tzinfo=None)
    subs = data.subscription
    gone = set(
        subs.loc[
            (subs["event_type"] == "cancel") & (subs["event_time"] < naive) & (subs["ingested_at"] <= naive),
            "customer_id",
        ].astype(str)
    )
    c = data.customers
    return sorted(set(c.loc[c["signup_date"] < naive, "customer_id"]) - gone)
