"""A feature definition: which customer table and event logs to read, and which features to compute.

One YAML file, validated here, hashed like the model schema, and compiled to SQL
(``event_features.sql``) that builds training rows at past cutoffs and the online vector at
"now" with the same statements. Every problem is named with where it is and how to fix it.

    definition = FeatureDefinition.load("features.yaml")
    definition.sha256                      # the version: changes whenever the definition does
    definition.check_columns({"entity": ["customer_id", ...], "usage": [...]})   # names a missing column
"""

from __future__ import annotations

import hashlib
import json
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from churnguard.domain.errors import DataValidationError
from churnguard.domain.time_folds import CUTOFF_COLUMN, LABEL_END_COLUMN

# Aggregates over one event source; ``column`` names one of the source's value columns where needed.
AGGREGATES = (
    "count",
    "sum",
    "mean",
    "min",
    "max",
    "count_distinct",
    "days_since_first",
    "days_since_last",
)
NEEDS_COLUMN = frozenset({"sum", "mean", "min", "max", "count_distinct"})
# Aggregates of the customer table itself.
ENTITY_AGGREGATES = ("days_since_created",)
# Columns every training CSV carries besides the features (and CUTOFF_COLUMN, LABEL_END_COLUMN: time_folds).
TARGET_COLUMN = "churned"
POSITIVE_LABEL = "Yes"
NEGATIVE_LABEL = "No"
FORMATS = ("csv", "parquet")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class FeatureDefinitionError(DataValidationError):
    """The feature definition is malformed, or names something its data does not have."""


@dataclass(frozen=True)
class Attribute:
    """A static column of the customer table carried into every row as a feature."""

    name: str
    type: str  # numeric | categorical

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type}


@dataclass(frozen=True)
class Entity:
    """The customer table: one row per customer."""

    path: str
    id: str
    format: str
    created_at: str | None = None
    churned_at: str | None = None
    timezone: str = "UTC"
    attributes: tuple[Attribute, ...] = ()

    def columns(self) -> list[tuple[str, str]]:
        """(column, what names it) for every column the definition reads from the table."""
        out = [(self.id, "entity.id")]
        if self.created_at:
            out.append((self.created_at, "entity.created_at"))
        if self.churned_at:
            out.append((self.churned_at, "entity.churned_at"))
        out += [(a.name, "entity.attributes") for a in self.attributes]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "id": self.id,
            "format": self.format,
            "created_at": self.created_at,
            "churned_at": self.churned_at,
            "timezone": self.timezone,
            "attributes": [a.to_dict() for a in self.attributes],
        }


@dataclass(frozen=True)
class EventSource:
    """One event log: CSV or Parquet files, one row per event."""

    name: str
    path: str
    format: str
    customer_id: str
    time: str
    ingested: str | None = None
    type: str | None = None
    values: tuple[str, ...] = ()
    timezone: str = "UTC"

    def columns(self) -> list[tuple[str, str]]:
        out = [(self.customer_id, "customer_id"), (self.time, "time")]
        if self.ingested:
            out.append((self.ingested, "ingested"))
        if self.type:
            out.append((self.type, "type"))
        out += [(v, "values") for v in self.values]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "customer_id": self.customer_id,
            "time": self.time,
            "ingested": self.ingested,
            "type": self.type,
            "values": list(self.values),
            "timezone": self.timezone,
        }


@dataclass(frozen=True)
class AggregateFeature:
    """An aggregate of one source's events before the cutoff, optionally of some event types, over a window."""

    name: str
    source: str
    agg: str
    column: str | None = None
    types: tuple[str, ...] = ()
    window_days: int | None = None  # None: the whole history before the cutoff

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "agg": self.agg,
            "column": self.column,
            "types": list(self.types),
            "window_days": self.window_days,
        }


@dataclass(frozen=True)
class EntityFeature:
    """A feature of the customer table at the cutoff (``days_since_created``: tenure in days)."""

    name: str
    agg: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "agg": self.agg}


@dataclass(frozen=True)
class RatioFeature:
    """``numerator / denominator`` of two aggregate features; per-day rates when both have windows,
    so 1.0 means "as usual" and 0.5 "half the usual rate" (a trend). Missing when the denominator is 0."""

    name: str
    numerator: str
    denominator: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ratio": [self.numerator, self.denominator]}


Feature = AggregateFeature | EntityFeature | RatioFeature


@dataclass(frozen=True)
class LabelRule:
    """Who churned within ``horizon_days`` after a cutoff, and who had already churned before it.

    - ``cancellation``: an event of ``source`` (of ``types``, if given) at or after the cutoff, before
      cutoff + horizon; a customer with one before the cutoff has already churned;
    - ``churn_date``: the customer table's ``churned_at`` in [cutoff, cutoff + horizon);
    - ``inactivity``: no event of ``sources`` in [cutoff, cutoff + horizon); a customer with none in the
      horizon before the cutoff (and a customer for longer than that) has already churned.
    Event times decide (a cancellation recorded late still happened when it happened).
    """

    kind: str  # cancellation | churn_date | inactivity
    horizon_days: int
    source: str | None = None
    types: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "horizon_days": self.horizon_days,
            "source": self.source,
            "types": list(self.types),
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class FeatureDefinition:
    name: str
    entity: Entity
    sources: Mapping[str, EventSource]
    features: tuple[Feature, ...]
    label: LabelRule
    max_clock_skew_minutes: int = 5
    # Where relative paths are read from (the definition file's folder); not part of the hash.
    base: str = field(default="", compare=False)

    # ----- reading ------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> FeatureDefinition:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise FeatureDefinitionError(f"cannot read the feature definition {path}: {e}") from e
        return cls.from_yaml(text, source=str(path), base=str(Path(path).resolve().parent))

    @classmethod
    def from_yaml(cls, text: str, source: str = "feature definition", base: str = "") -> FeatureDefinition:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise FeatureDefinitionError(f"{source} is not valid YAML: {e}") from e
        if not isinstance(data, dict):
            raise FeatureDefinitionError(f"{source} is not a mapping (see the README's feature definition example)")
        return cls.from_dict(data, base=base)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base: str = "") -> FeatureDefinition:
        """Parse and check; every problem found is listed in one FeatureDefinitionError."""
        p = _Problems()
        known = {"name", "entity", "sources", "features", "label", "max_clock_skew_minutes"}
        for k in sorted(set(data) - known):
            p.add(f"unknown key {k!r} (known: {', '.join(sorted(known))})")
        name = str(data.get("name") or "events")
        entity = _entity(data.get("entity"), p)
        sources = _sources(data.get("sources"), p)
        features = _features(data.get("features"), sources, entity, p)
        label = _label(data.get("label"), sources, entity, p)
        skew = _int(data.get("max_clock_skew_minutes", 5), "max_clock_skew_minutes", p, minimum=0)
        reserved = {CUTOFF_COLUMN, LABEL_END_COLUMN, TARGET_COLUMN}
        if entity is not None:
            reserved.add(entity.id)
            names = [a.name for a in entity.attributes] + [f.name for f in features]
            for n in sorted({n for n in names if names.count(n) > 1}):
                p.add(f"feature name {n!r} is used more than once (attributes and features share one namespace)")
            for n in sorted(set(names) & reserved):
                p.add(f"feature name {n!r} is reserved for the training CSV's id, cutoff, label_end or target column")
        p.raise_if_any()
        assert entity is not None and label is not None  # no problems means both parsed
        return cls(
            name=name,
            entity=entity,
            sources=sources,
            features=tuple(features),
            label=label,
            max_clock_skew_minutes=skew if skew is not None else 5,
            base=base,
        )

    # ----- identity -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "entity": self.entity.to_dict(),
            "sources": {k: s.to_dict() for k, s in sorted(self.sources.items())},
            "features": [f.to_dict() for f in self.features],
            "label": self.label.to_dict(),
            "max_clock_skew_minutes": self.max_clock_skew_minutes,
        }

    @property
    def sha256(self) -> str:
        """The definition's version: the hash of its canonical form (file layout and comments aside)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # ----- what it produces ---------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        """Every column of a feature vector, in order: the carried attributes, then the features."""
        return [a.name for a in self.entity.attributes] + [f.name for f in self.features]

    def aggregates(self, source: str | None = None) -> list[AggregateFeature]:
        return [f for f in self.features if isinstance(f, AggregateFeature) and source in (None, f.source)]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def path_of(self, path: str) -> str:
        """A source path as given (``s3://``, absolute) or relative to the definition's folder (local or S3)."""
        if path.startswith("s3://") or Path(path).is_absolute() or not self.base:
            return path
        if self.base.startswith("s3://"):
            return self.base.rstrip("/") + "/" + path
        return str(Path(self.base) / path)

    # ----- checks against the data --------------------------------------------------------
    def check_columns(self, available: Mapping[str, Sequence[str]]) -> None:
        """``available``: the columns of ``"entity"`` and of each source. Names every missing column."""
        p = _Problems()
        tables: list[tuple[str, str, list[tuple[str, str]]]] = [("entity", self.entity.path, self.entity.columns())]
        tables += [(n, s.path, s.columns()) for n, s in self.sources.items()]
        for table, path, needed in tables:
            have = list(available.get(table, []))
            missing = [(c, why) for c, why in needed if c not in have]
            for c, why in missing:
                what = "the customer table" if table == "entity" else f"source {table!r}"
                p.add(
                    f"{what} ({path}) has no column {c!r} (named by {why}); its columns are: "
                    f"{', '.join(have) if have else '(none)'}"
                )
        p.raise_if_any()


# ----- parsing helpers -----------------------------------------------------------------------


class _Problems:
    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, problem: str) -> None:
        self.items.append(problem)

    def raise_if_any(self) -> None:
        if self.items:
            raise FeatureDefinitionError(
                "the feature definition has problems:\n" + "\n".join(f"  - {i}" for i in self.items)
            )


def _str(v: Any, where: str, p: _Problems, required: bool = True) -> str | None:
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            p.add(f"{where} is required")
        return None
    if not isinstance(v, (str, int)) or isinstance(v, bool):
        p.add(f"{where} must be a column name or path, not {v!r}")
        return None
    return str(v).strip()


def _int(v: Any, where: str, p: _Problems, minimum: int = 1) -> int | None:
    if isinstance(v, str) and re.fullmatch(r"\s*\d+\s*d?\s*", v):
        v = int(v.strip().rstrip("d"))
    if not isinstance(v, int) or isinstance(v, bool) or v < minimum:
        p.add(f"{where} must be a whole number of days >= {minimum} (e.g. 30 or '30d'), not {v!r}")
        return None
    return v


def _str_list(v: Any, where: str, p: _Problems) -> tuple[str, ...]:
    if v is None:
        return ()
    if isinstance(v, (str, int)) and not isinstance(v, bool):
        return (str(v),)
    if isinstance(v, list) and all(isinstance(x, (str, int)) and not isinstance(x, bool) for x in v):
        return tuple(str(x) for x in v)
    p.add(f"{where} must be a name or a list of names, not {v!r}")
    return ()


def _format(path: str | None, given: Any, where: str, p: _Problems) -> str:
    if given is not None:
        if given not in FORMATS:
            p.add(f"{where}.format must be one of {', '.join(FORMATS)}, not {given!r}")
        return str(given)
    lower = (path or "").lower().rstrip("/")
    if lower.endswith((".parquet", ".pq", ".parquet/*", "*.parquet")):
        return "parquet"
    if lower.endswith((".csv", ".csv.gz", "*.csv", "*.csv.gz")):
        return "csv"
    p.add(f"{where}.format: cannot tell CSV from Parquet by the path {path!r}; add format: csv or format: parquet")
    return "csv"


def _timezone(v: Any, where: str, p: _Problems) -> str:
    tz = str(v or "UTC")
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        p.add(f"{where}.timezone {tz!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)")
    return tz


def _entity(raw: Any, p: _Problems) -> Entity | None:
    if not isinstance(raw, dict):
        p.add("entity is required: the customer table, e.g. {path: customers.csv, id: customer_id}")
        return None
    known = {"path", "id", "format", "created_at", "churned_at", "timezone", "attributes"}
    for k in sorted(set(raw) - known):
        p.add(f"entity: unknown key {k!r} (known: {', '.join(sorted(known))})")
    path = _str(raw.get("path"), "entity.path", p)
    ident = _str(raw.get("id"), "entity.id", p)
    attrs: list[Attribute] = []
    for i, a in enumerate(raw.get("attributes") or []):
        if isinstance(a, str):
            a = {"name": a, "type": "categorical"}
        if not isinstance(a, dict) or a.get("type", "categorical") not in ("numeric", "categorical"):
            p.add(f"entity.attributes[{i}] must be {{name: column, type: numeric|categorical}}, not {a!r}")
            continue
        name = _str(a.get("name"), f"entity.attributes[{i}].name", p)
        if name is not None:
            if not _NAME.match(name):
                p.add(f"entity.attributes[{i}]: {name!r} must be a plain name (letters, digits, _) to be a feature")
            attrs.append(Attribute(name, str(a.get("type", "categorical"))))
    if path is None or ident is None:
        return None
    return Entity(
        path=path,
        id=ident,
        format=_format(path, raw.get("format"), "entity", p),
        created_at=_str(raw.get("created_at"), "entity.created_at", p, required=False),
        churned_at=_str(raw.get("churned_at"), "entity.churned_at", p, required=False),
        timezone=_timezone(raw.get("timezone"), "entity", p),
        attributes=tuple(attrs),
    )


def _sources(raw: Any, p: _Problems) -> dict[str, EventSource]:
    if not isinstance(raw, dict) or not raw:
        p.add(
            "sources is required: at least one event log, e.g. {usage: {path: usage.csv, customer_id: ..., time: ...}}"
        )
        return {}
    out: dict[str, EventSource] = {}
    known = {"path", "format", "customer_id", "time", "ingested", "type", "values", "timezone"}
    for name, s in raw.items():
        where = f"sources.{name}"
        if not isinstance(name, str) or not _NAME.match(name):
            p.add(f"{where}: a source name must be a plain name (letters, digits, _)")
            continue
        if not isinstance(s, dict):
            p.add(f"{where} must be a mapping with path, customer_id and time")
            continue
        for k in sorted(set(s) - known):
            p.add(f"{where}: unknown key {k!r} (known: {', '.join(sorted(known))})")
        path = _str(s.get("path"), f"{where}.path", p)
        cid = _str(s.get("customer_id"), f"{where}.customer_id", p)
        time = _str(s.get("time"), f"{where}.time", p)
        if path is None or cid is None or time is None:
            continue
        out[name] = EventSource(
            name=name,
            path=path,
            format=_format(path, s.get("format"), where, p),
            customer_id=cid,
            time=time,
            ingested=_str(s.get("ingested"), f"{where}.ingested", p, required=False),
            type=_str(s.get("type"), f"{where}.type", p, required=False),
            values=_str_list(s.get("values"), f"{where}.values", p),
            timezone=_timezone(s.get("timezone"), where, p),
        )
    return out


def _features(raw: Any, sources: Mapping[str, EventSource], entity: Entity | None, p: _Problems) -> list[Feature]:
    if not isinstance(raw, list) or not raw:
        p.add("features is required: a list such as [{name: sessions, source: usage, agg: count, windows: [7, 30]}]")
        return []
    out: list[Feature] = []
    known = {"name", "source", "agg", "column", "type", "types", "window", "windows", "ratio"}
    for i, f in enumerate(raw):
        where = f"features[{i}]"
        if not isinstance(f, dict):
            p.add(f"{where} must be a mapping, not {f!r}")
            continue
        where = f"features[{i}] ({f.get('name', '?')})"
        for k in sorted(set(f) - known):
            p.add(f"{where}: unknown key {k!r} (known: {', '.join(sorted(known))})")
        name = _str(f.get("name"), f"{where}.name", p)
        if name is None:
            continue
        if not _NAME.match(name):
            p.add(f"{where}: name {name!r} must be letters, digits and _ (it becomes a CSV column)")
            continue
        if "ratio" in f:
            pair = f.get("ratio")
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) for x in pair)):
                p.add(f"{where}.ratio must be [numerator_feature, denominator_feature], not {pair!r}")
                continue
            defined = {g.name: g for g in out}
            for x in pair:
                if not isinstance(defined.get(x), AggregateFeature):
                    p.add(f"{where}.ratio names {x!r}, which is not an aggregate feature defined above it")
            out.append(RatioFeature(name, pair[0], pair[1]))
            continue
        agg = f.get("agg")
        if agg in ENTITY_AGGREGATES:
            if entity is not None and agg == "days_since_created" and not entity.created_at:
                p.add(f"{where}: days_since_created needs entity.created_at (the customer's start date column)")
            out.append(EntityFeature(name, str(agg)))
            continue
        if agg not in AGGREGATES:
            p.add(
                f"{where}: unknown aggregate {agg!r}; known: {', '.join(AGGREGATES)} (events), "
                f"{', '.join(ENTITY_AGGREGATES)} (customer table), or ratio: [a, b]"
            )
            continue
        src = _str(f.get("source"), f"{where}.source", p)
        if src is None:
            continue
        source = sources.get(src)
        if source is None:
            p.add(f"{where}: unknown source {src!r} (defined: {', '.join(sorted(sources)) or 'none'})")
            continue
        column = _str(f.get("column"), f"{where}.column", p, required=False)
        if agg in NEEDS_COLUMN and column is None:
            p.add(f"{where}: {agg} needs column: one of the source's values ({', '.join(source.values) or 'none'})")
        if agg not in NEEDS_COLUMN and column is not None:
            p.add(f"{where}: {agg} takes no column")
        if column is not None and column not in source.values:
            p.add(
                f"{where}: column {column!r} is not among sources.{src}.values ({', '.join(source.values) or 'none'})"
            )
        types = _str_list(f.get("types", f.get("type")), f"{where}.types", p)
        if types and not source.type:
            p.add(f"{where}: types needs sources.{src}.type (the event-type column)")
        windows: list[int | None]
        if "windows" in f:
            if not isinstance(f["windows"], list) or not f["windows"]:
                p.add(f"{where}.windows must be a list of day counts, e.g. [7, 30, 90]")
                continue
            windows = [_int(w, f"{where}.windows", p) for w in f["windows"]]
            names = [f"{name}_{w}d" for w in windows]
        else:
            windows = [_int(f["window"], f"{where}.window", p) if f.get("window") is not None else None]
            names = [name]
        for w, n in zip(windows, names, strict=True):
            if w is None and agg == "count_distinct":
                p.add(f"{where}: count_distinct needs a window (a distinct count over all history does not add up)")
            out.append(AggregateFeature(n, src, str(agg), column, types, w))
    return out


def _label(raw: Any, sources: Mapping[str, EventSource], entity: Entity | None, p: _Problems) -> LabelRule | None:
    if not isinstance(raw, dict):
        p.add(
            "label is required: {horizon_days: 30, cancellation: {source: ..., types: [...]}} "
            "or {inactivity_days: 30} or {horizon_days: 30, churn_date: true}"
        )
        return None
    known = {"horizon_days", "cancellation", "inactivity_days", "sources", "churn_date"}
    for k in sorted(set(raw) - known):
        p.add(f"label: unknown key {k!r} (known: {', '.join(sorted(known))})")
    kinds = [k for k in ("cancellation", "inactivity_days", "churn_date") if raw.get(k)]
    if len(kinds) != 1:
        p.add("label needs exactly one rule: cancellation, inactivity_days or churn_date")
        return None
    if kinds[0] == "inactivity_days":
        days = _int(raw["inactivity_days"], "label.inactivity_days", p)
        if raw.get("horizon_days") not in (None, days):
            p.add("label: with inactivity_days the horizon is the inactivity period; drop horizon_days")
        act = _str_list(raw.get("sources"), "label.sources", p) or tuple(sources)
        for s in act:
            if s not in sources:
                p.add(f"label.sources names unknown source {s!r}")
        return LabelRule("inactivity", days or 1, sources=act)
    horizon = _int(raw.get("horizon_days"), "label.horizon_days", p)
    if kinds[0] == "churn_date":
        if entity is not None and not entity.churned_at:
            p.add("label.churn_date needs entity.churned_at (the column holding each customer's churn date)")
        return LabelRule("churn_date", horizon or 1)
    c = raw["cancellation"]
    if not isinstance(c, dict):
        p.add("label.cancellation must be {source: name, types: [cancel]}")
        return None
    src = _str(c.get("source"), "label.cancellation.source", p)
    types = _str_list(c.get("types", c.get("type")), "label.cancellation.types", p)
    if src is not None and src not in sources:
        p.add(f"label.cancellation.source names unknown source {src!r}")
    elif src is not None and types and not sources[src].type:
        p.add(f"label.cancellation.types needs sources.{src}.type (the event-type column)")
    return LabelRule("cancellation", horizon or 1, source=src, types=types)
