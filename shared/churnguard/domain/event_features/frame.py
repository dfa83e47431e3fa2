"""What a feature build produced: rows per (customer, cutoff), and what was left out and why.

The engine fills a ``FeatureFrame``; from it come the training schema (``training_schema``),
the report (``build_report``: rows and label rate per cutoff, rejected records, features with no
signal, leak warnings) and the online vectors (``FeatureFrame.vectors``).

    frame = engine.compute(definition, cutoffs, as_of)
    schema = training_schema(definition, frame)
    report = build_report(frame, schema)
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from churnguard.domain import classification as M
from churnguard.domain.errors import DataValidationError
from churnguard.domain.event_features.definition import (
    NEGATIVE_LABEL,
    POSITIVE_LABEL,
    TARGET_COLUMN,
    AggregateFeature,
    EntityFeature,
    FeatureDefinition,
)
from churnguard.domain.schema import CategoricalFeature, NumericFeature, Schema

# Leak warnings: a feature that alone predicts the label this well, or that is present almost only in churners.
LEAK_AUC = 0.95
LEAK_PURITY = 0.98
LEAK_MIN_ROWS = 20
# A feature whose univariate ROC-AUC is this close to 0.5 is listed as weak (it may still help in combination).
WEAK_AUC_MARGIN = 0.01
# The report's ROC-AUCs are computed on at most this many rows (a seeded sample), to keep it cheap.
REPORT_SAMPLE = 200_000


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (a naive one is taken as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime) -> str:
    m = utc(moment)
    text = m.strftime("%Y-%m-%dT%H:%M:%S") + (f".{m.microsecond:06d}" if m.microsecond else "")
    return text + "Z"


def micros(moment: datetime) -> int:
    m = utc(moment)
    return (m - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def check_cutoffs(cutoffs: Sequence[datetime], as_of: datetime) -> tuple[datetime, ...]:
    """Sorted, distinct, UTC cutoffs a day or more apart, none after ``as_of`` (the future has no past to read)."""
    if not cutoffs:
        raise DataValidationError("give at least one cutoff (--cutoffs 2026-01-01,... or --every 30d --from --to)")
    out = tuple(sorted({utc(c) for c in cutoffs}))
    late = [iso(c) for c in out if c > utc(as_of)]
    if late:
        raise DataValidationError(f"cutoffs after the build's as-of time {iso(as_of)}: {', '.join(late[:5])}")
    close = [(a, b) for a, b in zip(out, out[1:], strict=False) if b - a < timedelta(days=1)]
    if close:
        a, b = close[0]
        raise DataValidationError(f"cutoffs must be at least a day apart: {iso(a)} and {iso(b)} are not")
    return out


def complete_until(data_end: datetime) -> datetime:
    """Logs are taken as complete through the (UTC) day of their latest record: exports are daily."""
    day = utc(data_end).replace(hour=0, minute=0, second=0, microsecond=0)
    return day + timedelta(days=1)


def check_labels_complete(
    definition: FeatureDefinition, cutoffs: Sequence[datetime], data_end: datetime | None
) -> None:
    """Every cutoff's label window must end by the time the data does, or churners look loyal."""
    horizon = timedelta(days=definition.label.horizon_days)
    if data_end is None:
        raise DataValidationError("no event was accepted: there is no data to label (see the rejected counts)")
    until = complete_until(data_end)
    short = [c for c in cutoffs if utc(c) + horizon > until]
    if short:
        raise DataValidationError(
            f"the labels of {len(short)} cutoff(s) are not complete: the latest record is from {iso(data_end)}, "
            f"so the data runs to {iso(until)}, but {iso(short[0])} + {definition.label.horizon_days} days ends "
            f"later; use cutoffs up to {iso(until - horizon)}"
        )


@dataclass
class FeatureFrame:
    """Rows of a build, ordered by cutoff then customer id; ``columns`` holds every feature: numbers as
    float64 (NaN when missing), categories as objects (None when missing)."""

    definition: FeatureDefinition
    cutoffs: tuple[datetime, ...]
    as_of: datetime
    ids: np.ndarray
    k: np.ndarray
    columns: dict[str, np.ndarray]
    churned: np.ndarray
    rejected: dict[str, dict[str, int]] = field(default_factory=dict)
    accepted: dict[str, int] = field(default_factory=dict)
    per_cutoff: list[dict[str, int]] = field(default_factory=list)
    data_end: datetime | None = None
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage of the engine

    def __len__(self) -> int:
        return len(self.ids)

    def vectors(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(customer id, {feature: value}) of each row, JSON-ready: NaN becomes None."""
        names = self.definition.feature_names
        cols = [self.columns[n].tolist() for n in names]
        for i, cid in enumerate(self.ids.tolist()):
            yield cid, {n: _plain(col[i]) for n, col in zip(names, cols, strict=True)}

    def categories(self) -> dict[str, list[str]]:
        """The values each categorical attribute takes in these rows, sorted."""
        out = {}
        for a in self.definition.entity.attributes:
            if a.type == "categorical":
                out[a.name] = sorted({v for v in self.columns[a.name].tolist() if v is not None})
        return out


def _plain(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def training_schema(definition: FeatureDefinition, frame: FeatureFrame) -> Schema:
    """The schema of the training CSV, which ``churn train`` takes as it is: id, the target and each feature."""
    features: list[NumericFeature | CategoricalFeature] = []
    categories = frame.categories()
    for a in definition.entity.attributes:
        if a.type == "categorical":
            values = tuple(categories.get(a.name) or ["(none)"])
            features.append(CategoricalFeature(a.name, values, nullable=True))
        else:
            features.append(NumericFeature(a.name, nullable=True))
    for f in definition.features:
        if isinstance(f, AggregateFeature) and f.agg in ("count", "count_distinct"):
            features.append(NumericFeature(f.name, minimum=0.0, integer=True))
        elif isinstance(f, AggregateFeature) and f.agg == "sum":
            features.append(NumericFeature(f.name))
        elif isinstance(f, (AggregateFeature, EntityFeature)) and f.agg.startswith("days_since"):
            features.append(NumericFeature(f.name, minimum=0.0, integer=True, nullable=True))
        else:
            features.append(NumericFeature(f.name, nullable=True))
    return Schema(
        name=f"{definition.name}-features",
        id_column=definition.entity.id,
        target=TARGET_COLUMN,
        positive_label=POSITIVE_LABEL,
        features=tuple(features),
    )


def label_strings(churned: np.ndarray) -> np.ndarray:
    return np.where(churned, POSITIVE_LABEL, NEGATIVE_LABEL)


# ----- the report -------------------------------------------------------------------------------


def build_report(frame: FeatureFrame, schema: Schema | None = None) -> dict[str, Any]:
    """Rows and label rate per cutoff, what was rejected, which features carry no signal or look leaky."""
    d = frame.definition
    y = frame.churned.astype(bool)
    cutoffs = []
    for k, c in enumerate(frame.cutoffs):
        at = frame.k == k
        counts = frame.per_cutoff[k] if k < len(frame.per_cutoff) else {}
        cutoffs.append(
            {
                "cutoff": iso(c),
                "rows": int(at.sum()),
                "churned": int(y[at].sum()),
                "label_rate": round(float(y[at].mean()), 4) if at.any() else None,
                **{n: int(v) for n, v in counts.items() if n != "k"},
            }
        )
    features, no_signal, weak, leaks = _feature_signal(frame, y)
    late_sources = [n for n, s in d.sources.items() if not s.ingested]
    notes = []
    if late_sources:
        notes.append(
            "no ingestion time declared for "
            + ", ".join(late_sources)
            + ": events are taken as known when they happened; a backfilled or late-recorded event would leak"
        )
    return {
        "definition": {"name": d.name, "sha256": d.sha256},
        "schema_sha256": schema.sha256 if schema is not None else None,
        "as_of": iso(frame.as_of),
        "data_end": iso(frame.data_end) if frame.data_end else None,
        "rows": len(frame),
        "label_rate": round(float(y.mean()), 4) if len(y) else None,
        "label": d.label.to_dict(),
        "cutoffs": cutoffs,
        "accepted_events": frame.accepted,
        "rejected": frame.rejected,
        "rejected_total": sum(n for reasons in frame.rejected.values() for n in reasons.values()),
        "features": features,
        "no_signal": no_signal,
        "weak_features": weak,
        "leak_warnings": leaks,
        "notes": notes,
        "seconds": round(frame.seconds, 2),
        "engine_timings": frame.timings,
    }


def _feature_signal(frame: FeatureFrame, y: np.ndarray) -> tuple[list[dict[str, Any]], list[str], list[str], list[str]]:
    """Per feature: missing share and "no signal" over every row (linear passes); its ROC-AUC alone and the
    leak checks on a seeded sample of at most REPORT_SAMPLE rows."""
    n = len(y)
    idx = np.arange(n)
    if n > REPORT_SAMPLE:
        idx = np.sort(np.random.default_rng(0).choice(n, REPORT_SAMPLE, replace=False))
    ys = y[idx]
    both = bool(ys.any() and (~ys).any())
    base = float(y.mean()) if n else 0.0
    out, no_signal, weak, leaks = [], [], [], []
    for name in frame.definition.feature_names:
        col = frame.columns[name]
        numeric = col.dtype.kind == "f"
        if numeric:
            missing = np.isnan(col)
            present = col[~missing]
            constant = present.size == 0 or (not missing.any() and present.min() == present.max())
        else:
            values = col.tolist()
            missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
            constant = len(set(values)) <= 1
        row: dict[str, Any] = {"name": name, "missing_share": round(float(missing.mean()), 4) if n else None}
        if constant:
            row["signal"] = "none"
            no_signal.append(name)
            out.append(row)
            continue
        sample = col[idx]
        if both:
            auc = _univariate_auc(sample, numeric, ys)
            row["roc_auc"] = round(auc, 4)
            if auc >= LEAK_AUC:
                leaks.append(
                    f"{name!r} alone predicts churn with ROC-AUC {auc:.3f}: possible leakage "
                    "(a value recorded after the customer churned?)"
                )
            elif abs(auc - 0.5) < WEAK_AUC_MARGIN:
                weak.append(name)
        leak = _pure_segment(sample, numeric, missing[idx], ys, base, " (sampled rows)" if n > REPORT_SAMPLE else "")
        if leak:
            leaks.append(f"{name!r} {leak}: possible leakage (an event recorded after the churn, backdated?)")
        row["signal"] = "weak" if name in weak else "ok"
        out.append(row)
    return out, no_signal, weak, leaks


def _univariate_auc(col: np.ndarray, numeric: bool, y: np.ndarray) -> float:
    """ROC-AUC of the feature alone (missing as its own value, categories by their churn rate), 0.5..1."""
    if numeric:
        x = np.where(np.isnan(col), np.nanmin(col) - 1.0 if np.isfinite(col).any() else 0.0, col)
    else:
        keys = np.array(["\0missing" if v is None else str(v) for v in col.tolist()], dtype=object)
        uniq, inv = np.unique(keys, return_inverse=True)
        rates = np.array([y[inv == i].mean() for i in range(len(uniq))])
        x = rates[inv]
    auc = M.roc_auc(y, x)
    return max(auc, 1.0 - auc)


def _pure_segment(
    col: np.ndarray, numeric: bool, missing: np.ndarray, y: np.ndarray, base: float, where: str
) -> str | None:
    """A value present almost only in rows that churn (and in enough of them), while churn is not the norm."""
    if base >= 0.5:
        return None
    if numeric:
        mask = ~missing & (col != 0)
        if mask.sum() >= LEAK_MIN_ROWS and mask.sum() < len(col) and y[mask].mean() >= LEAK_PURITY:
            return f"is non-zero in {int(mask.sum())} rows and {y[mask].mean():.1%} of them churned{where}"
        return None
    values = np.array([v for v in col.tolist()], dtype=object)
    for v in {x for x in values.tolist() if x is not None}:
        mask = values == v
        if LEAK_MIN_ROWS <= mask.sum() < len(col) and y[mask].mean() >= LEAK_PURITY:
            return f"= {v!r} in {int(mask.sum())} rows and {y[mask].mean():.1%} of them churned{where}"
    return None


def report_text(report: Mapping[str, Any]) -> str:
    """The report as a few lines for a terminal."""
    lines = [
        f"definition {report['definition']['name']} ({report['definition']['sha256'][:12]}), as of "
        f"{report['as_of']}, data until {report['data_end']}",
        f"{report['rows']} rows, label rate {report['label_rate']}",
    ]
    for c in report["cutoffs"]:
        extra = "".join(f", {k.replace('_', ' ')} {c[k]}" for k in ("not_yet_customers", "already_churned") if c.get(k))
        lines.append(f"  {c['cutoff']}: {c['rows']} rows, label rate {c['label_rate']}{extra}")
    for source, reasons in report["rejected"].items():
        for reason, n in reasons.items():
            lines.append(f"  rejected from {source}: {n} ({reason})")
    if report["no_signal"]:
        lines.append("no signal (the same value in every row): " + ", ".join(report["no_signal"]))
    if report["weak_features"]:
        lines.append("weak alone (ROC-AUC within 0.01 of 0.5): " + ", ".join(report["weak_features"]))
    for w in report["leak_warnings"]:
        lines.append(f"LEAK WARNING: {w}")
    for note in report.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)


def parse_moment(text: str) -> datetime:
    """A cutoff or as-of time: ``2026-01-01`` (midnight UTC) or ISO 8601 with an optional offset (UTC if none)."""
    raw = text.strip()
    try:
        return utc(datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00")))
    except ValueError as e:
        raise DataValidationError(f"{raw!r} is not a date or time (write 2026-01-31 or 2026-01-31T06:00:00Z)") from e


def parse_days(text: str) -> int:
    """``30d`` or ``30`` -> 30."""
    raw = text.strip().lower().removesuffix("d")
    if not raw.isdigit() or int(raw) < 1:
        raise DataValidationError(f"{text!r} is not a number of days (write 30d)")
    return int(raw)


def cutoff_range(start: datetime, end: datetime, every_days: int) -> list[datetime]:
    """``start``, ``start + every``, ... up to and including ``end``."""
    start, end = utc(start), utc(end)
    if end < start:
        raise DataValidationError(f"--to {iso(end)} is before --from {iso(start)}")
    out, c = [], start
    while c <= end:
        out.append(c)
        c += timedelta(days=every_days)
    return out
