"""Features from event logs: the use cases. One definition, one engine, offline and online.

- ``build_training_set``: rows at past cutoffs -> a training CSV, its schema (``churn train`` takes
  both as they are) and a report, written next to each other;
- ``refresh_online_features``: every active customer's vector as of now -> the feature store, and,
  with a champion, their scores -> the score store (what ``GET /customers/{id}/score`` reads);
- ``predict_customer``: ``POST /customers/{id}/predict``, the stored vector scored by the champion.

    summary = build_training_set(definition, cutoffs, "s3://bucket/data/train.csv", engine, objects)
    summary = refresh_online_features(definition, engine, store, now, champion=provider.champion, scores=scores)
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from churnguard.domain.errors import CustomerNotFoundError, FeatureMismatchError, ModelUnavailableError
from churnguard.domain.event_features import (
    FeatureDefinition,
    build_report,
    check_labels_complete,
    iso,
    training_schema,
    utc,
)
from churnguard.domain.event_features.online import fit_vector, score_vectors
from churnguard.domain.predictor import Predictor
from churnguard.services.online_scoring import FollowUp, OnlineScoring
from churnguard.services.ports import FeatureEngine, FeatureStore, ObjectStore, ScoreStore


def load_definition(uri: str, objects: ObjectStore) -> FeatureDefinition:
    """The definition at a local path or ``s3://`` URI; its relative paths are read from its folder."""
    return parse_definition(objects.read(uri), uri)


def parse_definition(body: bytes, uri: str) -> FeatureDefinition:
    """The definition read from ``uri`` (its relative paths resolve against that folder)."""
    text = body.decode("utf-8", errors="replace")
    base = uri.rsplit("/", 1)[0] if uri.startswith("s3://") else str(Path(uri).resolve().parent)
    return FeatureDefinition.from_yaml(text, source=uri, base=base)


def companions(training_csv: str) -> tuple[str, str]:
    """Where the schema and the report of a training CSV go: ``x.csv`` -> ``x.schema.yaml``, ``x.report.json``."""
    stem = training_csv[:-4] if training_csv.lower().endswith(".csv") else training_csv
    return f"{stem}.schema.yaml", f"{stem}.report.json"


def build_training_set(
    definition: FeatureDefinition,
    cutoffs: Sequence[datetime],
    out: str,
    engine: FeatureEngine,
    objects: ObjectStore,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Rows of every customer active at each cutoff, with features known then and labels from after.

    Writes the schema and the report first and the CSV last, so a training CSV always has its schema;
    nothing is written when the data cannot give complete labels for every cutoff.
    """
    started = time.perf_counter()
    now = utc(now or datetime.now(UTC))
    schema_uri, report_uri = companions(out)
    with tempfile.TemporaryDirectory(prefix="churn-training-set-") as tmp:
        local_csv = str(Path(tmp) / "training.csv")
        frame = engine.compute(definition, cutoffs, as_of=now, training_csv=local_csv)
        check_labels_complete(definition, frame.cutoffs, frame.data_end)
        schema = training_schema(definition, frame)
        report = build_report(frame, schema)
        report.update(training_csv=out, schema=schema_uri)
        objects.write(schema_uri, schema.dump_yaml().encode(), content_type="application/yaml")
        objects.write(report_uri, json.dumps(report, indent=2).encode(), content_type="application/json")
        objects.write(out, Path(local_csv).read_bytes(), content_type="text/csv")
    return {
        "training_csv": out,
        "schema": schema_uri,
        "report": report_uri,
        "definition_sha256": definition.sha256,
        "rows": report["rows"],
        "cutoffs": len(frame.cutoffs),
        "label_rate": report["label_rate"],
        "rejected": report["rejected_total"],
        "no_signal": report["no_signal"],
        "leak_warnings": report["leak_warnings"],
        "engine_seconds": round(frame.seconds, 2),
        "engine_timings": frame.timings,
        "seconds": round(time.perf_counter() - started, 2),
        "report_body": report,
    }


def refresh_online_features(
    definition: FeatureDefinition,
    engine: FeatureEngine,
    features: FeatureStore,
    now: datetime,
    champion: Callable[[], Predictor] | None = None,
    scores: ScoreStore | None = None,
) -> dict[str, Any]:
    """Every active customer's features as of ``now`` into the store (vectors of customers no longer
    active are removed); then, when a champion can be loaded, every customer scored into ``scores``."""
    started = time.perf_counter()
    now = utc(now)
    as_of = iso(now)
    frame = engine.compute(definition, [now], as_of=now)
    vectors = list(frame.vectors())
    summary: dict[str, Any] = {
        "as_of": as_of,
        "definition_sha256": definition.sha256,
        "customers": len(vectors),
        "rejected": frame.rejected,
        "features_stored": features.put_many(vectors, as_of=as_of, definition_sha256=definition.sha256),
        "features_removed": features.remove_stale(as_of),
        "engine_seconds": round(frame.seconds, 2),
        "engine_timings": frame.timings,
    }
    summary.update(_score(vectors, champion, scores, as_of))
    summary["seconds"] = round(time.perf_counter() - started, 2)
    return summary


def _score(
    vectors: list[tuple[str, dict[str, Any]]],
    champion: Callable[[], Predictor] | None,
    scores: ScoreStore | None,
    as_of: str,
) -> dict[str, Any]:
    if champion is None or scores is None:
        return {"scored": 0, "not_scored_because": "no score table configured"}
    try:
        predictor = champion()
        rows, rejected = score_vectors(predictor, vectors)
    except (ModelUnavailableError, FeatureMismatchError) as e:
        return {"scored": 0, "not_scored_because": str(e)}
    stored = scores.put_many(rows, job_id=f"feature-refresh-{as_of}", scored_at=as_of, model_version=predictor.version)
    out: dict[str, Any] = {"scored": stored, "model_version": predictor.version, "score_rejected": len(rejected)}
    if rejected:
        # The champion was trained on other features (or a category it never saw): say which, once.
        out["not_scored_because"] = (
            f"{len(rejected)} vectors do not fit {predictor.version}: {rejected[0]['problems'][:3]}"
        )
    return out


def predict_customer(
    customer_id: str, features: FeatureStore, scoring: OnlineScoring, reasons: bool = True
) -> tuple[dict[str, Any], FollowUp | None]:
    """The champion's answer for a customer's stored vector, and what to do after it (log, shadow).

    CustomerNotFoundError without a vector; FeatureMismatchError when the champion wants other features.
    """
    stored = features.get(customer_id)
    if stored is None:
        raise CustomerNotFoundError(
            "no current features for this customer id: unknown, no longer active, or not refreshed yet "
            "(the FeatureRefresh schedule writes them)"
        )
    row = dict(stored["features"])
    try:
        row = fit_vector(scoring.champion(), row)
    except ModelUnavailableError:
        pass  # no model: predict_one answers with the fallback estimate, or 503
    if scoring.schema.id_column:
        row[scoring.schema.id_column] = customer_id  # the log and the canary split key on it
    pred, later = scoring.predict_one(row, reasons)
    return {**pred, "features_as_of": stored["as_of"]}, later
