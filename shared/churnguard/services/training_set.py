"""The retraining loop's first step: the data a run trains and is judged on.

Either the run was given its data (the execution input's ``data`` and ``holdout``, or the explicit
override TRAINING_DATA_URI / HOLDOUT_DATA_URI), or a fresh training set is assembled from the
platform's own data (domain/training_set.py): labelled rows from a ``LabelledRowSource``, cut into
periods, the newest held out for the gate. Too few rows ends in ``{"status": "insufficient_data",
"reasons": [...]}`` with the report written, never in a crash.

    source = ServedPredictions(log, outcomes)
    out = training_data_for_run(source, objects, schema, plan, "s3://b/data/training-sets/run-1", now)
    out["data"], out["holdout"], out["rows"], out["period"]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from churnguard.domain import reports
from churnguard.domain.errors import DataValidationError
from churnguard.domain.schema import Schema
from churnguard.domain.training_set import (
    LabelledRow,
    TrainingSetPlan,
    read_original,
    rows_from_prediction_log,
    split_by_period,
    to_csv,
)
from churnguard.services.ports import (
    LabelledRowSource,
    ModelStore,
    ObjectStore,
    OutcomeStore,
    PredictionLogSource,
    Registry,
)


class ServedPredictions:
    """Labelled rows from the prediction log joined point in time to the outcomes (a LabelledRowSource).

    Outcomes are read first, so only the log records of customers with an outcome are kept in memory."""

    name = "prediction_log"

    def __init__(self, log: PredictionLogSource, outcomes: OutcomeStore) -> None:
        self.log = log
        self.outcomes = outcomes

    def labelled_rows(self, start: date, end: date, max_prediction_age_days: int) -> list[LabelledRow]:
        outcomes = list(self.outcomes.outcomes(since=start, until=end))
        keys = {o.customer_key for o in outcomes}
        if not keys:
            return []
        records = (
            r
            for r in self.log.records(start - timedelta(days=max_prediction_age_days), end)
            if r.get("customer_key") in keys
        )
        return rows_from_prediction_log(records, outcomes, max_prediction_age_days)


def build_training_set(
    source: LabelledRowSource,
    objects: ObjectStore,
    schema: Schema,
    plan: TrainingSetPlan,
    out_prefix: str,
    now: datetime,
    original_uri: str | None = None,
) -> dict[str, Any]:
    """Assemble, cut and write a fresh training set under ``out_prefix`` (``train.csv``, ``holdout.csv``,
    ``report.json``). The report is written in every case; the CSVs only when the set is usable."""
    today = now.astimezone(UTC).date()
    # Outcomes may be dated up to a day ahead (the sender's today may be tomorrow in UTC).
    rows = source.labelled_rows(
        today - timedelta(days=plan.window_days), today + timedelta(days=1), plan.max_prediction_age_days
    )
    original: list[dict[str, str]] = []
    original_churned = 0
    if original_uri:
        original, original_churned = read_original(objects.read(original_uri), schema, original_uri)
    split = split_by_period(rows, plan, today, schema, original=(len(original), original_churned))
    described = split.describe(len(original), original_churned)
    summary: dict[str, Any] = {
        "status": "built" if split.ok else "insufficient_data",
        "source": source.name,
        "data": None,
        "holdout": None,
        "schema": None,
        "report": f"{out_prefix}/report.json",
        "reasons": split.reasons,
        "rows": described["rows"],
        "period": {k: v for k, v in described["period"].items() if k != "each"},
    }
    if split.ok:
        summary["holdout"] = f"{out_prefix}/holdout.csv"
        summary["data"] = f"{out_prefix}/train.csv"
        objects.write(summary["holdout"], to_csv(schema, split.holdout), "text/csv")
        objects.write(summary["data"], to_csv(schema, split.train, original), "text/csv")
    report = {
        **summary,
        "periods": described["period"]["each"],
        "plan": {
            "window_days": plan.window_days,
            "period_days": plan.period_days,
            "max_prediction_age_days": plan.max_prediction_age_days,
            "min_train_rows": plan.min_train_rows,
            "min_holdout_rows": plan.min_holdout_rows,
            "min_class_count": plan.min_class_count,
        },
        "original": original_uri,
        "schema_name": schema.name,
        "schema_sha256": schema.sha256,
        "created_at": now.astimezone(UTC).isoformat(),
    }
    objects.write(summary["report"], reports.to_json(report), "application/json")
    return summary


def champion_schema(registry: Registry, store: ModelStore) -> Schema:
    """The schema of the champion's bundle: a fresh training set is cut to what the model it may replace reads."""
    champion = registry.champion()
    return Schema.from_dict(store.get(champion.version, champion.manifest_sha256).metadata["schema"])


def training_data_for_run(
    source: LabelledRowSource,
    objects: ObjectStore,
    schema: Callable[[], Schema],
    plan: TrainingSetPlan,
    out_prefix: str,
    now: datetime,
    *,
    data: str | None = None,
    holdout: str | None = None,
    original_uri: str | None = None,
) -> dict[str, Any]:
    """The given data when a run names it (``data``; its ``holdout`` is then required), else a fresh set
    cut to ``schema()`` (the champion's: ModelNotFoundError without one)."""
    if data:
        if not holdout:
            raise DataValidationError(
                f"the run names its training data ({data}) but no held-out data: pass 'holdout' or set "
                "HOLDOUT_DATA_URI (or pass neither, and a fresh training set is built from served traffic)"
            )
        return {
            "status": "given",
            "source": "given",
            "data": data,
            "holdout": holdout,
            "schema": None,
            "report": None,
            "reasons": [],
            "rows": None,
            "period": None,
        }
    return build_training_set(source, objects, schema(), plan, out_prefix, now, original_uri)
