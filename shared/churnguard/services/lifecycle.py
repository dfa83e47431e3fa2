"""Use cases: one function each, taking primitives plus the adapters they need.

summary = train_and_register(csv_bytes, schema, TrainingConfig(), store, registry, source="s3://b/k.csv")
promote(registry, summary["version"], reason="manual")
"""

from __future__ import annotations

import io
import platform
import secrets
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from churnguard.domain.bundle import ModelBundle, sha256_hex
from churnguard.domain.errors import DataValidationError, GateNotPassedError, ModelNotFoundError, StorageError
from churnguard.domain.model_registry import VERSION_ID, ModelVersion
from churnguard.domain.predictor import RiskBands
from churnguard.domain.schema import Schema
from churnguard.domain.training import Progress, TrainingConfig, TrainingResult, read_csv, train
from churnguard.services.ports import ModelStore, ObjectStore, Registry


def new_version_id() -> str:
    return datetime.now(UTC).strftime("v%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def library_versions() -> dict[str, str]:
    import lightgbm
    import numpy

    out = {"python": platform.python_version(), "lightgbm": lightgbm.__version__, "numpy": numpy.__version__}
    try:
        import sklearn

        out["scikit-learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover
        pass
    return out


def build_bundle(version: str, result: TrainingResult, schema: Schema, data_sha256: str, source: str) -> ModelBundle:
    bands = RiskBands.for_threshold(result.threshold)
    metadata: dict[str, Any] = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "schema": schema.to_dict(),
        "schema_sha256": schema.sha256,
        "metrics": result.metrics,
        "threshold": result.threshold,
        "threshold_method": result.threshold_method,
        "risk_bands": {"medium": bands.medium, "high": bands.high},
        "calibration": result.calibration.to_dict(),
        "reference_profile": result.profile,
        "feature_importance": result.feature_importance,
        "training": {
            "data_sha256": data_sha256,
            "source": source,
            "rows": result.metrics["rows"],
            "num_rounds": result.num_rounds,
            "config": result.config,
            "model_selection": result.model_selection,
            "seconds": round(result.seconds, 2),
            "warnings": result.warnings,
        },
        "libraries": library_versions(),
    }
    return ModelBundle(version=version, model_text=result.model_text, metadata=metadata)


def train_from_bytes(
    data: bytes, schema: Schema, config: TrainingConfig | None = None, progress: Progress | None = None
) -> TrainingResult:
    try:
        df = read_csv(io.BytesIO(data))
    except DataValidationError:
        raise
    except Exception as e:  # pandas raises many types for unreadable CSV
        raise DataValidationError(f"training data is not a readable CSV: {e}") from e
    return train(df, schema, config, progress)


def train_and_register(
    data: bytes,
    schema: Schema,
    config: TrainingConfig | None,
    store: ModelStore,
    registry: Registry,
    source: str,
    lineage: dict[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train on CSV bytes, store the bundle, register a candidate. Nothing is written if the data is bad."""
    result = train_from_bytes(data, schema, config, progress)
    version = new_version_id()
    data_sha = sha256_hex(data)
    bundle = build_bundle(version, result, schema, data_sha, source)
    stored = store.put(bundle)
    mv = ModelVersion(
        version=version,
        status="candidate",
        location=stored["location"],
        manifest_sha256=stored["manifest_sha256"],
        checksums=stored["files"],
        metrics={k: v for k, v in result.metrics.items() if k != "folds"},
        lineage={"data_source": source, "data_sha256": data_sha, "schema_sha256": schema.sha256, **(lineage or {})},
    )
    try:
        registry.register(mv)
    except StorageError:
        store.delete(version)  # leave no orphan bundle behind a failed registration
        raise
    return {
        "version": version,
        "status": mv.status,
        "location": mv.location,
        "metrics": mv.metrics,
        "model_selection": result.model_selection,
        "warnings": result.warnings,
        "seconds": round(result.seconds, 2),
    }


def train_from_uri(
    objects: ObjectStore,
    store: ModelStore,
    registry: Registry,
    data_uri: str,
    schema_uri: str | None = None,
    config: Mapping[str, Any] | None = None,
    lineage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The train function's use case: training data (and optionally a schema YAML) read by URI, then
    ``train_and_register``. Bad data raises DataValidationError before anything is written."""
    schema = Schema.from_yaml(objects.read(schema_uri).decode(), source=schema_uri) if schema_uri else Schema.default()
    training_config = TrainingConfig.from_dict(dict(config or {}))
    data = objects.read(data_uri)
    return train_and_register(data, schema, training_config, store, registry, source=data_uri, lineage=lineage)


def promote(
    registry: Registry, version: str, reason: str = "manual", expected_revision: int | None = None
) -> dict[str, Any]:
    """``expected_revision``: switch only if the champion alias is still at that revision (the one the
    caller decided on), so of several concurrent promoters exactly one wins."""
    return registry.promote(version, reason=reason, expected_revision=expected_revision)


def rollback(registry: Registry, reason: str = "rollback", expected_revision: int | None = None) -> dict[str, Any]:
    return registry.rollback(reason=reason, expected_revision=expected_revision)


# ----- the end of a retraining run ---------------------------------------------------------------
def require_passed_gate(version: str, evaluation: Mapping[str, Any]) -> None:
    """Raise GateNotPassedError unless ``evaluation`` passed and is about ``version``."""
    if evaluation.get("version") != version:
        raise GateNotPassedError(f"the evaluation given is for {evaluation.get('version')!r}, not {version!r}")
    if evaluation.get("passed") is not True:
        reasons = "; ".join(evaluation.get("reasons") or []) or "no reason recorded"
        raise GateNotPassedError(f"{version} did not pass the promotion gate: {reasons}")


def reject_candidate(
    registry: Registry, version: str, reasons: Iterable[str], report: str | None = None
) -> dict[str, Any]:
    reason = "rejected by the promotion gate: " + "; ".join(reasons)
    if report:
        reason += f" (report {report})"
    registry.set_status(version, "rejected", reason=reason[:2000])
    return {"version": version, "status": "rejected", "reason": reason[:2000]}


def record_failure(
    registry: Registry, version: str | None, error: Mapping[str, Any] | None, execution: str | None = None
) -> dict[str, Any]:
    """Mark a failed run's candidate ``failed``. A version that already serves (the failure came after
    the switch, e.g. publishing the event) is left alone: the champion must stay consistent."""
    error = error or {}
    reason = (
        f"retraining run {execution or '?'} failed: {error.get('Error', 'unknown error')}: "
        f"{str(error.get('Cause', ''))[:1500]}"
    )
    if not version:
        return {"version": None, "marked": False, "reason": reason}
    try:
        current = registry.get(version)
    except ModelNotFoundError:
        return {"version": version, "marked": False, "reason": reason}
    if current.status != "candidate":
        return {"version": version, "marked": False, "status": current.status, "reason": reason}
    canary = registry.canary()
    if canary and canary.get("version") == version:
        registry.clear_canary()  # a run that failed during its canary stage must not leave the canary serving
    registry.set_status(version, "failed", reason=reason)
    return {"version": version, "marked": True, "status": "failed", "reason": reason}


# ----- housekeeping -------------------------------------------------------------------------------------
def collect_orphaned_bundles(
    store: ModelStore, registry: Registry, older_than: timedelta, now: datetime, dry_run: bool = False
) -> dict[str, Any]:
    """Remove stored bundles that no registry record names: what a training run leaves when it is killed
    between storing its bundle and registering it (a failed write or registration cleans up after
    itself). Only bundles last written ``older_than`` ago go: a run in progress registers seconds
    after storing. Folders whose name is not a version id are reported and left alone.
    """
    registered = {m.version for m in registry.list()}
    found = store.bundles()
    orphaned, recent, unrecognised = [], [], []
    for version, written in sorted(found.items()):
        if version in registered:
            continue
        if not VERSION_ID.fullmatch(version):
            unrecognised.append(version)
        elif now - written < older_than:
            recent.append(version)
        else:
            orphaned.append(version)
            if not dry_run:
                store.delete(version)
    return {
        "bundles": len(found),
        "registered": len(registered & set(found)),
        "orphaned": orphaned,
        "removed": [] if dry_run else orphaned,
        "recent": recent,
        "unrecognised": unrecognised,
        "dry_run": dry_run,
    }
