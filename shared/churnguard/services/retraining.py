"""Use cases of the retraining loop: the drift check, the evaluate step, and recording a rejected or
failed run. Each takes primitives plus the adapters it needs; the handlers build those once.

    summary = run_drift_check(store, registry, reader, s3, bucket, loop, outcomes=store.outcomes, launcher=launcher)
    result = evaluate_candidate(store, registry, s3, bucket, "v2", "s3://b/holdout.csv", GateConfig())
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import numpy as np

from churnguard.adapters.model_store import S3ModelStore
from churnguard.adapters.registry import DynamoRegistry
from churnguard.adapters.s3_objects import read_s3_uri, write_s3_uri
from churnguard.domain import reports
from churnguard.domain.bundle import sha256_hex
from churnguard.domain.drift import DriftThresholds, Outcome, check_prediction_log
from churnguard.domain.errors import ChurnGuardError, DataValidationError, ModelNotFoundError, RecordValidationError
from churnguard.domain.evaluation import GateConfig, evaluate
from churnguard.settings import LoopSettings


class GateNotPassedError(ChurnGuardError):
    """A promotion was asked for a version whose evaluation did not pass the gate."""


def _now() -> datetime:
    return datetime.now(UTC)


# ----- drift -------------------------------------------------------------------------------------
def run_drift_check(
    store: S3ModelStore,
    registry: DynamoRegistry,
    log_reader: Any,
    s3: Any,
    bucket: str,
    loop: LoopSettings,
    outcomes: Callable[[date], Iterable[Outcome]] | None = None,
    launcher: Any = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check the recent prediction log against the champion; write the report; start retraining if due.

    ``outcomes(since)`` yields (customer_key, churned, observed_date); ``launcher`` starts the state
    machine (None: report only). Returns a small summary for logs and metrics.
    """
    now = now or _now()
    try:
        champion = registry.champion()
    except ModelNotFoundError:
        return {"decision": "no_champion", "reasons": ["no champion has been promoted: nothing to check"]}
    bundle = store.get(champion.version, champion.manifest_sha256)
    th = DriftThresholds.from_dict(loop.drift_thresholds or {})
    end = now.date()
    feature_start = end - timedelta(days=loop.drift_window_days - 1)
    labelled = list(outcomes(end - timedelta(days=loop.outcome_window_days))) if outcomes else []
    read_start = min(feature_start, end - timedelta(days=loop.outcome_window_days - 1)) if labelled else feature_start
    records = _read_newest_first(log_reader, read_start, end, loop.drift_max_rows)
    window = {"start": feature_start.isoformat(), "end": end.isoformat()}
    report = check_prediction_log(
        bundle.metadata,
        records,
        labelled,
        th,
        since=datetime.combine(feature_start, time.min, tzinfo=UTC),
        window=window,
        max_outcome_age_days=loop.outcome_window_days,
    )
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    base = f"s3://{bucket}/{loop.reports_prefix}/drift/{end.isoformat()}/{stamp}-{champion.version}"
    body = report.to_dict()
    write_s3_uri(s3, base + ".json", reports.to_json(body), "application/json")
    write_s3_uri(s3, base + ".html", reports.drift_html(body).encode(), "text/html; charset=utf-8")
    summary: dict[str, Any] = {
        "decision": report.decision,
        "reasons": report.reasons,
        "champion": champion.version,
        "rows": report.rows,
        "drifted_features": report.drifted_features,
        "max_psi": round(report.max_psi, 4),
        "score_psi": round(report.score.psi, 4) if report.score else None,
        "performance": report.performance.status if report.performance else "no_outcomes",
        "report": base + ".json",
        "html": base + ".html",
    }
    if report.decision == "retrain":
        summary["retraining"] = _start_retraining(launcher, loop, champion.lineage, base + ".json", now)
    return summary


def _read_newest_first(reader: Any, start: date, end: date, limit: int) -> list[dict[str, Any]]:
    # Day by day from the newest, so a capped read keeps the most recent traffic.
    out: list[dict[str, Any]] = []
    day = end
    while day >= start and len(out) < limit:
        for rec in reader.records(day, day):
            if isinstance(rec, dict):
                out.append(rec)
            if len(out) >= limit:
                break
        day -= timedelta(days=1)
    return out


def _start_retraining(
    launcher: Any, loop: LoopSettings, lineage: Mapping[str, Any], report_uri: str, now: datetime
) -> dict[str, Any]:
    if launcher is None:
        return {"started": False, "reason": "no retraining state machine configured (RETRAIN_STATE_MACHINE_ARN)"}
    data = loop.training_data_uri or lineage.get("data_source")
    if not isinstance(data, str) or not data.startswith("s3://"):
        return {"started": False, "reason": "no training data location: set TRAINING_DATA_URI"}
    execution_input = {"reason": "drift", "drift_report": report_uri, "data": data}
    if loop.holdout_data_uri:
        execution_input["holdout"] = loop.holdout_data_uri
    name = f"drift-{now.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
    return {**launcher.start(execution_input, name=name), "input": execution_input}


# ----- evaluation --------------------------------------------------------------------------------
def read_labelled_csv(data: bytes, schema: Any, encoder: Any) -> tuple[np.ndarray, np.ndarray]:
    """Encode a labelled CSV (raw strings, as training reads it) without pandas; bad rows are named."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataValidationError(f"held-out data is not a readable CSV: {e}") from e
    if not rows:
        raise DataValidationError("held-out data has no rows")
    missing = [c for c in [schema.target, *schema.feature_names] if c not in rows[0]]
    if missing:
        raise DataValidationError(f"held-out data lacks columns: {', '.join(missing)}")
    X = np.empty((len(rows), encoder.n_features))
    problems: list[str] = []
    for i, r in enumerate(rows):
        try:
            encoder.encode_record(r, out=X[i])
        except RecordValidationError as e:
            problems.append(f"row {i + 2}: {e}")
    if problems:
        raise DataValidationError(f"held-out data breaks the schema in {len(problems)} rows; first: {problems[0]}")
    y = np.array([(r[schema.target] or "").strip() == schema.positive_label for r in rows])
    return X, y


def evaluate_candidate(
    store: S3ModelStore,
    registry: DynamoRegistry,
    s3: Any,
    bucket: str,
    version: str,
    holdout_uri: str,
    gate: GateConfig | None = None,
    reports_prefix: str = "reports",
) -> dict[str, Any]:
    """Score the candidate and the champion on the same held-out rows, decide the gate, write the report
    (JSON + HTML) and link it from the candidate's registry entry."""
    from churnguard.domain.predictor import Predictor

    gate = gate or GateConfig()
    candidate = registry.get(version)
    challenger = Predictor(store.get(version, candidate.manifest_sha256))
    alias = registry.alias()
    champion = None
    if alias and alias["version"] != version:
        current = registry.get(alias["version"])
        champion = Predictor(store.get(current.version, current.manifest_sha256))
    data = read_s3_uri(s3, holdout_uri)
    if sha256_hex(data) == candidate.lineage.get("data_sha256"):
        raise DataValidationError(
            f"{holdout_uri} is the data {version} was trained on: evaluation needs fresh held-out rows"
        )
    X, y = read_labelled_csv(data, challenger.schema, challenger.encoder)
    p_challenger = challenger.probabilities(X)
    p_champion = None
    if champion is not None:
        Xc = (
            X
            if champion.schema.sha256 == challenger.schema.sha256
            else read_labelled_csv(data, champion.schema, champion.encoder)[0]
        )
        p_champion = champion.probabilities(Xc)
    result = evaluate(
        y,
        p_challenger,
        p_champion,
        gate,
        thresholds=(challenger.threshold, champion.threshold if champion else None),
        feature_importance=challenger.metadata.get("feature_importance"),
    )
    base = f"s3://{bucket}/{reports_prefix}/evaluation/{version}/evaluation"
    body = {
        "version": version,
        "champion": champion.version if champion else None,
        "holdout": holdout_uri,
        **result.to_dict(),
    }
    write_s3_uri(s3, base + ".json", reports.to_json(body), "application/json")
    write_s3_uri(
        s3,
        base + ".html",
        reports.evaluation_html(body, version, champion.version if champion else None).encode(),
        "text/html; charset=utf-8",
    )
    summary = {
        **result.summary(),
        "version": version,
        "champion": champion.version if champion else None,
        "report": base + ".json",
        "html": base + ".html",
    }
    if candidate.status == "candidate":
        verdict = "passed" if result.passed else "failed"
        registry.set_status(
            version, "candidate", reason=f"evaluation {verdict}: {base}.html", extra={"evaluation": summary}
        )
    return summary


# ----- outcomes of a run -------------------------------------------------------------------------
def require_passed_gate(version: str, evaluation: Mapping[str, Any]) -> None:
    """Raise GateNotPassedError unless ``evaluation`` passed and is about ``version``."""
    if evaluation.get("version") != version:
        raise GateNotPassedError(f"the evaluation given is for {evaluation.get('version')!r}, not {version!r}")
    if evaluation.get("passed") is not True:
        reasons = "; ".join(evaluation.get("reasons") or []) or "no reason recorded"
        raise GateNotPassedError(f"{version} did not pass the promotion gate: {reasons}")


def reject_candidate(
    registry: DynamoRegistry, version: str, reasons: Iterable[str], report: str | None = None
) -> dict[str, Any]:
    reason = "rejected by the promotion gate: " + "; ".join(reasons)
    if report:
        reason += f" (report {report})"
    registry.set_status(version, "rejected", reason=reason[:2000])
    return {"version": version, "status": "rejected", "reason": reason[:2000]}


def record_failure(
    registry: DynamoRegistry, version: str | None, error: Mapping[str, Any] | None, execution: str | None = None
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
    registry.set_status(version, "failed", reason=reason)
    return {"version": version, "marked": True, "status": "failed", "reason": reason}
