"""Use cases of the retraining loop: the scheduled drift check and the evaluate step of the state machine.

Each takes primitives plus the ports it needs (services/ports.py); ``churnguard.bootstrap`` composes
them once per container. Reports go under ``reports_root`` (``s3://bucket/reports`` deployed).

    summary = run_drift_check(store, registry, log, objects, "s3://b/reports", loop, outcomes, launcher)
    result = evaluate_candidate(store, registry, objects, "v2", "s3://b/holdout.csv", GateConfig(), "s3://b/reports")
"""

from __future__ import annotations

import secrets
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from churnguard.domain import reports
from churnguard.domain.bundle import sha256_hex
from churnguard.domain.drift import DriftThresholds, check_prediction_log
from churnguard.domain.errors import DataValidationError, ModelNotFoundError
from churnguard.domain.evaluation import GateConfig, evaluate
from churnguard.domain.features import encode_labelled_csv
from churnguard.domain.outcomes import Outcome, as_date
from churnguard.domain.reference_profile import score_profile
from churnguard.domain.training_set import rows_from_prediction_log
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
    trigger: str | None = None,
    min_new_outcomes: int = 0,
) -> dict[str, Any]:
    """Check the recent prediction log against the champion; write the report; start retraining if due.

    ``outcomes`` (None: none recorded) give the performance check its labels; ``launcher`` starts the
    state machine (None: report only). A run starts when any trigger fires: ``drift`` or ``degradation``
    (the report's), ``schedule`` (``trigger="schedule"``: the RetrainSchedule rule) or ``volume`` (at least
    ``min_new_outcomes`` > 0 outcomes observed since the champion was trained match a served prediction);
    the run's ``reason`` names them. Returns a small summary for logs and metrics.

    Volume counts outcomes since the newest registered version was trained (the champion, or a later
    candidate the gate or the canary turned down), so one batch of outcomes starts one run, not one a day.
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
    triggers = list(report.triggers)
    if trigger == "schedule":
        triggers.append("schedule")
    # Since the last training, not only the champion's: a rejected candidate already saw these outcomes.
    last_trained = max((m.created_at for m in registry.list()), default=champion.created_at)
    new_labelled = _new_labelled(records, labelled, max(last_trained, champion.created_at), loop.outcome_window_days)
    if min_new_outcomes and new_labelled >= min_new_outcomes:
        triggers.append("volume")
    est = report.estimated
    summary: dict[str, Any] = {
        "decision": report.decision,
        "reasons": report.reasons,
        "triggers": triggers,
        "champion": champion.version,
        "rows": report.rows,
        "drifted_features": report.drifted_features,
        "max_psi": round(report.max_psi, 4),
        "score_psi": round(report.score.psi, 4) if report.score else None,
        "performance": report.performance.status if report.performance else "no_outcomes",
        "estimated": {
            "status": est.status,
            **{m: round(getattr(est, m).estimate, 4) for m in ("roc_auc", "precision", "recall") if getattr(est, m)},
        }
        if est
        else None,
        "new_labelled_outcomes": new_labelled,
        "report": base + ".json",
        "html": base + ".html",
    }
    if triggers:
        summary["retraining"] = _start_retraining(launcher, triggers, base + ".json", now)
    return summary


def _new_labelled(records: list[dict[str, Any]], outcomes: list[Outcome], trained_at: str, max_age_days: int) -> int:
    """Outcomes observed after ``trained_at`` that match a served prediction: the labelled rows a new
    training set would have that the last trained model never saw."""
    trained = as_date(trained_at)
    fresh = [o for o in outcomes if trained is None or o.observed_date > trained]
    return len(rows_from_prediction_log(records, fresh, max_age_days)) if fresh else 0


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
    launcher: RetrainLauncher | None, triggers: list[str], report_uri: str, now: datetime
) -> dict[str, Any]:
    """Start a run that builds its own training set (BuildTrainingSet; TRAINING_DATA_URI overrides it there)."""
    if launcher is None:
        return {"started": False, "reason": "no retraining state machine configured (RETRAIN_STATE_MACHINE_ARN)"}
    execution_input = {"reason": ",".join(triggers), "triggers": triggers, "drift_report": report_uri}
    name = f"{triggers[0]}-{now.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"
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
        # What the canary stage expects the candidate's live scores to look like (the newest labelled period).
        "score_profile": score_profile(p_challenger),
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
