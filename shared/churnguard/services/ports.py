"""The ports: what the use cases need from the outside world, as small protocols.

Services are typed against these; ``churnguard.adapters`` implements them for AWS (and local files),
``churnguard.bootstrap`` chooses which, and unit tests may hand in in-memory fakes. Each method
raises the domain's errors (``StorageError`` for a failing store, ``ModelNotFoundError`` ...),
never a library's.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from churnguard.domain.bundle import ModelBundle
from churnguard.domain.event_features import FeatureDefinition, FeatureFrame
from churnguard.domain.model_registry import ModelVersion
from churnguard.domain.outcomes import Outcome
from churnguard.domain.training_set import LabelledRow
from churnguard.domain.watch import Watch


class ModelStore(Protocol):
    """Model bundles by version (S3: ``models/{version}/``)."""

    def put(self, bundle: ModelBundle) -> dict[str, Any]:
        """Store a bundle; ``{"location", "manifest_sha256", "files": {name: sha256}}``."""
        ...

    def get(self, version: str, manifest_sha256: str | None) -> ModelBundle:
        """Read and verify a bundle (ArtifactIntegrityError on any mismatch)."""
        ...

    def delete(self, version: str) -> None: ...

    def bundles(self) -> dict[str, datetime]:
        """Every version with stored objects, with when its newest object was written."""
        ...


class Registry(Protocol):
    """Model versions, the champion alias and the canary (DynamoDB)."""

    def register(self, mv: ModelVersion) -> ModelVersion: ...

    def get(self, version: str) -> ModelVersion: ...

    def list(self) -> list[ModelVersion]: ...

    def set_status(
        self, version: str, status: str, reason: str | None = None, extra: dict[str, Any] | None = None
    ) -> None: ...

    def alias(self, name: str = ...) -> dict[str, Any] | None: ...

    def champion(self) -> ModelVersion: ...

    def canary(self) -> dict[str, Any] | None: ...

    def set_canary(self, version: str, share: float, shadow: bool = False, reason: str = ...) -> dict[str, Any]: ...

    def clear_canary(self) -> dict[str, Any] | None: ...

    def promote(self, version: str, reason: str = ..., expected_revision: int | None = None) -> dict[str, Any]: ...

    def rollback(self, reason: str = ..., expected_revision: int | None = None) -> dict[str, Any]: ...


class ObjectStore(Protocol):
    """Whole objects by URI: training and held-out data, reports (S3 ``s3://bucket/key``, or local paths)."""

    def read(self, uri: str) -> bytes:
        """The object's bytes; DataValidationError when it does not exist."""
        ...

    def write(self, uri: str, body: bytes, content_type: str = ...) -> None: ...


class PredictionLogSource(Protocol):
    """The prediction log, read back day by day (``predictions/dt=YYYY-MM-DD/``)."""

    def records(self, start: date, end: date) -> Iterator[dict[str, Any]]: ...


class PredictionLogSink(Protocol):
    """Where served predictions are logged; never raises, counts what it loses."""

    def add(self, records: Sequence[Mapping[str, Any]]) -> None: ...

    def flush(self) -> int: ...


class RetrainLauncher(Protocol):
    """Starts the retraining state machine unless a run is in progress."""

    def start(self, execution_input: Mapping[str, Any], name: str) -> dict[str, Any]: ...


class OutcomeStore(Protocol):
    """Observed outcomes, stored once per customer key and date."""

    def record(self, outcome: Outcome, source: str) -> bool:
        """True if stored now, False if the same outcome was already there; OutcomeConflictError if opposite."""
        ...

    def record_many(self, outcomes: Iterable[Outcome], source: str) -> dict[str, Any]: ...

    def outcomes(self, since: date | None = None, until: date | None = None) -> Iterator[Outcome]: ...


class ScoreStore(Protocol):
    """Customers' latest batch scores, keyed by the customer id's keyed hash."""

    def put_many(
        self, rows: Iterable[tuple[str, float, bool, str, str]], job_id: str, scored_at: str, model_version: str
    ) -> int: ...

    def get(self, customer_id: str) -> dict[str, Any] | None: ...


class BatchIO(Protocol):
    """Batch inputs and outputs: list input objects, read a chunk's records, write outputs (S3 or local)."""

    def list_inputs(self, uri: str) -> list[tuple[str, int]]: ...

    def header(self, uri: str) -> bytes: ...

    def read_lines(self, uri: str, start: int, end: int, size: int) -> bytes: ...

    def put(self, uri: str, body: bytes, content_type: str = ...) -> None: ...

    def locate(self, uri: str) -> dict[str, str]:
        """Where a Step Functions ItemReader finds an object (``{"bucket", "key"}`` in S3); a malformed
        location raises DataValidationError."""
        ...


class JobStore(Protocol):
    """Batch job records."""

    def put(self, job_id: str, record: dict[str, Any]) -> dict[str, Any]: ...

    def update(self, job_id: str, changes: dict[str, Any]) -> dict[str, Any]: ...

    def get(self, job_id: str) -> dict[str, Any] | None: ...


class Eraser(Protocol):
    """One store's erasure of one customer: removes every record of ``customer_key`` and says how many."""

    name: str

    def check(self) -> None:
        """Raise a ChurnGuardError when the store cannot be reached (checked before anything is erased)."""
        ...

    def erase(self, customer_key: str) -> dict[str, Any]:
        """``{"removed": n, ...details}``; raises a ChurnGuardError when the store fails."""
        ...


class LabelledRowSource(Protocol):
    """Where a fresh training set's labelled rows come from: features as known before each outcome
    observed from ``start`` to ``end``, and the outcome (services/training_set: ServedPredictions reads
    the prediction log and the outcomes, EventFeatureRows computes features from event logs at cutoffs)."""

    name: str
    # Rows built at cutoffs, a customer in several: the training CSV carries cutoff/label_end for time-ordered CV.
    time_ordered: bool

    def labelled_rows(self, start: date, end: date, max_prediction_age_days: int) -> list[LabelledRow]: ...

    def why_none(self, window_days: int) -> str:
        """Why the last ``labelled_rows`` call found nothing, in the source's own terms."""
        ...

    def describe(self) -> dict[str, Any]:
        """Why this source was chosen and what it read (for the training set's report)."""
        ...


class WatchStore(Protocol):
    """The watch after the latest promotion (domain/watch.py): one record per model."""

    def start(self, watch: Watch) -> None:
        """Record the watch of a promotion, replacing the previous one (a newer promotion supersedes it)."""
        ...

    def current(self) -> Watch | None: ...

    def end(self, watch: Watch, outcome: str, detail: str, at: str) -> bool:
        """Mark ``watch`` ended, only if it is still the current, unended one; False when it was not."""
        ...


class Notifier(Protocol):
    """Tells operators (SNS AlarmTopic)."""

    def notify(self, subject: str, message: Mapping[str, Any]) -> None: ...


class EventPublisher(Protocol):
    """Publishes the loop's events (EventBridge), ``source`` churnguard.retraining."""

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None: ...


class ServiceHealth(Protocol):
    """What the predict function answered over a time window (CloudWatch metrics)."""

    def counts(self, start: datetime, end: datetime) -> dict[str, float] | None:
        """``{"requests", "errors", "fallbacks"}``, or None when nothing was recorded for the window."""
        ...


class FeatureEngine(Protocol):
    """Runs a feature definition over its customer table and event logs (DuckDB over files)."""

    def compute(
        self,
        definition: FeatureDefinition,
        cutoffs: Sequence[datetime],
        as_of: datetime,
        training_csv: str | None = None,
    ) -> FeatureFrame:
        """Every active customer's row at every cutoff, known at ``as_of``; with ``training_csv`` (a local
        path) the training CSV is written there too. DataValidationError names bad data or definitions."""
        ...

    def sql(self, definition: FeatureDefinition) -> str:
        """The statements the definition compiles to against its data's column types."""
        ...


class FeatureStore(Protocol):
    """Customers' latest feature vectors for online scoring, keyed by the customer id's keyed hash."""

    def put_many(self, vectors: Iterable[tuple[str, Mapping[str, Any]]], as_of: str, definition_sha256: str) -> int:
        """Upsert (customer id, {feature: value}) vectors computed as of ``as_of``; returns how many."""
        ...

    def get(self, customer_id: str) -> dict[str, Any] | None:
        """``{"features": {...}, "as_of", "definition_sha256"}``, or None for a customer with no vector."""
        ...

    def remove_stale(self, as_of: str) -> int:
        """Remove the vectors not written by the refresh as of ``as_of`` (customers no longer active)."""
        ...


# ----- read models of the console (services/console.py) ----------------------------------------------
class JobHistory(Protocol):
    """Batch job records, newest first (the jobs table)."""

    def recent(self, limit: int = ...) -> list[dict[str, Any]]: ...


class JobOutputs(Protocol):
    """A finished batch job's score files (``{output}/scores/part-*.csv``), each as bytes."""

    def score_files(self, output: str) -> Iterator[bytes]: ...


class ReportArchive(Protocol):
    """Drift and evaluation reports as the loop stored them (``reports/{kind}/...json``)."""

    def latest(self, kind: str) -> dict[str, Any] | None:
        """The newest report of ``kind`` (``drift`` or ``evaluation``) with its ``uri``; None when none exists."""
        ...

    def evaluation(self, version: str) -> dict[str, Any] | None:
        """The evaluation report of a version, or None."""
        ...


class RetrainExecutions(Protocol):
    """Runs of the retraining state machine, newest first: ``{"name", "status", "started_at", "stopped_at"}``."""

    def recent(self, limit: int = ...) -> list[dict[str, Any]]: ...
