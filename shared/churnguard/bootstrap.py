"""The composition root: the one place that builds AWS clients and adapters and binds them to use cases.

Each Lambda handler calls one ``build_*`` at cold start and keeps the result for the container's
life; the CLI, the demo and the tests come through the same door, the tests with moto-backed
clients. Clients are built lazily (a function pays only for the clients it uses), every one with
the project's retry and timeout configuration (``aws_client_config``; the prediction log's Firehose
client has its own, tighter one).

    services = build_services()                       # settings from the environment, read once
    check = build_drift_check(services)               # run_drift_check bound to its adapters
    summary = check(now=datetime.now(UTC))
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from churnguard.adapters.batch_io import S3BatchIO
from churnguard.adapters.cognito import CognitoSignIn
from churnguard.adapters.deployments import CodeDeployHookReporter, LambdaInvoker
from churnguard.adapters.erasure import OutcomeEraser, PredictionLogEraser, ScoreEraser
from churnguard.adapters.feature_store import DynamoFeatureStore
from churnguard.adapters.jobs import DynamoJobStore
from churnguard.adapters.lambda_runtime import on_shutdown, register_shutdown_extension
from churnguard.adapters.local_files import LocalBatchIO, LocalObjectStore, LocalOrS3ObjectStore
from churnguard.adapters.model_store import S3ModelStore
from churnguard.adapters.notifications import EventBridgePublisher, SnsNotifier
from churnguard.adapters.outcomes import DynamoOutcomeStore
from churnguard.adapters.prediction_log_reader import S3PredictionLogReader
from churnguard.adapters.prediction_log_writer import (
    BucketPredictionLog,
    BufferedPredictionLog,
    FirehosePredictionLog,
    firehose_client_config,
)
from churnguard.adapters.registry import DynamoRegistry
from churnguard.adapters.report_archive import S3ReportArchive
from churnguard.adapters.s3_objects import S3ObjectStore
from churnguard.adapters.score_store import DynamoScoreStore
from churnguard.adapters.secrets import read_secret_bytes
from churnguard.adapters.service_health import CloudWatchServiceHealth
from churnguard.adapters.state_machines import StepFunctionsJobRunner, StepFunctionsRetrainLauncher
from churnguard.adapters.watch import DynamoWatchStore
from churnguard.domain.batch import BatchScorer
from churnguard.domain.canary import CanaryPolicy
from churnguard.domain.errors import ConfigurationError, DataValidationError, ModelNotFoundError
from churnguard.domain.evaluation import GateConfig
from churnguard.domain.privacy import ErasureReport
from churnguard.domain.schema import Schema
from churnguard.domain.training_set import TrainingSetPlan
from churnguard.services import batch_jobs, deploy_check, event_features, lifecycle, rollout
from churnguard.services.champion import ChallengerProvider, ChampionProvider, load_predictor
from churnguard.services.console import ConsoleReads, ConsoleSessions
from churnguard.services.erasure import forget_customer
from churnguard.services.feedback import ingest_feedback_object, record_feedback
from churnguard.services.online_scoring import OnlineScoring
from churnguard.services.ports import Eraser, FeatureEngine, LabelledRowSource, ObjectStore
from churnguard.services.retraining import evaluate_candidate, run_drift_check
from churnguard.services.training_set import (
    EventFeatureRows,
    ServedPredictions,
    champion_schema,
    choose_source,
    training_data_for_run,
)
from churnguard.settings import ENV_OUTCOMES_TABLE, ENV_SCORES_TABLE, Settings, get_settings

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_codedeploy import CodeDeployClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_firehose import FirehoseClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient


def aws_client_config(settings: Settings) -> Config:
    """botocore config for every client we build: standard retries (exponential backoff with
    jitter on throttling, 5xx and connection errors), bounded attempts and timeouts, so a slow
    dependency costs seconds, not the whole Lambda timeout."""
    return Config(
        retries={"mode": "standard", "max_attempts": settings.aws_max_attempts},
        connect_timeout=3,
        read_timeout=10,
    )


# Without AWS_REGION / AWS_DEFAULT_REGION or a profile's region, the CLI and the demo use this one (as
# the emulator does) instead of failing with botocore's NoRegionError; Lambda always sets AWS_REGION.
DEFAULT_REGION = "us-east-1"
NO_CREDENTIALS = (
    "no AWS credentials found: for a local backend run `churn emulator` and paste its export lines; "
    "for AWS set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
)


def _default_session() -> boto3.session.Session:
    """boto3's default session (what ``boto3.client`` uses), created on first use."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    return boto3.DEFAULT_SESSION  # type: ignore[return-value]


def require_credentials() -> None:
    """One clear ConfigurationError when no AWS credentials can be found (the CLI calls it before any AWS
    work), instead of botocore's NoCredentialsError from inside the first request. Lambda always has them."""
    if _default_session().get_credentials() is None:
        raise ConfigurationError(NO_CREDENTIALS)


class Clients:
    """AWS clients, each built on first use and kept; ``given`` ones (moto-backed in tests) win."""

    def __init__(self, settings: Settings, **given: Any) -> None:
        self._settings = settings
        self._built: dict[str, Any] = {k: v for k, v in given.items() if v is not None}

    def _client(self, service: str, config: Config | None = None) -> Any:
        client = self._built.get(service)
        if client is None:
            session = _default_session()
            client = session.client(
                service,  # type: ignore[call-overload]
                region_name=session.region_name or DEFAULT_REGION,
                config=config or aws_client_config(self._settings),
            )
            self._built[service] = client
        return client

    @property
    def s3(self) -> S3Client:
        return self._client("s3")

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self._client("dynamodb")

    @property
    def stepfunctions(self) -> SFNClient:
        return self._client("stepfunctions")

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return self._client("secretsmanager")

    @property
    def sns(self) -> SNSClient:
        return self._client("sns")

    @property
    def events(self) -> EventBridgeClient:
        return self._client("events")

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return self._client("cloudwatch")

    @property
    def codedeploy(self) -> CodeDeployClient:
        return self._client("codedeploy")

    @property
    def lambda_(self) -> LambdaClient:
        return self._client("lambda")

    @property
    def cognito(self) -> Any:
        # cognito-idp (the console's sign-in); boto3-stubs for it are not installed.
        return self._client("cognito-idp")

    @property
    def firehose(self) -> FirehoseClient:
        # One attempt and tight timeouts: a slow stream must not hold up a prediction.
        return self._client("firehose", firehose_client_config())


@dataclass
class Services:
    """What (nearly) every function needs: settings, clients, the model store and the registry."""

    settings: Settings
    clients: Clients
    store: S3ModelStore
    registry: DynamoRegistry
    objects: S3ObjectStore
    _hash_key: bytes | None = field(default=None, repr=False)

    @property
    def reports_root(self) -> str:
        return f"s3://{self.store.bucket}/{self.settings.loop.reports_prefix}"

    @property
    def hash_key(self) -> bytes:
        """The customer-id hash key (domain/identity.py), read once: from Secrets Manager when the stack
        names a secret (CUSTOMER_ID_HASH_KEY_SECRET), else CUSTOMER_ID_HASH_KEY (a local default)."""
        if self._hash_key is None:
            self._hash_key = customer_hash_key(self.settings, self.clients)
        return self._hash_key


def customer_hash_key(settings: Settings, clients: Clients | None = None) -> bytes:
    if not settings.customer_id_hash_key_secret:
        return settings.customer_id_hash_key.encode()
    clients = clients or Clients(settings)
    return read_secret_bytes(clients.secretsmanager, settings.customer_id_hash_key_secret)


def build_object_store(uri: str, settings: Settings | None = None) -> ObjectStore:
    """Objects by URI: S3 for ``s3://bucket/key``, else local files (``churn train --data file.csv``)."""
    if uri.startswith("s3://"):
        return S3ObjectStore(Clients(settings or get_settings()).s3)
    return LocalObjectStore()


def build_services(
    settings: Settings | None = None, s3_client: Any = None, dynamodb_client: Any = None, **clients: Any
) -> Services:
    """The model store and registry over S3 and DynamoDB (ConfigurationError without MODEL_BUCKET and
    REGISTRY_TABLE). ``s3_client``/``dynamodb_client``/other clients by service name override ours."""
    settings = settings or get_settings()
    bucket, table = settings.require_storage()
    c = Clients(settings, s3=s3_client, dynamodb=dynamodb_client, **clients)
    return Services(
        settings=settings,
        clients=c,
        store=S3ModelStore(bucket, c.s3, settings.model_prefix),
        registry=DynamoRegistry(table, c.dynamodb, settings.model_name),
        objects=S3ObjectStore(c.s3),
    )


# ----- online scoring (the predict function, `churn serve`, the demo) --------------------------------
def build_provider(
    services: Services,
    on_fallback: Callable[[str], None] | None = None,
    on_integrity_failure: Callable[[str, str], None] | None = None,
) -> ChampionProvider:
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


def build_prediction_log(
    services: Services, on_drop: Callable[[int], None] | None = None
) -> BufferedPredictionLog | None:
    """The Firehose prediction log (PREDICTION_LOG_STREAM); locally, the same objects written straight
    into PREDICTION_LOG_BUCKET; None when neither is set (nothing is logged)."""
    s = services.settings
    if s.prediction_log_stream:
        return FirehosePredictionLog(s.prediction_log_stream, services.clients.firehose, on_drop=on_drop)
    if s.prediction_log_bucket:
        return BucketPredictionLog(s.prediction_log_bucket, services.clients.s3, on_drop=on_drop)
    return None


def install_shutdown_hook(services: Services, callback: Callable[[], Any]) -> bool:
    """Inside Lambda, run ``callback`` (quickly: ~500 ms) when the execution environment is shut down:
    a no-op internal extension makes Lambda send SIGTERM first (adapters/lambda_runtime.py). Outside
    Lambda (tests, ``churn serve``) nothing is installed; returns whether it was."""
    s = services.settings
    if not s.lambda_function_name:
        return False
    if s.lambda_runtime_api:
        register_shutdown_extension(s.lambda_runtime_api, "churnguard-shutdown-flush")
    return on_shutdown(callback)


def build_challenger(services: Services, provider: ChampionProvider) -> ChallengerProvider:
    """The canary/shadow challenger, read from the registry's ALIAS#canary every CHAMPION_TTL_SECONDS."""
    return ChallengerProvider(services.registry.canary, provider.version, ttl_s=services.settings.champion_ttl_s)


def build_online_scoring(
    services: Services, provider: ChampionProvider | None = None, prediction_log: Any = None
) -> OnlineScoring:
    s = services.settings
    provider = provider or build_provider(services)
    schema = Schema.load(s.schema_path) if s.schema_path else Schema.default()
    return OnlineScoring(
        schema,
        provider.champion,
        challenger=build_challenger(services, provider),
        log=prediction_log,
        hash_key=services.hash_key,
        fallback=provider.fallback_estimate,
        loaded_version=lambda: provider.loaded_version,
    )


def build_outcome_store(services: Services) -> DynamoOutcomeStore | None:
    """The outcomes table, or None when OUTCOMES_TABLE is unset."""
    table = services.settings.outcomes_table
    return DynamoOutcomeStore(table, services.clients.dynamodb) if table else None


def build_score_store(services: Services) -> DynamoScoreStore | None:
    """Customers' latest scores (SCORES_TABLE), or None when the stack has no score table."""
    table = services.settings.batch.scores_table
    return DynamoScoreStore(table, services.clients.dynamodb, services.hash_key) if table else None


def build_feedback_recorder(services: Services) -> Callable[[Mapping[str, Any]], dict[str, Any]] | None:
    """``POST /feedback``'s use case, or None without an outcomes table."""
    store = build_outcome_store(services)
    if store is None:
        return None
    return functools.partial(record_feedback, hash_key=services.hash_key, store=store, source="api")


def build_customer_score_lookup(services: Services) -> Callable[[str], dict[str, Any] | None] | None:
    store = build_score_store(services)
    return store.get if store is not None else None


# ----- the model lifecycle (train, promote functions; the CLI) ----------------------------------------
def build_training(services: Services) -> Callable[..., dict[str, Any]]:
    """``train(data_uri, schema_uri=None, config=None, lineage=None)``: train from S3, store, register."""
    return functools.partial(lifecycle.train_from_uri, services.objects, services.store, services.registry)


@dataclass(frozen=True)
class Promotion:
    """The promote function's actions, bound to the registry. Both promotions start the watch after them
    (ROLLBACK_WATCH_HOURS): ``promote(version, reason, now)`` an operator's, ``promote_candidate(version,
    evaluation, reason, now, expected_revision)`` the loop's (gate passed, never rolled back)."""

    promote: Callable[..., dict[str, Any]]
    rollback: Callable[..., dict[str, Any]]
    reject: Callable[..., dict[str, Any]]
    record_failure: Callable[..., dict[str, Any]]
    promote_candidate: Callable[..., dict[str, Any]]
    require_passed_gate: Callable[[str, Mapping[str, Any]], None] = lifecycle.require_passed_gate


def build_watch_store(services: Services) -> DynamoWatchStore:
    """The watch after the latest promotion, an item of the registry table."""
    return DynamoWatchStore(services.registry.table, services.clients.dynamodb, services.settings.model_name)


def build_promotion(services: Services) -> Promotion:
    r = services.registry
    watches, hours = build_watch_store(services), services.settings.retrain.watch_hours
    return Promotion(
        promote=functools.partial(rollout.promote_and_watch, r, watches, watch_hours=hours),
        rollback=functools.partial(lifecycle.rollback, r),
        reject=functools.partial(lifecycle.reject_candidate, r),
        record_failure=functools.partial(lifecycle.record_failure, r),
        promote_candidate=functools.partial(rollout.promote_candidate, r, watches, watch_hours=hours),
    )


@dataclass(frozen=True)
class CanaryStage:
    """The canary function's actions (services/rollout.py), bound to their adapters."""

    policy: CanaryPolicy
    start: Callable[..., dict[str, Any]]
    check: Callable[..., dict[str, Any]]
    finish: Callable[..., dict[str, Any]]


def build_canary_stage(services: Services) -> CanaryStage:
    """``start(version, policy, now, execution)``, ``check(canary_state, evaluation_report, now)``,
    ``finish(version, outcome, reasons, report)``; ``policy`` from CANARY_* settings."""
    r = services.registry
    return CanaryStage(
        policy=CanaryPolicy.from_dict(services.settings.retrain.canary or {}),
        start=functools.partial(rollout.start_canary, r),
        check=functools.partial(
            rollout.check_canary,
            r,
            build_prediction_log_reader(services),
            build_outcome_store(services),
            services.objects,
            CloudWatchServiceHealth(services.clients.cloudwatch, services.settings.retrain.metrics_namespace),
            reports_root=services.reports_root,
        ),
        finish=functools.partial(rollout.finish_canary, r),
    )


def build_rollback_on_alarm(services: Services) -> Callable[..., dict[str, Any]]:
    """``roll_back(alarm, now)``: the watch alarm's action (ALARM_TOPIC_ARN notified, events on EVENT_BUS_NAME)."""
    retrain = services.settings.retrain
    return functools.partial(
        rollout.roll_back_on_alarm,
        services.registry,
        build_watch_store(services),
        SnsNotifier(retrain.alarm_topic_arn, services.clients.sns) if retrain.alarm_topic_arn else None,
        EventBridgePublisher(retrain.event_bus, services.clients.events),
    )


# ----- the retraining loop (drift check, evaluate, feedback ingest) -----------------------------------
def _reports(services: Services, reports_dir: str | None) -> tuple[ObjectStore, str]:
    """Where reports go: ``reports_dir`` on this machine (``churn drift/evaluate --out``), else the bucket's
    reports prefix; data named by ``s3://`` is still read from S3 either way."""
    if reports_dir:
        return LocalOrS3ObjectStore(services.objects), reports_dir.rstrip("/") or "."
    return services.objects, services.reports_root


def build_drift_check(services: Services, reports_dir: str | None = None) -> Callable[..., dict[str, Any]]:
    """``check(now=..., trigger=None)``: the drift check over the prediction log, starting retraining when a
    trigger fires (``trigger="schedule"`` from the RetrainSchedule rule). ``reports_dir``: write its JSON and
    HTML report into this local folder instead of the bucket."""
    loop = services.settings.loop
    objects, reports_root = _reports(services, reports_dir)
    launcher = (
        StepFunctionsRetrainLauncher(loop.retrain_state_machine_arn, services.clients.stepfunctions)
        if loop.retrain_state_machine_arn
        else None
    )
    return functools.partial(
        run_drift_check,
        services.store,
        services.registry,
        build_prediction_log_reader(services),
        objects,
        reports_root,
        loop,
        outcomes=build_outcome_store(services),
        launcher=launcher,
        min_new_outcomes=services.settings.retrain.min_new_outcomes,
    )


def build_evaluation(services: Services, reports_dir: str | None = None) -> Callable[[str, str], dict[str, Any]]:
    """``evaluate(version, holdout_uri)``: the gate on fresh held-out rows, report in S3 (or ``reports_dir``,
    where the held-out rows may be a local file too)."""
    gate = GateConfig.from_dict(services.settings.loop.gate or {})
    objects, reports_root = _reports(services, reports_dir)
    return functools.partial(
        evaluate_candidate,
        services.store,
        services.registry,
        objects,
        gate=gate,
        reports_root=reports_root,
    )


def build_feedback_ingest(services: Services) -> Callable[[list[str]], dict[str, Any]]:
    """``ingest(candidate_uris)``: one dropped feedback CSV stored and reported (OUTCOMES_TABLE required)."""
    store = build_outcome_store(services)
    if store is None:
        raise ConfigurationError("set OUTCOMES_TABLE (the table of observed outcomes)")
    return functools.partial(ingest_feedback_object, services.objects, services.hash_key, store)


def build_training_set_step(services: Services) -> Callable[..., dict[str, Any]]:
    """``prepare(run_id, now, data=None, holdout=None)``: the BuildTrainingSet step. The run's given data
    (or the TRAINING_DATA_URI / HOLDOUT_DATA_URI override), else a fresh training set under
    ``s3://MODEL_BUCKET/TRAINING_SETS_PREFIX/<run_id>/``: from the event logs at recent cutoffs when the
    feature definition (FEATURE_DEFINITION_URI) exists and the champion reads its features, else from the
    prediction log joined to the outcomes (services/training_set.choose_source)."""
    loop, retrain, features = services.settings.loop, services.settings.retrain, services.settings.features
    outcomes = build_outcome_store(services)
    if outcomes is None:
        raise ConfigurationError("set OUTCOMES_TABLE: a fresh training set joins served predictions to outcomes")
    log = build_prediction_log_reader(services)
    plan = TrainingSetPlan.from_dict(
        {"max_prediction_age_days": loop.outcome_window_days, **(retrain.training_set or {})}
    )

    def source(schema: Schema) -> LabelledRowSource:
        definition, absent = None, "no feature definition (FEATURE_DEFINITION_URI unset)"
        if features.definition_uri:
            try:
                text = _objects_for(features.definition_uri, services.clients).read(features.definition_uri)
            except DataValidationError as e:  # none uploaded: this deployment scores snapshots
                absent = f"no feature definition ({e})"
            else:
                definition = event_features.parse_definition(text, features.definition_uri)
        return choose_source(
            schema,
            definition,
            served=lambda why: ServedPredictions(log, outcomes, why),
            events=lambda d, why: EventFeatureRows(
                d, build_feature_engine(services.settings, services.clients), plan.period_days, why
            ),
            no_definition=absent,
        )

    def prepare(run_id: str, now: datetime, data: str | None = None, holdout: str | None = None) -> dict[str, Any]:
        data = data or loop.training_data_uri
        if holdout and not data:
            raise DataValidationError(
                "the run names held-out data but no training data: pass both 'data' and 'holdout', or neither "
                "(a fresh training set then holds out its newest period)"
            )
        return training_data_for_run(
            source,
            services.objects,
            functools.partial(champion_schema, services.registry, services.store),
            plan,
            f"s3://{services.store.bucket}/{retrain.training_sets_prefix}/{run_id}",
            now,
            data=data,
            holdout=holdout or (loop.holdout_data_uri if data else None),
            original_uri=retrain.original_data_uri,
        )

    return prepare


# ----- code deploys (the PredictFunction's pre-traffic check) ------------------------------------------
@dataclass(frozen=True)
class DeployCheck:
    """``verify(customers, live_only=False)``: the new version (DEPLOY_CHECK_NEW_VERSION) against the live
    alias (DEPLOY_CHECK_LIVE), or the live alias against itself; ``report(deployment, hook, passed)``."""

    verify: Callable[..., dict[str, Any]]
    report: Callable[[str, str, bool], None]


def build_deploy_check(settings: Settings | None = None) -> DeployCheck:
    settings = settings or get_settings()
    cfg = settings.deploy_check
    if not cfg.new_version or not cfg.live:
        raise ConfigurationError(
            "set DEPLOY_CHECK_NEW_VERSION and DEPLOY_CHECK_LIVE (PredictFunction version and alias)"
        )
    clients = Clients(settings)
    live = LambdaInvoker(clients.lambda_, cfg.live)
    new = LambdaInvoker(clients.lambda_, cfg.new_version)

    def verify(customers: list[dict[str, Any]], live_only: bool = False) -> dict[str, Any]:
        return deploy_check.verify_new_version((live if live_only else new).invoke, live.invoke, customers)

    return DeployCheck(verify=verify, report=CodeDeployHookReporter(clients.codedeploy).report)


# ----- batch scoring ---------------------------------------------------------------------------------
@dataclass
class BatchServices:
    """The batch function's steps, bound to S3, the job and score tables, and one cached scorer."""

    services: Services
    io: S3BatchIO
    jobs: DynamoJobStore | None
    scores: DynamoScoreStore | None
    _scorers: dict[str, BatchScorer] = field(default_factory=dict)

    @property
    def settings(self) -> Any:
        return self.services.settings.batch

    def scorer_for(self, version: str) -> BatchScorer:
        """A BatchScorer for a model version, verified on load and kept for the container's life."""
        scorer = self._scorers.get(version)
        if scorer is None:
            predictor = load_predictor(self.services.registry, self.services.store, version)
            scorer = BatchScorer(predictor, num_threads=self.settings.threads)
            self._scorers = {version: scorer}  # one model at a time: a job uses one version
        return scorer

    def resolve(self, version: str | None) -> tuple[str, Schema]:
        """(version, schema): the named version, or the champion now."""
        if not version:
            alias = self.services.registry.alias()
            if not alias:
                raise ModelNotFoundError("no champion model has been promoted yet: name a model version")
            version = alias["version"]
        return version, self.scorer_for(version).schema

    def plan(self, job_id: str, job: Mapping[str, Any]) -> dict[str, Any]:
        return batch_jobs.plan_job(
            job_id,
            job.get("input"),  # type: ignore[arg-type]
            job.get("output"),  # type: ignore[arg-type]
            self.io,
            self.jobs,
            self.resolve,
            model_version=job.get("model_version"),
            options=job.get("options"),
            chunk_bytes=int(job.get("chunk_bytes") or self.settings.chunk_bytes),
        )

    def score_chunk(self, chunk_job: dict[str, Any]) -> dict[str, Any]:
        return batch_jobs.score_chunk(chunk_job, self.io, self.scorer_for, self.scores)

    def finish(self, job_id: str, plan: dict[str, Any], chunks: list[dict[str, Any]]) -> dict[str, Any]:
        return batch_jobs.finish_job(job_id, plan, chunks, self.io, self.jobs)

    def fail(self, job_id: str, error: dict[str, Any] | None) -> dict[str, Any]:
        return batch_jobs.fail_job(job_id, error, self.jobs)

    def score_local(
        self,
        input_path: str,
        output_dir: str,
        version: str | None = None,
        options: dict[str, Any] | None = None,
        chunk_bytes: int = 0,
        progress: Callable[[str, int, int], None] | None = None,
        store_scores: bool = False,
    ) -> dict[str, Any]:
        """``churn score --local``: local files through the state machine's own steps; ``store_scores``
        also writes each customer's score to the score table (SCORES_TABLE), as a deployed job does."""
        version, _ = self.resolve(version)
        if store_scores and self.scores is None:
            raise ConfigurationError(f"set {ENV_SCORES_TABLE} (the table of stored customer scores) to store scores")
        return batch_jobs.score_local(
            LocalBatchIO(),
            input_path,
            output_dir,
            self.scorer_for(version),
            options,
            chunk_bytes=chunk_bytes or self.settings.chunk_bytes,
            progress=progress,
            scores=self.scores if store_scores else None,
        )

    def job_runner(self, state_machine_arn: str) -> StepFunctionsJobRunner:
        """Starts and follows jobs of the BatchScoring state machine (``churn score``)."""
        return StepFunctionsJobRunner(state_machine_arn, self.services.clients.stepfunctions)


def build_batch(services: Services) -> BatchServices:
    bs = services.settings.batch
    return BatchServices(
        services=services,
        io=S3BatchIO(services.clients.s3),
        jobs=DynamoJobStore(bs.jobs_table, services.clients.dynamodb) if bs.jobs_table else None,
        scores=build_score_store(services),
    )


# ----- erasure (`churn forget`) ----------------------------------------------------------------------
def build_erasers(services: Services) -> list[Eraser]:
    """Every store ``churn forget`` must erase from: outcomes, stored scores and the prediction log in
    the model bucket, and the feature table where FEATURES_TABLE is set. A store left unconfigured is a
    ConfigurationError naming its variable, never a store silently skipped."""
    outcomes, scores = services.settings.outcomes_table, services.settings.batch.scores_table
    if not outcomes or not scores:
        missing = [
            f"{name} (the stack's {output} output)"
            for name, output, value in (
                (ENV_OUTCOMES_TABLE, "OutcomesTableName", outcomes),
                (ENV_SCORES_TABLE, "ScoresTableName", scores),
            )
            if not value
        ]
        raise ConfigurationError(
            f"nothing erased: an erasure must reach every store holding customer records; set {' and '.join(missing)}"
        )
    erasers: list[Eraser] = [
        OutcomeEraser(outcomes, services.clients.dynamodb),
        ScoreEraser(scores, services.clients.dynamodb),
        PredictionLogEraser(services.store.bucket, services.clients.s3),
    ]
    # Customers' latest feature vectors, in deployments that compute features from event logs.
    features = build_feature_store(services)
    if features is not None:
        erasers.append(features)
    return erasers


def build_prediction_log_reader(services: Services) -> S3PredictionLogReader:
    return S3PredictionLogReader(services.store.bucket, services.clients.s3)


def build_forget(services: Services) -> Callable[[str], ErasureReport]:
    return lambda customer_id: forget_customer(customer_id, services.hash_key, build_erasers(services))


# ----- features from event logs (churn features build, the FeatureRefresh function, predict by id) ----
def build_feature_engine(settings: Settings, clients: Clients | None = None) -> FeatureEngine:
    """DuckDB over the definition's files (S3 objects downloaded with our S3 client first).

    Imported here, not at the top: duckdb ships only in the feature function's package and the CLI's
    environment, not in the other functions'.
    """
    from churnguard.adapters.duckdb_engine import DuckDBFeatureEngine

    f = settings.features
    return DuckDBFeatureEngine(
        s3_client=(clients or Clients(settings)).s3,
        staging_dir=f.staging_dir,
        threads=f.engine_threads,
        memory_limit_mb=f.engine_memory_mb,
    )


def build_feature_store(services: Services) -> DynamoFeatureStore | None:
    """Customers' latest feature vectors (FEATURES_TABLE), or None when the stack has no feature table."""
    table = services.settings.features.table
    return DynamoFeatureStore(table, services.clients.dynamodb, services.hash_key) if table else None


def _objects_for(uri: str, clients: Clients) -> ObjectStore:
    return S3ObjectStore(clients.s3) if uri.startswith("s3://") else LocalObjectStore()


def build_training_set_builder(
    settings: Settings | None = None, clients: Clients | None = None
) -> Callable[..., dict[str, Any]]:
    """``build(definition_uri, cutoffs, out, now=None)``: the offline feature build, local paths or S3.

    Needs no bucket or table settings (``churn features build`` runs on a laptop); the retraining loop
    can call the same use case (services.event_features.build_training_set) at recent cutoffs.
    """
    settings = settings or get_settings()
    clients = clients or Clients(settings)
    engine = build_feature_engine(settings, clients)

    def build(
        definition_uri: str, cutoffs: Sequence[datetime], out: str, now: datetime | None = None
    ) -> dict[str, Any]:
        definition = event_features.load_definition(definition_uri, _objects_for(definition_uri, clients))
        return event_features.build_training_set(definition, cutoffs, out, engine, _objects_for(out, clients), now)

    return build


@dataclass(frozen=True)
class FeatureRefresh:
    """The FeatureRefresh function's actions: ``refresh(now)`` (the schedule) and ``build(...)`` (training sets)."""

    refresh: Callable[..., dict[str, Any]]
    build: Callable[..., dict[str, Any]]


def build_feature_refresh(services: Services, provider: ChampionProvider | None = None) -> FeatureRefresh:
    """``refresh(now, definition_uri=None)``: every active customer's features as of ``now`` into FEATURES_TABLE,
    scored by the champion into SCORES_TABLE; the definition is re-read each time (FEATURE_DEFINITION_URI)."""
    settings = services.settings
    store = build_feature_store(services)
    if store is None:
        raise ConfigurationError("set FEATURES_TABLE (the table of customers' latest feature vectors)")
    engine = build_feature_engine(settings, services.clients)
    scores = build_score_store(services)
    champion = (provider or build_provider(services)).champion

    def refresh(now: datetime, definition_uri: str | None = None) -> dict[str, Any]:
        uri = definition_uri or settings.features.require_definition()
        definition = event_features.load_definition(uri, _objects_for(uri, services.clients))
        return event_features.refresh_online_features(definition, engine, store, now, champion=champion, scores=scores)

    builder = build_training_set_builder(settings, services.clients)

    def build(
        cutoffs: Sequence[datetime], out: str, definition_uri: str | None = None, now: datetime | None = None
    ) -> dict[str, Any]:
        return builder(definition_uri or settings.features.require_definition(), cutoffs, out, now)

    return FeatureRefresh(refresh=refresh, build=build)


# ----- the console and its dashboard routes (the console function, `churn console`) ------------------
def build_console(services: Services) -> ConsoleReads:
    """The console's read models over the registry, bundles, reports, jobs, scores, log and outcomes."""
    s = services.settings
    batch = s.batch
    return ConsoleReads(
        registry=services.registry,
        store=services.store,
        reports=S3ReportArchive(services.store.bucket, services.clients.s3, s.loop.reports_prefix),
        log=build_prediction_log_reader(services),
        hash_key=services.hash_key,
        jobs=DynamoJobStore(batch.jobs_table, services.clients.dynamodb) if batch.jobs_table else None,
        outputs=S3BatchIO(services.clients.s3),
        scores=build_score_store(services),
        outcomes=build_outcome_store(services),
        executions=StepFunctionsRetrainLauncher(s.loop.retrain_state_machine_arn, services.clients.stepfunctions)
        if s.loop.retrain_state_machine_arn
        else None,
        max_entries=s.console.max_call_list,
        history_days=s.console.history_days,
        canary_days=s.console.canary_days,
    )


@dataclass(frozen=True)
class ConsoleSignIn:
    """People's sign-in (the Cognito user pool's app client) and the check of a session's token."""

    sign_in: Callable[[str, str], dict[str, Any]]
    set_new_password: Callable[[str, str, str], dict[str, Any]]
    sessions: ConsoleSessions


def build_console_sign_in(services: Services) -> ConsoleSignIn | None:
    """Sign-in through CONSOLE_USER_POOL_CLIENT_ID, or None when unset (only `churn console` allows that)."""
    client_id = services.settings.console.user_pool_client_id
    if not client_id:
        return None
    pool = CognitoSignIn(client_id, services.clients.cognito)
    return ConsoleSignIn(pool.sign_in, pool.set_new_password, ConsoleSessions(pool.user_of))
