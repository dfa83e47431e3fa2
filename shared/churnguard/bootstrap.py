"""The composition root: builds adapters and services once, from settings and optional clients.

Handlers call these at cold start; tests call them with moto-backed clients through the same door.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .adapters.model_store import S3ModelStore
from .adapters.registry import DynamoRegistry
from .provider import ChampionProvider
from .settings import Settings


@dataclass
class Services:
    settings: Settings
    store: S3ModelStore
    registry: DynamoRegistry


def aws_client_config(settings: Settings) -> Any:
    """botocore config for every client we build: standard retries (exponential backoff with
    jitter on throttling, 5xx and connection errors), bounded attempts and timeouts, so a slow
    dependency costs seconds, not the whole Lambda timeout."""
    from botocore.config import Config

    return Config(
        retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
        connect_timeout=3,
        read_timeout=10,
    )


def customer_hash_key(settings: Settings, secretsmanager_client: Any = None) -> bytes:
    """The key of churnguard.identity.customer_key: from Secrets Manager when the stack names a
    secret (CUSTOMER_ID_HASH_KEY_SECRET), else CUSTOMER_ID_HASH_KEY (a local default for the demo)."""
    if not settings.customer_id_hash_key_secret:
        return settings.customer_id_hash_key.encode()
    from botocore.exceptions import BotoCoreError, ClientError

    from .settings import ConfigurationError

    if secretsmanager_client is None:
        import boto3

        secretsmanager_client = boto3.client("secretsmanager", config=aws_client_config(settings))
    try:
        value = secretsmanager_client.get_secret_value(SecretId=settings.customer_id_hash_key_secret)["SecretString"]
    except (ClientError, BotoCoreError, KeyError) as e:
        raise ConfigurationError(f"cannot read the customer-id hash key secret: {e}") from e
    if not value:
        raise ConfigurationError("the customer-id hash key secret is empty")
    return value.encode()


def build_services(settings: Settings, s3_client: Any = None, dynamodb_client: Any = None) -> Services:
    import boto3

    bucket, table = settings.require_storage()
    s3_client = s3_client or boto3.client("s3", config=aws_client_config(settings))
    dynamodb_client = dynamodb_client or boto3.client("dynamodb", config=aws_client_config(settings))
    return Services(
        settings=settings,
        store=S3ModelStore(bucket, settings.model_prefix, s3_client),
        registry=DynamoRegistry(table, settings.model_name, dynamodb_client),
    )


def build_provider(services: Services, on_fallback: Any = None, on_integrity_failure: Any = None) -> ChampionProvider:
    s = services.settings
    return ChampionProvider(
        services.registry,
        services.store,
        ttl_s=s.champion_ttl_s,
        on_fallback=on_fallback,
        on_integrity_failure=on_integrity_failure,
        fallback_mode=s.fallback_mode,
        fallback_base_rate=s.fallback_base_rate,
    )


def build_api(services: Services, provider: ChampionProvider | None = None) -> Any:
    from .api import create_app
    from .schema import Schema

    provider = provider or build_provider(services)
    s = services.settings
    schema = Schema.load(s.schema_path) if s.schema_path else Schema.default()
    return create_app(
        schema,
        champion=provider.champion,
        max_batch=s.max_batch,
        max_body_bytes=s.max_body_bytes,
        loaded_version=lambda: provider.loaded_version,
        fallback=provider.fallback_estimate,
    )
