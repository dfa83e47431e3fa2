"""A fresh training set from the platform's own data: what each customer looked like, and what happened next.

The retraining loop's first step. Labelled rows come from a ``LabelledRow`` source: either the features
logged with each served prediction, matched to the outcome that followed by the one point-in-time join
(``outcomes.join_point_in_time``: the latest served prediction made before the day the outcome was
observed), or features computed from event logs at recent cutoffs with the label the definition's rule
gives for the horizon after each (observed when the horizon ends). Then:

- rows are grouped into periods by the day the outcome was observed: ``period_days`` long, counted back
  from the newest labelled day, within ``window_days`` of today;
- a customer counts once per period (their latest outcome in it);
- the newest period is held out for the promotion gate and never trained on; a training row whose
  features are the very prediction a held-out row uses is dropped too;
- rows whose logged features no longer fit the schema (an older model's fields) are left out and counted;
- too few rows, or too few of either outcome, gives a verdict with the reasons instead of a set.

    plan = TrainingSetPlan(window_days=180, period_days=30)
    split = split_by_period(rows, plan, today=date(2026, 5, 1), schema=schema)
    split.ok, split.reasons, split.train, split.holdout, split.describe()
    to_csv(schema, split.train)      # features, target, period: what training reads
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, NamedTuple

from churnguard.domain.errors import DataValidationError, RecordValidationError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.mapping import check_settings, dataclass_from_mapping
from churnguard.domain.outcomes import SERVED_VARIANTS, Outcome, join_point_in_time
from churnguard.domain.schema import Schema
from churnguard.domain.time_folds import CUTOFF_COLUMN, LABEL_END_COLUMN

# The column naming each row's period in the written CSVs (training ignores columns it does not know).
PERIOD_COLUMN = "period"
ORIGINAL = "original"


@dataclass(frozen=True)
class TrainingSetPlan:
    """How a fresh training set is cut. ``TrainingSetPlan.from_dict({"window_days": "90"})``."""

    window_days: int = 180
    period_days: int = 30
    # A prediction older than this before its outcome is not matched (the drift check's outcome window).
    max_prediction_age_days: int = 90
    min_train_rows: int = 500
    min_holdout_rows: int = 200
    # Of each outcome, in the held-out period and among the training rows.
    min_class_count: int = 20

    def __post_init__(self) -> None:
        check_settings(
            "training set",
            [
                (
                    min(self.window_days, self.period_days, self.max_prediction_age_days) < 1,
                    "window_days, period_days and max_prediction_age_days must be >= 1",
                ),
                (self.period_days > self.window_days, "period_days must not exceed window_days"),
                (
                    min(self.min_train_rows, self.min_holdout_rows, self.min_class_count) < 1,
                    "min_train_rows, min_holdout_rows and min_class_count must be >= 1",
                ),
            ],
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainingSetPlan:
        return dataclass_from_mapping(cls, data, "training set settings")


class LabelledRow(NamedTuple):
    """Features as known before an outcome, and the outcome. ``known_at`` identifies the feature vector
    (the prediction's timestamp, or the cutoff it was computed at); ``label_end``, for rows built at a
    cutoff, is when the label's horizon ended (time-ordered CV reads both)."""

    customer_key: str
    features: Mapping[str, Any]
    churned: bool
    observed_date: date
    known_at: str
    label_end: str | None = None


def rows_from_prediction_log(
    records: Iterable[Mapping[str, Any]], outcomes: Iterable[Outcome], max_prediction_age_days: int
) -> list[LabelledRow]:
    """Each outcome with the features of the customer's latest served prediction before it (the one join).

    Any model version counts (the features are what matters, not who scored them); shadow scores
    duplicate served requests and are left out."""
    joined = join_point_in_time(
        records,
        outcomes,
        variants=SERVED_VARIANTS,
        by_variant=False,
        max_age_days=max_prediction_age_days,
        keep=("features",),
    )
    return [
        LabelledRow(
            r["customer_key"],
            r["features"],
            r["churned"],
            date.fromisoformat(r["observed_date"]),
            str(r["predicted_at"]),
        )
        for r in joined
        if isinstance(r.get("features"), Mapping)
    ]


@dataclass
class Period:
    start: date
    end: date  # inclusive
    rows: int = 0
    churned: int = 0

    def to_dict(self, held_out: bool = False) -> dict[str, Any]:
        return {
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "rows": self.rows,
            "churned": self.churned,
            "held_out": held_out,
        }


@dataclass
class Split:
    """The cut: held-out rows (the newest period), training rows (the periods before it), and why not."""

    train: list[LabelledRow]
    holdout: list[LabelledRow]
    holdout_period: Period | None
    train_periods: list[Period]
    counts: dict[str, int]
    reasons: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def describe(self, original_rows: int = 0, original_churned: int = 0) -> dict[str, Any]:
        """Rows and periods, for the execution's output and the report."""

        def span(periods: Sequence[Period]) -> dict[str, Any] | None:
            if not periods:
                return None
            return {
                "start": min(p.start for p in periods).isoformat(),
                "end": max(p.end for p in periods).isoformat(),
                "periods": len(periods),
            }

        return {
            "rows": {
                "train": len(self.train) + original_rows,
                "train_from_log": len(self.train),
                "train_original": original_rows,
                "holdout": len(self.holdout),
                "train_churned": sum(r.churned for r in self.train) + original_churned,
                "holdout_churned": sum(r.churned for r in self.holdout),
                **self.counts,
            },
            "period": {
                "train": span(self.train_periods),
                "holdout": span([self.holdout_period] if self.holdout_period else []),
                "each": [p.to_dict() for p in self.train_periods]
                + ([self.holdout_period.to_dict(held_out=True)] if self.holdout_period else []),
            },
        }


def _fits(encoder: FeatureEncoder, features: Mapping[str, Any]) -> bool:
    try:
        encoder.encode_record(features)
    except RecordValidationError:
        return False
    return True


def split_by_period(
    rows: Iterable[LabelledRow],
    plan: TrainingSetPlan,
    today: date,
    schema: Schema,
    original: tuple[int, int] = (0, 0),
    why_none: str | None = None,
) -> Split:
    """Cut labelled rows into the held-out newest period and the training periods before it (module doc).

    ``original``: (rows, churned) of the original training file added to the training rows, counted
    towards the minimums. ``why_none``: the source's words for having no labelled row at all."""
    encoder = FeatureEncoder(schema)
    earliest = today - timedelta(days=plan.window_days)
    counts = {"labelled": 0, "outside_window": 0, "not_fitting_schema": 0, "repeats_in_period": 0}
    kept: list[LabelledRow] = []
    for r in rows:
        counts["labelled"] += 1
        if r.observed_date < earliest:
            counts["outside_window"] += 1
        elif not _fits(encoder, r.features):
            counts["not_fitting_schema"] += 1
        else:
            kept.append(r)
    if not kept:
        why = (
            why_none or f"no labelled rows in the last {plan.window_days} days"
            if not counts["labelled"] or counts["labelled"] == counts["outside_window"]
            else f"none of the {counts['labelled']} labelled rows fits the schema {schema.name!r}"
        )
        return Split([], [], None, [], counts, [why])

    newest = max(r.observed_date for r in kept)
    by_period: dict[int, dict[str, LabelledRow]] = {}
    # Oldest first, so a customer's latest outcome in a period wins.
    for r in sorted(kept, key=lambda r: (r.observed_date, r.known_at)):
        k = (newest - r.observed_date).days // plan.period_days
        if r.customer_key in by_period.setdefault(k, {}):
            counts["repeats_in_period"] += 1
        by_period[k][r.customer_key] = r

    def period(k: int) -> Period:
        end = newest - timedelta(days=k * plan.period_days)
        rs = by_period[k].values()
        return Period(
            start=max(end - timedelta(days=plan.period_days - 1), earliest),
            end=end,
            rows=len(rs),
            churned=sum(r.churned for r in rs),
        )

    holdout = list(by_period[0].values())
    used = {(r.customer_key, r.known_at) for r in holdout}
    train: list[LabelledRow] = []
    counts["shared_with_holdout"] = 0
    for k in sorted(by_period):
        if k == 0:
            continue
        for r in by_period[k].values():
            if (r.customer_key, r.known_at) in used:
                counts["shared_with_holdout"] += 1
            else:
                train.append(r)
    split = Split(train, holdout, period(0), [period(k) for k in sorted(by_period, reverse=True) if k], counts)

    held_churned = sum(r.churned for r in holdout)
    if len(holdout) < plan.min_holdout_rows or min(held_churned, len(holdout) - held_churned) < plan.min_class_count:
        split.reasons.append(
            f"the newest period ({split.holdout_period.start} to {split.holdout_period.end}) has {len(holdout)} "  # type: ignore[union-attr]
            f"labelled rows ({held_churned} churned); the gate needs at least {plan.min_holdout_rows} with "
            f"{plan.min_class_count} of each outcome"
        )
    n_train, train_churned = len(train) + original[0], sum(r.churned for r in train) + original[1]
    if n_train < plan.min_train_rows or min(train_churned, n_train - train_churned) < plan.min_class_count:
        split.reasons.append(
            f"the periods before it give {n_train} training rows ({train_churned} churned"
            + (f", {original[0]} of them from the original training file" if original[0] else "")
            + f"); training needs at least {plan.min_train_rows} with {plan.min_class_count} of each outcome"
        )
    return split


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, bool):
        return str(int(v))
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def to_csv(
    schema: Schema,
    rows: Iterable[LabelledRow],
    original: Sequence[Mapping[str, str]] = (),
    time_ordered: bool = False,
) -> bytes:
    """Labelled rows as the CSV training reads: the schema's features, its target (positive label or
    "No"), and the period each row came from (``original`` for the original training file's rows).
    ``time_ordered`` (rows built at cutoffs, a customer in several) adds the ``cutoff`` and ``label_end``
    columns, so training validates in time order instead of shuffling a customer's months across folds.
    No customer id or key is written: a training set needs none, and it outlives the prediction log."""
    negative = "No" if schema.positive_label != "No" else "no"
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    names = schema.feature_names
    times = [CUTOFF_COLUMN, LABEL_END_COLUMN] if time_ordered else []
    w.writerow([*names, schema.target, PERIOD_COLUMN, *times])
    for r in rows:
        w.writerow(
            [
                *(_cell(r.features.get(n)) for n in names),
                schema.positive_label if r.churned else negative,
                r.observed_date.isoformat(),
                *((r.known_at, r.label_end or "") if time_ordered else ()),
            ]
        )
    for o in original:
        w.writerow([*(o.get(n, "") for n in names), o.get(schema.target, ""), ORIGINAL, *(o.get(t, "") for t in times)])
    return buf.getvalue().encode()


def read_original(
    data: bytes, schema: Schema, source: str, time_ordered: bool = False
) -> tuple[list[dict[str, str]], int]:
    """The rows of the original training file (a CSV with the schema's columns, and for a time-ordered
    set its ``cutoff`` and ``label_end``), and how many churned. DataValidationError when it lacks a
    column or cannot be read."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataValidationError(f"the original training file {source} is not a readable CSV: {e}") from e
    header = set(rows[0]) if rows else set()
    needed = [*schema.feature_names, schema.target, *((CUTOFF_COLUMN, LABEL_END_COLUMN) if time_ordered else ())]
    missing = [c for c in needed if c not in header]
    if missing:
        raise DataValidationError(
            f"the original training file {source} lacks columns: {', '.join(missing)}"
            + (
                " (rows built from event logs are validated in time order: use the CSV `churn features build` "
                "wrote, which has them, or unset TRAINING_SET_ORIGINAL_URI)"
                if time_ordered and set(missing) & {CUTOFF_COLUMN, LABEL_END_COLUMN}
                else ""
            )
        )
    churned = sum((r.get(schema.target) or "").strip() == schema.positive_label for r in rows)
    return rows, churned
