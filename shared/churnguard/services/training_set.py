"""The retraining loop's first step: the data a run trains and is judged on.

Either the run was given its data (the execution input's ``data`` and ``holdout``, or the explicit
override TRAINING_DATA_URI / HOLDOUT_DATA_URI), or a fresh training set is assembled from the
platform's own data (domain/training_set.py): labelled rows from a ``LabelledRowSource``, cut into
periods, the newest held out for the gate. Too few rows ends in ``{"status": "insufficient_data",
"reasons": [...]}`` with the report written, never in a crash.

Two sources (``choose_source`` picks): ``EventFeatureRows``, the feature definition's features at recent
cutoffs, when a definition exists and the champion reads its features; else ``ServedPredictions``, the
features logged with each served prediction joined point in time to the outcomes.

    source = choose_source(schema, definition, ServedPredictions(log, outcomes), events)
    out = training_data_for_run(sources, objects, schema, plan, "s3://b/data/training-sets/run-1", now)
    out["data"], out["holdout"], out["schema"], out["rows"], out["period"]
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from churnguard.domain import reports
from churnguard.domain.errors import DataValidationError
from churnguard.domain.event_features import FeatureDefinition, iso
from churnguard.domain.event_features.frame import complete_until
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
    FeatureEngine,
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
    time_ordered = False

    def __init__(self, log: PredictionLogSource, outcomes: OutcomeStore, why: str = "") -> None:
        self.log = log
        self.outcomes = outcomes
        self.why = why
        self._max_age = 0

    def describe(self) -> dict[str, Any]:
        return {"why": self.why} if self.why else {}

    def why_none(self, window_days: int) -> str:
        return (
            f"no labelled rows in the last {window_days} days: no outcome matches a served prediction made "
            f"before it (within {self._max_age} days)"
        )

    def labelled_rows(self, start: date, end: date, max_prediction_age_days: int) -> list[LabelledRow]:
        self._max_age = max_prediction_age_days
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


class EventFeatureRows:
    """Labelled rows from the event logs (a LabelledRowSource): every customer active at each of the
    recent cutoffs, with the features the definition computes as known then and the label its rule gives
    for the horizon after. A row's outcome is observed when its horizon ends.

    Cutoffs fall at midnight UTC, the newest one horizon before the window's last day, then every
    ``max(period_days, horizon)`` days back while the horizon ends inside the window: one cutoff per
    period, and every training row's label known by the newest (held-out) cutoff, so nothing the gate
    tests on leaks into training. When the logs end earlier than that (a lagging export), the cutoffs are
    moved back once to the newest whose labels the logs complete; any still incomplete are left out and
    reported. Needs the feature engine (DuckDB: the BuildTrainingSet and FeatureRefresh packages).
    """

    name = "event_features"
    time_ordered = True

    def __init__(self, definition: FeatureDefinition, engine: FeatureEngine, period_days: int, why: str = "") -> None:
        self.definition = definition
        self.engine = engine
        self.horizon = timedelta(days=definition.label.horizon_days)
        self.spacing = timedelta(days=max(period_days, definition.label.horizon_days))
        self.why = why
        self._described: dict[str, Any] = {}

    def describe(self) -> dict[str, Any]:
        return {
            "why": self.why,
            "definition": {"name": self.definition.name, "sha256": self.definition.sha256},
            "horizon_days": self.definition.label.horizon_days,
            "cutoff_every_days": self.spacing.days,
            **self._described,
        }

    def why_none(self, window_days: int) -> str:
        end = self._described.get("data_end")
        return f"no labelled rows in the last {window_days} days from the event logs of {self.definition.name!r}: " + (
            f"the logs end at {end}, so no cutoff's {self.horizon.days}-day label window ends inside it"
            if end
            else "no event was accepted (see the definition's sources and the rejected counts of `churn features "
            "build`)"
        )

    def _cutoffs(self, newest: datetime, start: date) -> list[datetime]:
        out: list[datetime] = []
        c = newest
        while (c + self.horizon).date() >= start:
            out.append(c)
            c -= self.spacing
        return out

    def labelled_rows(self, start: date, end: date, max_prediction_age_days: int) -> list[LabelledRow]:
        # ``end`` is a day past the newest outcome date a source may give (outcomes dated tomorrow in UTC).
        last = datetime.combine(end - timedelta(days=1), time(), tzinfo=UTC)
        as_of = datetime.combine(end, time(), tzinfo=UTC)
        cutoffs = self._cutoffs(last - self.horizon, start)
        frame = self.engine.compute(self.definition, cutoffs, as_of) if cutoffs else None
        complete = complete_until(frame.data_end) if frame is not None and frame.data_end else None
        moved = False
        if frame is not None and complete is not None and cutoffs[0] + self.horizon > complete:
            newest = datetime.combine(complete.date(), time(), tzinfo=UTC) - self.horizon
            earlier = self._cutoffs(newest, start)
            if earlier:
                cutoffs, moved = earlier, True
                frame = self.engine.compute(self.definition, cutoffs, as_of)
        kept = {c for c in cutoffs if complete is not None and c + self.horizon <= complete}
        self._described = {
            "data_end": iso(frame.data_end) if frame is not None and frame.data_end else None,
            "cutoffs": [iso(c) for c in sorted(kept)],
            "cutoffs_moved_to_the_data_end": moved,
            "cutoffs_left_out_incomplete_labels": sorted(iso(c) for c in set(cutoffs) - kept),
            "rejected_events": frame.rejected if frame is not None else {},
        }
        if frame is None or not kept:
            return []
        rows: list[LabelledRow] = []
        at = frame.cutoffs
        for (cid, features), k, churned in zip(frame.vectors(), frame.k.tolist(), frame.churned.tolist(), strict=True):
            cutoff = at[k]
            if cutoff in kept:
                label_end = cutoff + self.horizon
                rows.append(LabelledRow(cid, features, bool(churned), label_end.date(), iso(cutoff), iso(label_end)))
        return rows


def choose_source(
    schema: Schema,
    definition: FeatureDefinition | None,
    served: Callable[[str], LabelledRowSource],
    events: Callable[[FeatureDefinition, str], LabelledRowSource],
    no_definition: str = "no feature definition",
) -> LabelledRowSource:
    """The event logs when a feature definition exists and the champion reads only features it computes
    (the champion was trained on them); otherwise the served predictions. The choice and its reason are in
    the source's ``describe()``, hence in the training set's report."""
    if definition is None:
        return served(f"{no_definition}: served predictions joined to outcomes")
    missing = [n for n in schema.feature_names if n not in set(definition.feature_names)]
    if missing:
        return served(
            f"the champion reads features the definition {definition.name!r} does not compute "
            f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}): served predictions joined to outcomes"
        )
    return events(definition, f"the champion reads the features of the definition {definition.name!r}")


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
    ``schema.yaml``: the champion's, which training reads them with; ``report.json``). The report is
    written in every case; the rest only when the set is usable."""
    today = now.astimezone(UTC).date()
    # Outcomes may be dated up to a day ahead (the sender's today may be tomorrow in UTC).
    rows = source.labelled_rows(
        today - timedelta(days=plan.window_days), today + timedelta(days=1), plan.max_prediction_age_days
    )
    original: list[dict[str, str]] = []
    original_churned = 0
    if original_uri:
        original, original_churned = read_original(
            objects.read(original_uri), schema, original_uri, time_ordered=source.time_ordered
        )
    split = split_by_period(
        rows,
        plan,
        today,
        schema,
        original=(len(original), original_churned),
        why_none=source.why_none(plan.window_days),
    )
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
        summary["schema"] = f"{out_prefix}/schema.yaml"
        summary["holdout"] = f"{out_prefix}/holdout.csv"
        summary["data"] = f"{out_prefix}/train.csv"
        objects.write(summary["schema"], schema.dump_yaml().encode(), "application/yaml")
        objects.write(summary["holdout"], to_csv(schema, split.holdout, time_ordered=source.time_ordered), "text/csv")
        objects.write(
            summary["data"], to_csv(schema, split.train, original, time_ordered=source.time_ordered), "text/csv"
        )
    report = {
        **summary,
        "periods": described["period"]["each"],
        "source_detail": source.describe(),
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
    source: Callable[[Schema], LabelledRowSource],
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
    cut to ``schema()`` (the champion's: ModelNotFoundError without one) from ``source(schema)``."""
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
    cut_to = schema()
    return build_training_set(source(cut_to), objects, cut_to, plan, out_prefix, now, original_uri)
