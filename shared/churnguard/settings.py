"""Configuration, read once per container from the environment (never at import time).

Every environment variable the platform reads is named here, and one ``Settings`` object holds
them all: the core (bucket, tables, serving), ``settings.loop`` (drift check and promotion gate),
``settings.batch`` (batch scoring) and ``settings.retrain`` (the loop's training set, canary and
watch). ``get_settings()`` reads it once and caches it. An explicit mapping beats the environment:
``Settings.from_env({"MODEL_BUCKET": "b", "REGISTRY_TABLE": "t"})``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from churnguard.domain.errors import ConfigurationError

ENV_MODEL_BUCKET = "MODEL_BUCKET"
ENV_REGISTRY_TABLE = "REGISTRY_TABLE"
ENV_MODEL_NAME = "MODEL_NAME"
ENV_MODEL_PREFIX = "MODEL_PREFIX"
ENV_CHAMPION_TTL = "CHAMPION_TTL_SECONDS"
ENV_SCHEMA_PATH = "SCHEMA_PATH"
ENV_MAX_BATCH = "MAX_BATCH_SIZE"
ENV_MAX_BODY_BYTES = "MAX_BODY_BYTES"
# The retraining loop: ground truth, and the Firehose stream of the prediction log (unset: no log).
ENV_OUTCOMES_TABLE = "OUTCOMES_TABLE"
ENV_PREDICTION_LOG_STREAM = "PREDICTION_LOG_STREAM"
# Local runs without Firehose (the emulator sets it): the log written straight into this bucket, in the
# layout Firehose gives it (predictions/dt=YYYY-MM-DD/). PREDICTION_LOG_STREAM wins when both are set.
ENV_PREDICTION_LOG_BUCKET = "PREDICTION_LOG_BUCKET"
ENV_CUSTOMER_ID_HASH_KEY = "CUSTOMER_ID_HASH_KEY"
# Deployed stacks name a Secrets Manager secret instead; it is read once per cold start.
ENV_CUSTOMER_ID_HASH_KEY_SECRET = "CUSTOMER_ID_HASH_KEY_SECRET"
# "off" (503 when no model can load) or "base_rate" (churnguard.domain.fallback).
ENV_FALLBACK_MODE = "FALLBACK_MODE"
ENV_FALLBACK_BASE_RATE = "FALLBACK_BASE_RATE"
# botocore retry attempts (standard mode, exponential backoff with jitter) for S3 and DynamoDB.
ENV_AWS_MAX_ATTEMPTS = "CHURNGUARD_AWS_MAX_ATTEMPTS"
# Set by Lambda itself: the function's name (we run inside Lambda) and the runtime API's address,
# where the predict function registers for the shutdown signal (adapters/lambda_runtime.py).
ENV_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
ENV_LAMBDA_RUNTIME_API = "AWS_LAMBDA_RUNTIME_API"


# ----- the retraining loop: drift check, evaluation gate, state machine ---------------------------
ENV_RETRAIN_STATE_MACHINE_ARN = "RETRAIN_STATE_MACHINE_ARN"
# Where a drift-triggered retraining reads its labelled training data and its fresh held-out rows.
ENV_TRAINING_DATA_URI = "TRAINING_DATA_URI"
ENV_HOLDOUT_DATA_URI = "HOLDOUT_DATA_URI"
ENV_REPORTS_PREFIX = "REPORTS_PREFIX"
ENV_DRIFT_WINDOW_DAYS = "DRIFT_WINDOW_DAYS"
ENV_DRIFT_OUTCOME_WINDOW_DAYS = "DRIFT_OUTCOME_WINDOW_DAYS"
ENV_DRIFT_MAX_ROWS = "DRIFT_MAX_ROWS"
# churnguard.domain.drift.DriftThresholds field -> variable.
DRIFT_THRESHOLD_ENV = {
    "min_rows": "DRIFT_MIN_ROWS",
    "psi": "DRIFT_PSI_THRESHOLD",
    "score_psi": "DRIFT_SCORE_PSI_THRESHOLD",
    "alpha": "DRIFT_ALPHA",
    "min_outcomes": "DRIFT_MIN_OUTCOMES",
    "max_auc_drop": "DRIFT_MAX_AUC_DROP",
    "max_calibration_error": "DRIFT_MAX_CALIBRATION_ERROR",
    "max_estimated_pr_drop": "DRIFT_MAX_ESTIMATED_PR_DROP",
}
# churnguard.domain.evaluation.GateConfig field -> variable.
GATE_ENV = {
    "min_rows": "GATE_MIN_ROWS",
    "min_auc": "GATE_MIN_AUC",
    "max_calibration_error": "GATE_MAX_CALIBRATION_ERROR",
    "auc_margin": "GATE_AUC_MARGIN",
    "n_bootstrap": "GATE_BOOTSTRAP_RESAMPLES",
}


@dataclass(frozen=True)
class LoopSettings:
    """Settings of the drift check and the evaluate step (``settings.loop``)."""

    retrain_state_machine_arn: str | None = None
    training_data_uri: str | None = None
    holdout_data_uri: str | None = None
    reports_prefix: str = "reports"
    drift_window_days: int = 7
    outcome_window_days: int = 90
    drift_max_rows: int = 100_000
    drift_thresholds: Mapping[str, str] | None = None
    gate: Mapping[str, str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LoopSettings:
        env = os.environ if env is None else env
        try:
            s = cls(
                retrain_state_machine_arn=env.get(ENV_RETRAIN_STATE_MACHINE_ARN) or None,
                training_data_uri=env.get(ENV_TRAINING_DATA_URI) or None,
                holdout_data_uri=env.get(ENV_HOLDOUT_DATA_URI) or None,
                reports_prefix=(env.get(ENV_REPORTS_PREFIX) or "reports").strip("/"),
                drift_window_days=int(env.get(ENV_DRIFT_WINDOW_DAYS, "7")),
                outcome_window_days=int(env.get(ENV_DRIFT_OUTCOME_WINDOW_DAYS, "90")),
                drift_max_rows=int(env.get(ENV_DRIFT_MAX_ROWS, "100000")),
                drift_thresholds={k: env[v] for k, v in DRIFT_THRESHOLD_ENV.items() if env.get(v)},
                gate={k: env[v] for k, v in GATE_ENV.items() if env.get(v)},
            )
        except ValueError as e:
            raise ConfigurationError(f"malformed setting: {e}") from e
        if s.drift_window_days < 1 or s.outcome_window_days < 1 or s.drift_max_rows < 1:
            raise ConfigurationError(
                f"{ENV_DRIFT_WINDOW_DAYS}, {ENV_DRIFT_OUTCOME_WINDOW_DAYS} and {ENV_DRIFT_MAX_ROWS} must be >= 1"
            )
        return s


# ----- closing the loop: fresh training sets, triggers, the canary stage, the watch after promotion ---
# churnguard.domain.training_set.TrainingSetPlan field -> variable (max_prediction_age_days follows
# DRIFT_OUTCOME_WINDOW_DAYS: one horizon for matching outcomes to predictions).
TRAINING_SET_ENV = {
    "window_days": "TRAINING_SET_WINDOW_DAYS",
    "period_days": "TRAINING_SET_PERIOD_DAYS",
    "min_train_rows": "TRAINING_SET_MIN_TRAIN_ROWS",
    "min_holdout_rows": "TRAINING_SET_MIN_HOLDOUT_ROWS",
    "min_class_count": "TRAINING_SET_MIN_CLASS_COUNT",
}
# The original training file, added to every fresh training set when set (unset: served traffic only).
ENV_TRAINING_SET_ORIGINAL_URI = "TRAINING_SET_ORIGINAL_URI"
ENV_TRAINING_SETS_PREFIX = "TRAINING_SETS_PREFIX"
# The volume trigger: this many new labelled outcomes since the champion was trained start a run (0: off).
ENV_RETRAIN_MIN_NEW_OUTCOMES = "RETRAIN_MIN_NEW_OUTCOMES"
# churnguard.domain.canary.CanaryPolicy field -> variable.
CANARY_ENV = {
    "share": "CANARY_SHARE",
    "shadow": "CANARY_SHADOW",
    "wait_seconds": "CANARY_WAIT_SECONDS",
    "min_requests": "CANARY_MIN_REQUESTS",
    "max_error_rate": "CANARY_MAX_ERROR_RATE",
    "max_latency_ratio": "CANARY_MAX_LATENCY_RATIO",
    "max_score_psi": "CANARY_MAX_SCORE_PSI",
    "alpha": "CANARY_ALPHA",
    "max_service_error_rate": "CANARY_MAX_SERVICE_ERROR_RATE",
}
# How long after a promotion the watch alarm rolls back by itself.
ENV_ROLLBACK_WATCH_HOURS = "ROLLBACK_WATCH_HOURS"
ENV_ALARM_TOPIC_ARN = "ALARM_TOPIC_ARN"
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"
# CloudWatch namespace the functions' metrics (Powertools EMF) are published in.
ENV_METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"


@dataclass(frozen=True)
class RetrainSettings:
    """Settings of the retraining loop's own steps (``settings.retrain``): the fresh training set, the
    schedule and volume triggers, the canary stage and the watch after a promotion."""

    training_set: Mapping[str, str] | None = None
    original_data_uri: str | None = None
    training_sets_prefix: str = "data/training-sets"
    min_new_outcomes: int = 0
    canary: Mapping[str, str] | None = None
    watch_hours: float = 24.0
    alarm_topic_arn: str | None = None
    event_bus: str = "default"
    metrics_namespace: str = "ChurnGuard"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetrainSettings:
        env = os.environ if env is None else env
        try:
            s = cls(
                training_set={k: env[v] for k, v in TRAINING_SET_ENV.items() if env.get(v)},
                original_data_uri=env.get(ENV_TRAINING_SET_ORIGINAL_URI) or None,
                training_sets_prefix=(env.get(ENV_TRAINING_SETS_PREFIX) or "data/training-sets").strip("/"),
                min_new_outcomes=int(env.get(ENV_RETRAIN_MIN_NEW_OUTCOMES) or 0),
                canary={k: env[v] for k, v in CANARY_ENV.items() if env.get(v)},
                watch_hours=float(env.get(ENV_ROLLBACK_WATCH_HOURS) or 24),
                alarm_topic_arn=env.get(ENV_ALARM_TOPIC_ARN) or None,
                event_bus=env.get(ENV_EVENT_BUS_NAME) or "default",
                metrics_namespace=env.get(ENV_METRICS_NAMESPACE) or "ChurnGuard",
            )
        except ValueError as e:
            raise ConfigurationError(f"malformed retraining setting: {e}") from e
        if s.min_new_outcomes < 0 or s.watch_hours < 0:
            raise ConfigurationError(f"{ENV_RETRAIN_MIN_NEW_OUTCOMES} and {ENV_ROLLBACK_WATCH_HOURS} must be >= 0")
        return s


# The pre-traffic check of a PredictFunction deploy: the version CodeDeploy is about to shift traffic to,
# and the alias serving now (both ARNs the template passes the hook).
ENV_DEPLOY_CHECK_NEW_VERSION = "DEPLOY_CHECK_NEW_VERSION"
ENV_DEPLOY_CHECK_LIVE = "DEPLOY_CHECK_LIVE"


@dataclass(frozen=True)
class DeployCheckSettings:
    new_version: str | None = None
    live: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DeployCheckSettings:
        env = os.environ if env is None else env
        return cls(
            new_version=env.get(ENV_DEPLOY_CHECK_NEW_VERSION) or None, live=env.get(ENV_DEPLOY_CHECK_LIVE) or None
        )


# ----- batch scoring and stored customer scores -------------------------------------------------
ENV_SCORES_TABLE = "SCORES_TABLE"
ENV_BATCH_JOBS_TABLE = "BATCH_JOBS_TABLE"
ENV_BATCH_BUCKET = "BATCH_BUCKET"
ENV_BATCH_CHUNK_BYTES = "BATCH_CHUNK_BYTES"
ENV_BATCH_STATE_MACHINE_ARN = "BATCH_STATE_MACHINE_ARN"
# Threads of LightGBM's batch predict (0: OpenMP's default, one per vCPU).
ENV_BATCH_THREADS = "BATCH_THREADS"


@dataclass(frozen=True)
class BatchSettings:
    """Settings of batch scoring and the stored customer scores (``settings.batch``)."""

    scores_table: str | None = None
    jobs_table: str | None = None
    bucket: str | None = None
    chunk_bytes: int = 64 * 1024 * 1024
    state_machine_arn: str | None = None
    threads: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> BatchSettings:
        env = os.environ if env is None else env
        try:
            return cls(
                scores_table=env.get(ENV_SCORES_TABLE) or None,
                jobs_table=env.get(ENV_BATCH_JOBS_TABLE) or None,
                bucket=env.get(ENV_BATCH_BUCKET) or None,
                chunk_bytes=int(env.get(ENV_BATCH_CHUNK_BYTES) or 64 * 1024 * 1024),
                state_machine_arn=env.get(ENV_BATCH_STATE_MACHINE_ARN) or None,
                threads=int(env.get(ENV_BATCH_THREADS) or 0),
            )
        except ValueError as e:
            raise ConfigurationError(f"malformed batch setting: {e}") from e


# ----- features from event logs (the feature build, the nightly refresh, scoring by customer id) ----
ENV_FEATURES_TABLE = "FEATURES_TABLE"
# The feature definition (YAML), a local path or s3://bucket/key; relative source paths are read beside it.
ENV_FEATURE_DEFINITION_URI = "FEATURE_DEFINITION_URI"
# DuckDB's threads (0: one per vCPU) and memory limit in MB (0: DuckDB's default, 80% of RAM).
ENV_FEATURE_ENGINE_THREADS = "FEATURE_ENGINE_THREADS"
ENV_FEATURE_ENGINE_MEMORY_MB = "FEATURE_ENGINE_MEMORY_MB"
# Where S3 inputs are downloaded and DuckDB spills (Lambda: /tmp, sized by EphemeralStorage).
ENV_FEATURE_STAGING_DIR = "FEATURE_STAGING_DIR"


@dataclass(frozen=True)
class FeatureSettings:
    """Settings of the event-feature build and refresh (``settings.features``)."""

    table: str | None = None
    definition_uri: str | None = None
    engine_threads: int = 0
    engine_memory_mb: int = 0
    staging_dir: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FeatureSettings:
        env = os.environ if env is None else env
        try:
            s = cls(
                table=env.get(ENV_FEATURES_TABLE) or None,
                definition_uri=env.get(ENV_FEATURE_DEFINITION_URI) or None,
                engine_threads=int(env.get(ENV_FEATURE_ENGINE_THREADS) or 0),
                engine_memory_mb=int(env.get(ENV_FEATURE_ENGINE_MEMORY_MB) or 0),
                staging_dir=env.get(ENV_FEATURE_STAGING_DIR) or None,
            )
        except ValueError as e:
            raise ConfigurationError(f"malformed feature setting: {e}") from e
        if s.engine_threads < 0 or s.engine_memory_mb < 0:
            raise ConfigurationError(f"{ENV_FEATURE_ENGINE_THREADS} and {ENV_FEATURE_ENGINE_MEMORY_MB} must be >= 0")
        return s

    def require_definition(self) -> str:
        if not self.definition_uri:
            raise ConfigurationError(
                f"set {ENV_FEATURE_DEFINITION_URI} (the feature definition: a path or s3://bucket/key)"
            )
        return self.definition_uri


# ----- the console (entrypoints/console_pages.py) and its dashboard routes ------------------------------
# The Cognito app client people sign in with; unset: no sign-in, which only `churn console` on 127.0.0.1 allows.
ENV_CONSOLE_USER_POOL_CLIENT_ID = "CONSOLE_USER_POOL_CLIENT_ID"
ENV_CONSOLE_MAX_CALL_LIST = "CONSOLE_MAX_CALL_LIST"
ENV_CONSOLE_HISTORY_DAYS = "CONSOLE_HISTORY_DAYS"
ENV_CONSOLE_CANARY_DAYS = "CONSOLE_CANARY_DAYS"


@dataclass(frozen=True)
class ConsoleSettings:
    """Settings of the console (``settings.console``)."""

    user_pool_client_id: str | None = None
    max_call_list: int = 100_000
    history_days: int = 30
    canary_days: int = 90

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsoleSettings:
        env = os.environ if env is None else env
        try:
            s = cls(
                user_pool_client_id=env.get(ENV_CONSOLE_USER_POOL_CLIENT_ID) or None,
                max_call_list=int(env.get(ENV_CONSOLE_MAX_CALL_LIST) or 100_000),
                history_days=int(env.get(ENV_CONSOLE_HISTORY_DAYS) or 30),
                canary_days=int(env.get(ENV_CONSOLE_CANARY_DAYS) or 90),
            )
        except ValueError as e:
            raise ConfigurationError(f"malformed console setting: {e}") from e
        if min(s.max_call_list, s.history_days, s.canary_days) < 1:
            raise ConfigurationError(
                f"{ENV_CONSOLE_MAX_CALL_LIST}, {ENV_CONSOLE_HISTORY_DAYS} and {ENV_CONSOLE_CANARY_DAYS} must be >= 1"
            )
        return s


# ----- everything, read once per container -----------------------------------------------------
@dataclass(frozen=True)
class Settings:
    model_bucket: str | None = None
    registry_table: str | None = None
    model_name: str = "churn"
    model_prefix: str = "models"
    champion_ttl_s: float = 30.0
    schema_path: Path | None = None
    max_batch: int = 1000
    max_body_bytes: int = 2_000_000
    outcomes_table: str | None = None
    prediction_log_stream: str | None = None
    prediction_log_bucket: str | None = None
    # A local default keeps the demo working; deployments pass a secret through the template.
    customer_id_hash_key: str = "local-development-key"
    customer_id_hash_key_secret: str | None = None
    fallback_mode: str = "off"
    fallback_base_rate: float | None = None
    aws_max_attempts: int = 4
    lambda_function_name: str | None = None
    lambda_runtime_api: str | None = None
    loop: LoopSettings = field(default_factory=LoopSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    retrain: RetrainSettings = field(default_factory=RetrainSettings)
    deploy_check: DeployCheckSettings = field(default_factory=DeployCheckSettings)
    features: FeatureSettings = field(default_factory=FeatureSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        try:
            settings = cls(
                model_bucket=env.get(ENV_MODEL_BUCKET) or None,
                registry_table=env.get(ENV_REGISTRY_TABLE) or None,
                model_name=env.get(ENV_MODEL_NAME, "churn"),
                model_prefix=env.get(ENV_MODEL_PREFIX, "models"),
                champion_ttl_s=float(env.get(ENV_CHAMPION_TTL, "30")),
                schema_path=Path(env[ENV_SCHEMA_PATH]) if env.get(ENV_SCHEMA_PATH) else None,
                max_batch=int(env.get(ENV_MAX_BATCH, "1000")),
                max_body_bytes=int(env.get(ENV_MAX_BODY_BYTES, "2000000")),
                outcomes_table=env.get(ENV_OUTCOMES_TABLE) or None,
                prediction_log_stream=env.get(ENV_PREDICTION_LOG_STREAM) or None,
                prediction_log_bucket=env.get(ENV_PREDICTION_LOG_BUCKET) or None,
                customer_id_hash_key=env.get(ENV_CUSTOMER_ID_HASH_KEY) or "local-development-key",
                customer_id_hash_key_secret=env.get(ENV_CUSTOMER_ID_HASH_KEY_SECRET) or None,
                fallback_mode=env.get(ENV_FALLBACK_MODE) or "off",
                fallback_base_rate=float(env[ENV_FALLBACK_BASE_RATE]) if env.get(ENV_FALLBACK_BASE_RATE) else None,
                aws_max_attempts=int(env.get(ENV_AWS_MAX_ATTEMPTS, "4")),
                lambda_function_name=env.get(ENV_LAMBDA_FUNCTION_NAME) or None,
                lambda_runtime_api=env.get(ENV_LAMBDA_RUNTIME_API) or None,
                loop=LoopSettings.from_env(env),
                batch=BatchSettings.from_env(env),
                retrain=RetrainSettings.from_env(env),
                deploy_check=DeployCheckSettings.from_env(env),
                features=FeatureSettings.from_env(env),
                console=ConsoleSettings.from_env(env),
            )
        except ValueError as e:
            raise ConfigurationError(f"malformed setting: {e}") from e
        if settings.fallback_mode not in ("off", "base_rate"):
            raise ConfigurationError(f"{ENV_FALLBACK_MODE} must be off or base_rate, not {settings.fallback_mode!r}")
        if settings.fallback_base_rate is not None and not 0 <= settings.fallback_base_rate <= 1:
            raise ConfigurationError(f"{ENV_FALLBACK_BASE_RATE} must be a probability in [0, 1]")
        return settings

    def require_storage(self) -> tuple[str, str]:
        missing = [
            n for n, v in ((ENV_MODEL_BUCKET, self.model_bucket), (ENV_REGISTRY_TABLE, self.registry_table)) if not v
        ]
        if missing:
            raise ConfigurationError(f"set {' and '.join(missing)} (the model bucket and registry table)")
        return self.model_bucket, self.registry_table  # type: ignore[return-value]

    def require_outcomes(self) -> str:
        if not self.outcomes_table:
            raise ConfigurationError(f"set {ENV_OUTCOMES_TABLE} (the table of observed outcomes)")
        return self.outcomes_table


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
