"""Use cases of the retraining loop: the scheduled drift check and the evaluate step of the state machine.

Each takes primitives plus the ports it needs (services/ports.py); ``churnguard.bootstrap`` composes
them once per container. Reports go under ``reports_root`` (``s3://bucket/reports`` deployed).

    summary = run_drift_check(store, registry, log, objects, "s3://b/reports", loop, outcomes, launcher)
    result = evaluate_candidate(store, registry, objects, "v2", "s3://b/holdout.csv", GateConfig(), "s3://b/reports")
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from churnguard.domain import reports
from churnguard.domain.bundle import sha256_hex
from churnguard.domain.drift import DriftThresholds, check_prediction_log
from churnguard.domain.errors import DataValidationError, ModelNotFoundError
from churnguard.domain.evaluation import GateConfig, evaluate
from churnguard.domain.features import encode_labelled_csv
from churnguard.services.champion import load_predictor
from churnguard.services.ports import (
    ModelStore,
    ObjectStore,
    OutcomeStore,
    PredictionLogSource,
    Registry,
    RetrainLauncher,
)
from churnguard.settings import LoopSettings


def _now() -> datetime:
    return datetime.now(UTC)


# ----- drift -------------------------------------------------------------------------------------
def run_drift_check(
    store: ModelStore,
    registry: Registry,
    log: PredictionLogSource,
    objects: ObjectStore,
    reports_root: str,
    loop: LoopSettings,
    outcomes: OutcomeStore | None = None,
    launcher: RetrainLauncher | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Check the recent prediction log against the champion; write the report; start retraining if due.

    ``outcomes`` (None: none recorded) give the performance check its labels; ``launcher`` starts the
    state machine (None: report only). Returns a small summary for logs and metrics.
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
    labelled = list(outcomes.outcomes(since=end - timedelta(days=loop.outcome_window_days))) if outcomes else []
    read_start = min(feature_start, end - timedelta(days=loop.outcome_window_days - 1)) if labelled else feature_start
    records = _read_newest_first(log, read_start, end, loop.drift_max_rows)
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
    base = f"{reports_root}/drift/{end.isoformat()}/{stamp}-{champion.version}"
    body = report.to_dict()
    objects.write(base + ".json", reports.to_json(body), "application/json")
    objects.write(base + ".html", reports.drift_html(body).encode(), "text/html; charset=utf-8")
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


def _read_newest_first(log: PredictionLogSource, start: date, end: date, limit: int) -> list[dict[str, Any]]:
    # Day by day from the newest, so a capped read keeps the most recent traffic.
    out: list[dict[str, Any]] = []
    day = end
    while day >= start and len(out) < limit:
        for rec in log.records(day, day):
            if isinstance(rec, dict):
                out.append(rec)
            if len(out) >= limit:
                break
        day -= timedelta(days=1)
    return out


def _start_retraining(
    launcher: RetrainLauncher | None, loop: LoopSettings, lineage: Mapping[str, Any], report_uri: str, now: datetime
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
def evaluate_candidate(
    store: ModelStore,
    registry: Registry,
    objects: ObjectStore,
    version: str,
    holdout_uri: str,
    gate: GateConfig | None,
    reports_root: str,
) -> dict[str, Any]:
    """Score the candidate and the champion on the same held-out rows, decide the gate, write the report
    (JSON + HTML) and link it from the candidate's registry entry."""
    gate = gate or GateConfig()
    candidate = registry.get(version)
    challenger = load_predictor(registry, store, version)
    alias = registry.alias()
    champion = load_predictor(registry, store, alias["version"]) if alias and alias["version"] != version else None
    data = objects.read(holdout_uri)
    if sha256_hex(data) == candidate.lineage.get("data_sha256"):
        raise DataValidationError(
            f"{holdout_uri} is the data {version} was trained on: evaluation needs fresh held-out rows"
        )
    X, y = encode_labelled_csv(data, challenger.schema, challenger.encoder)
    p_challenger = challenger.probabilities(X)
    p_champion = None
    if champion is not None:
        Xc = (
            X
            if champion.schema.sha256 == challenger.schema.sha256
            else encode_labelled_csv(data, champion.schema, champion.encoder)[0]
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
    base = f"{reports_root}/evaluation/{version}/evaluation"
    body = {
        "version": version,
        "champion": champion.version if champion else None,
        "holdout": holdout_uri,
        **result.to_dict(),
    }
    objects.write(base + ".json", reports.to_json(body), "application/json")
    objects.write(
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
