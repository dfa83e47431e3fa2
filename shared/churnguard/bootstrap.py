"""The composition root: builds adapters and services once, from settings and optional clients.

Handlers call these at cold start; tests call them with moto-backed clients through the same door.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from churnguard.adapters.model_store import S3ModelStore
from churnguard.adapters.registry import DynamoRegistry
from churnguard.services.champion import ChampionProvider
from churnguard.settings import Settings


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
    """The key of churnguard.domain.identity.customer_key: from Secrets Manager when the stack names a
    secret (CUSTOMER_ID_HASH_KEY_SECRET), else CUSTOMER_ID_HASH_KEY (a local default for the demo)."""
    if not settings.customer_id_hash_key_secret:
        return settings.customer_id_hash_key.encode()
    from botocore.exceptions import BotoCoreError, ClientError

    from churnguard.settings import ConfigurationError

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


def build_erasers(services: Services) -> list[Any]:
    """The stores ``churn forget`` erases from (churnguard.domain.privacy): outcomes and stored scores when
    their tables are configured, and the prediction log in the model bucket."""
    from churnguard.adapters.erasure import OutcomeEraser, PredictionLogEraser, ScoreEraser
    from churnguard.settings import BatchSettings

    ddb = services.registry.ddb
    erasers: list[Any] = []
    if services.settings.outcomes_table:
        erasers.append(OutcomeEraser(services.settings.outcomes_table, ddb))
    scores_table = BatchSettings.from_env().scores_table
    if scores_table:
        erasers.append(ScoreEraser(scores_table, ddb))
    erasers.append(PredictionLogEraser(services.store.bucket, services.store.s3))
    return erasers


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


def build_prediction_log(settings: Settings, on_drop: Any = None, firehose_client: Any = None) -> Any:
    """The Firehose prediction log, or None when PREDICTION_LOG_STREAM is unset (nothing is logged)."""
    if not settings.prediction_log_stream:
        return None
    from churnguard.adapters.prediction_log_writer import FirehosePredictionLog, firehose_client_config

    if firehose_client is None:
        import boto3

        firehose_client = boto3.client("firehose", config=firehose_client_config())
    return FirehosePredictionLog(settings.prediction_log_stream, firehose_client, on_drop=on_drop)


def build_outcome_store(settings: Settings, dynamodb_client: Any = None) -> Any:
    """The outcomes table adapter, or None when OUTCOMES_TABLE is unset."""
    if not settings.outcomes_table:
        return None
    from churnguard.adapters.outcomes import DynamoOutcomeStore

    if dynamodb_client is None:
        import boto3

        dynamodb_client = boto3.client("dynamodb")
    return DynamoOutcomeStore(settings.outcomes_table, dynamodb_client)


def build_challenger(services: Services, provider: ChampionProvider) -> Any:
    """The canary/shadow challenger, read from the registry's ALIAS#canary every CHAMPION_TTL_SECONDS."""
    from churnguard.domain.canary import ChallengerProvider

    return ChallengerProvider(services.registry.canary, provider.version, ttl_s=services.settings.champion_ttl_s)


def build_api(
    services: Services,
    provider: ChampionProvider | None = None,
    prediction_log: Any = None,
    challenger: Any = None,
    outcomes: Any = None,
    hash_key: bytes | None = None,
) -> Any:
    """The FastAPI app. Canary/shadow and POST /feedback are wired from the registry and OUTCOMES_TABLE
    unless given; predictions are logged only when a ``prediction_log`` (build_prediction_log) is passed."""
    from churnguard.domain.schema import Schema
    from churnguard.entrypoints.api import create_app

    provider = provider or build_provider(services)
    s = services.settings
    challenger = challenger if challenger is not None else build_challenger(services, provider)
    outcomes = outcomes if outcomes is not None else build_outcome_store(s)
    hash_key = hash_key or customer_hash_key(s)
    schema = Schema.load(s.schema_path) if s.schema_path else Schema.default()
    return create_app(
        schema,
        champion=provider.champion,
        max_batch=s.max_batch,
        max_body_bytes=s.max_body_bytes,
        loaded_version=lambda: provider.loaded_version,
        hash_key=hash_key,
        log_predictions=prediction_log.add if prediction_log is not None else None,
        challenger=challenger,
        outcomes=outcomes,
        fallback=provider.fallback_estimate,
        customer_score=_customer_score_lookup(services, hash_key),
    )


def _customer_score_lookup(services: Services, hash_key: bytes) -> Any:
    # The registry's DynamoDB client serves the score table too: no second client at cold start.
    store = build_score_store(services.settings, services.registry.ddb, hash_key=hash_key)
    return store.get if store is not None else None


# ----- batch scoring ---------------------------------------------------------------------------------
def build_score_store(settings: Settings, dynamodb_client: Any = None, hash_key: bytes | None = None) -> Any:
    """Customers' latest scores (SCORES_TABLE), or None when the stack has no score table."""
    from churnguard.adapters.score_store import DynamoScoreStore
    from churnguard.settings import BatchSettings

    table = BatchSettings.from_env().scores_table
    if not table:
        return None
    if dynamodb_client is None:
        import boto3

        dynamodb_client = boto3.client("dynamodb", config=aws_client_config(settings))
    return DynamoScoreStore(table, dynamodb_client, hash_key or customer_hash_key(settings))


@dataclass
class BatchServices:
    services: Services
    settings: Any  # BatchSettings
    io: Any  # S3BatchIO
    jobs: Any  # DynamoJobStore | None
    scores: Any  # DynamoScoreStore | None
    _scorers: dict[str, Any]

    def scorer_for(self, version: str) -> Any:
        """A BatchScorer for a model version, verified on load and kept for the container's life."""
        from churnguard.domain.batch import BatchScorer
        from churnguard.domain.predictor import Predictor

        scorer = self._scorers.get(version)
        if scorer is None:
            mv = self.services.registry.get(version)
            bundle = self.services.store.get(version, mv.manifest_sha256)
            scorer = BatchScorer(Predictor(bundle), num_threads=self.settings.threads)
            self._scorers = {version: scorer}  # one model at a time: a job uses one version
        return scorer

    def resolve(self, version: str | None) -> tuple[str, Any]:
        """(version, schema): the named version, or the champion now."""
        from churnguard.domain.errors import ModelNotFoundError

        if not version:
            alias = self.services.registry.alias()
            if not alias:
                raise ModelNotFoundError("no champion model has been promoted yet: name a model version")
            version = alias["version"]
        return version, self.scorer_for(version).schema


def build_batch(services: Services, batch_settings: Any = None, dynamodb_client: Any = None) -> BatchServices:
    from churnguard.adapters.batch_io import S3BatchIO
    from churnguard.adapters.jobs import DynamoJobStore
    from churnguard.settings import BatchSettings

    bs = batch_settings or BatchSettings.from_env()
    ddb = dynamodb_client or services.registry.ddb
    return BatchServices(
        services=services,
        settings=bs,
        io=S3BatchIO(services.store.s3),
        jobs=DynamoJobStore(bs.jobs_table, ddb) if bs.jobs_table else None,
        scores=build_score_store(services.settings, ddb),
        _scorers={},
    )
