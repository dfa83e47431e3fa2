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


def build_services(settings: Settings, s3_client: Any = None, dynamodb_client: Any = None) -> Services:
    import boto3

    bucket, table = settings.require_storage()
    s3_client = s3_client or boto3.client("s3")
    dynamodb_client = dynamodb_client or boto3.client("dynamodb")
    return Services(
        settings=settings,
        store=S3ModelStore(bucket, settings.model_prefix, s3_client),
        registry=DynamoRegistry(table, settings.model_name, dynamodb_client),
    )


def build_provider(services: Services, on_fallback: Any = None) -> ChampionProvider:
    return ChampionProvider(
        services.registry, services.store, ttl_s=services.settings.champion_ttl_s, on_fallback=on_fallback
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
    )
