"""Features from raw event logs, point in time, with one definition for training and serving.

- ``definition``: the YAML feature definition (entity, event sources, aggregates, label rule),
  validated and hashed;
- ``sql``: the DuckDB SQL it compiles to, the same for past cutoffs and for "now";
- ``frame``: what a build produced (rows, rejections), the training schema, the report.

Running the SQL over files is an adapter's job (adapters/duckdb_engine.py); the use cases are in
services/event_features.py.

    definition = FeatureDefinition.load("features.yaml")
    query = compile_query(definition, column_types)
"""

from churnguard.domain.event_features.definition import (
    AGGREGATES,
    CUTOFF_COLUMN,
    ENTITY_AGGREGATES,
    POSITIVE_LABEL,
    TARGET_COLUMN,
    AggregateFeature,
    Attribute,
    Entity,
    EntityFeature,
    EventSource,
    FeatureDefinition,
    FeatureDefinitionError,
    LabelRule,
    RatioFeature,
)
from churnguard.domain.event_features.frame import (
    FeatureFrame,
    build_report,
    check_cutoffs,
    check_labels_complete,
    cutoff_range,
    iso,
    micros,
    parse_days,
    parse_moment,
    report_text,
    training_schema,
    utc,
)
from churnguard.domain.event_features.sql import DATA_ERROR, FeatureQuery, compile_query

__all__ = [
    "AGGREGATES",
    "CUTOFF_COLUMN",
    "DATA_ERROR",
    "ENTITY_AGGREGATES",
    "POSITIVE_LABEL",
    "TARGET_COLUMN",
    "AggregateFeature",
    "Attribute",
    "Entity",
    "EntityFeature",
    "EventSource",
    "FeatureDefinition",
    "FeatureDefinitionError",
    "FeatureFrame",
    "FeatureQuery",
    "LabelRule",
    "RatioFeature",
    "build_report",
    "check_cutoffs",
    "check_labels_complete",
    "compile_query",
    "cutoff_range",
    "iso",
    "micros",
    "parse_days",
    "parse_moment",
    "report_text",
    "training_schema",
    "utc",
]
