"""The SQL a feature definition compiles to (DuckDB's dialect), one text for offline and online.

The same statements build training rows at many past cutoffs and the online vector at one cutoff,
"now": only the ``cutoffs`` table differs. The engine (adapters/duckdb_engine.py) provides

- ``raw_entity`` and ``raw_<source>``: views over the files, as read (CSV: every column text);
- ``cutoffs(k INTEGER, cutoff_us BIGINT, cutoff_iso VARCHAR, label_end_iso VARCHAR)``: the cutoffs in time
  order, k = 0, 1, ..., and when each one's label horizon ends;
- the variable ``as_of_us``: the moment the build runs as ("now"; nothing may be recorded after it),

and runs ``FeatureQuery.statements`` in order. Times are microseconds since the epoch, UTC, as
BIGINT, so every comparison is exact. The point-in-time rule is in one place, ``_known_before``:
an event counts for a cutoff when it happened strictly before it and (where an ingestion time
exists) was recorded strictly before it. Event values are read as DECIMAL(18, 6), so sums are exact
and do not depend on the order DuckDB adds them in: the online vector equals the offline row bit
for bit.

Per source, windowed aggregates come from one join of events to the days each cutoff's longest
window covers (an equi-join on the day number, then the exact bounds); whole-history aggregates
put each event in the first cutoff that knows it (again through its day number) and add the
buckets up cumulatively over the cutoffs, which must be at least a day apart. ``FeatureQuery.show``
prints the statements (``churn features sql``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from churnguard.domain.event_features.definition import (
    AggregateFeature,
    EntityFeature,
    FeatureDefinition,
    FeatureDefinitionError,
    RatioFeature,
)

US_PER_DAY = 86_400_000_000
DAY = f"{US_PER_DAY}::BIGINT"
# Timestamps written with a clock time and an offset ("...T10:00:00+02:00", "...10:00Z") carry their zone.
_HAS_OFFSET = r"'[0-9]:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?\s*([zZ]|[+-][0-9]{2}(:?[0-9]{2})?)$'"

# Why an event or customer row is left out, in the order the checks apply (a row counts once).
UNKNOWN_CUSTOMER = "unknown customer id (not in the customer table)"
BAD_TIME = "event time missing or not a timestamp"
BAD_INGESTED = "ingestion time missing or not a timestamp"
BAD_VALUE = "a value column is not a number (or beyond 12 digits before the point)"
FUTURE = "in the future: event or ingestion time after the build's as-of time"
RECORDED_EARLY = "event time after its ingestion time (beyond max_clock_skew_minutes)"
DUPLICATE = "duplicate event (same customer, time, type and values): counted once"
NO_ID = "no customer id"
BAD_CREATED = "created_at missing or not a timestamp"
BAD_CHURNED = "churned_at not a timestamp"
BAD_ATTRIBUTE = "a numeric attribute is not a finite number"


# Statements fail with this prefix when the data is unusable; the engine turns it into a DataValidationError.
DATA_ERROR = "churnguard: "


def ident(name: str) -> str:
    """A quoted SQL identifier (column names come from the user's files)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _text(expr: str) -> str:
    return f"NULLIF(TRIM(CAST({expr} AS VARCHAR)), '')"


def _present(expr: str, dtype: str) -> str:
    return f"({_text(expr)} IS NOT NULL)" if dtype == "VARCHAR" else f"({expr} IS NOT NULL)"


def timestamp_us(expr: str, dtype: str, tz: str, where: str) -> str:
    """Microseconds since the epoch (UTC) of a timestamp column; NULL when it cannot be read.

    Text with an offset ("Z", "+02:00") keeps it; text without one, and zone-less timestamp or
    date columns, are read in ``tz`` (the source's ``timezone``, UTC by default).
    """
    t = dtype.upper()
    if t == "VARCHAR":
        s = _text(expr)
        if tz == "UTC":  # the engine's session time zone is UTC: naive text is read as UTC
            return f"epoch_us(TRY_CAST({s} AS TIMESTAMPTZ))"
        return (
            f"epoch_us(CASE WHEN regexp_matches({s}, {_HAS_OFFSET}) THEN TRY_CAST({s} AS TIMESTAMPTZ) "
            f"ELSE timezone({literal(tz)}, TRY_CAST({s} AS TIMESTAMP)) END)"
        )
    if t in ("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ"):
        return f"epoch_us({expr})"
    if t.startswith("TIMESTAMP") or t == "DATE":
        return f"epoch_us(timezone({literal(tz)}, CAST({expr} AS TIMESTAMP)))"
    raise FeatureDefinitionError(
        f"{where} holds {dtype} values: a time column must be ISO 8601 text (e.g. 2026-01-31T12:00:00Z) "
        "or a timestamp/date column"
    )


def decimal(expr: str, dtype: str) -> str:
    """A value as DECIMAL(18, 6) (exact sums); NULL when missing or not a number."""
    source = _text(expr) if dtype == "VARCHAR" else expr
    return f"TRY_CAST(TRY_CAST({source} AS DOUBLE) AS DECIMAL(18, 6))"


@dataclass(frozen=True)
class FeatureQuery:
    """The compiled statements, and the queries the engine reads results with."""

    statements: tuple[str, ...]
    rejections: str  # rows (source, reason, n)
    accepted: str  # rows (source, n)
    cutoff_counts: str  # rows (k, customers, not_yet_customers, already_churned)
    data_end: str  # one row: the latest time any accepted record was known, in microseconds
    result: str  # id, k, feature columns..., churned
    export: str  # the training CSV's columns (id, cutoff, label_end, features..., churned)

    def show(self) -> str:
        parts = [s.strip() + ";" for s in self.statements]
        parts.append("-- the rows\n" + self.result.strip() + ";")
        return "\n\n".join(parts) + "\n"


def compile_query(definition: FeatureDefinition, types: Mapping[str, Mapping[str, str]]) -> FeatureQuery:
    """Compile a definition against its tables' column types (``{"entity": {col: type}, source: {...}}``).

    Raises FeatureDefinitionError for a missing column (via ``check_columns``) or a column of a type
    that cannot be read as what the definition says it is.
    """
    definition.check_columns({t: list(cols) for t, cols in types.items()})
    d = definition
    statements = _customers(d, types["entity"])
    for name in d.sources:
        statements.append(_events(d, name, types[name]))
    statements.append("CREATE TEMP TABLE grid AS SELECT cu.cid, c.k, c.cutoff_us FROM cust cu, cutoffs c")
    statements.append(_status(d))
    joins: list[str] = []
    for name, source in d.sources.items():
        windowed = [f for f in d.aggregates(name) if f.window_days is not None]
        history = [f for f in d.aggregates(name) if f.window_days is None]
        if windowed:
            statements.append(_windowed(name, windowed, source.values))
            joins.append(f"LEFT JOIN fw_{name} ON fw_{name}.cid = g.cid AND fw_{name}.k = g.k")
        if history:
            statements.append(_history(name, history, source.values))
            joins.append(f"LEFT JOIN fh_{name} ON fh_{name}.cid = g.cid AND fh_{name}.k = g.k")
    statements.append(_result(d, joins))
    names = d.feature_names
    cols = ", ".join(ident(n) for n in names)
    accepted = " UNION ALL ".join(
        f"SELECT {literal(n)} AS source, count(*)::BIGINT AS n FROM ev_{n} WHERE reject IS NULL" for n in d.sources
    )
    known = " UNION ALL ".join(f"SELECT max(known_us) AS t FROM ev_{n} WHERE reject IS NULL" for n in d.sources)
    if d.entity.churned_at:
        known += " UNION ALL SELECT max(churned_us) FROM cust"
    return FeatureQuery(
        statements=tuple(statements),
        rejections=_rejections(d),
        accepted=accepted,
        cutoff_counts=(
            "SELECT c.k, count(*)::BIGINT AS customers, "
            "count(*) FILTER (WHERE cu.created_us IS NOT NULL AND cu.created_us >= c.cutoff_us)::BIGINT "
            "AS not_yet_customers, "
            "count(*) FILTER (WHERE (cu.created_us IS NULL OR cu.created_us < c.cutoff_us) "
            "AND coalesce(st.churned_before, false))::BIGINT AS already_churned "
            "FROM cust cu CROSS JOIN cutoffs c LEFT JOIN status st ON st.cid = cu.cid AND st.k = c.k "
            "GROUP BY c.k ORDER BY c.k"
        ),
        data_end=f"SELECT max(t) FROM ({known})",
        # cid numbers customers in id order: sorting by (k, cid) is sorting by cutoff, then id.
        result=f"SELECT id, k, {cols}, churned FROM result ORDER BY k, cid",
        export=(
            f"SELECT id AS {ident(d.entity.id)}, c.cutoff_iso AS cutoff, c.label_end_iso AS label_end, "
            f"{cols}, CASE WHEN churned THEN 'Yes' ELSE 'No' END AS churned "
            "FROM result r JOIN cutoffs c ON c.k = r.k ORDER BY r.k, r.cid"
        ),
    )


# ----- the customer table ---------------------------------------------------------------------


def _customers(d: FeatureDefinition, types: Mapping[str, str]) -> list[str]:
    e = d.entity
    cols = [f"{_text(ident(e.id))} AS id"]
    checks = [f"WHEN id IS NULL THEN {literal(NO_ID)}"]
    created = "NULL::BIGINT"
    if e.created_at:
        created = timestamp_us(ident(e.created_at), types[e.created_at], e.timezone, f"entity column {e.created_at!r}")
        checks.append(f"WHEN created_us IS NULL THEN {literal(BAD_CREATED)}")
    cols.append(f"{created} AS created_us")
    churned = "NULL::BIGINT"
    if e.churned_at:
        col = ident(e.churned_at)
        churned = timestamp_us(col, types[e.churned_at], e.timezone, f"entity column {e.churned_at!r}")
        cols.append(f"{_present(col, types[e.churned_at])} AS churned_given")
        checks.append(f"WHEN churned_given AND churned_us IS NULL THEN {literal(BAD_CHURNED)}")
    cols.append(f"{churned} AS churned_us")
    for a in e.attributes:
        col = ident(a.name)
        if a.type == "numeric":
            cols.append(f"TRY_CAST({_text(col)} AS DOUBLE) AS {ident('a_' + a.name)}")
            cols.append(f"{_present(col, types[a.name])} AS {ident('g_' + a.name)}")
            checks.append(
                f"WHEN {ident('g_' + a.name)} AND NOT coalesce(isfinite({ident('a_' + a.name)}), false) "
                f"THEN {literal(BAD_ATTRIBUTE)}"
            )
        else:
            cols.append(f"{_text(col)} AS {ident('a_' + a.name)}")
    reject = "CASE " + " ".join(checks) + " END"
    return [
        f"CREATE TEMP TABLE cust_all AS SELECT *, {reject} AS reject FROM (SELECT {', '.join(cols)} FROM raw_entity)",
        # One row per customer, or the attributes (and the events' owner) are ambiguous: fail, naming some.
        "SELECT CASE WHEN count(*) > 0 THEN error("
        + literal(DATA_ERROR + "the customer table has ")
        + " || count(*) || ' ids on more than one row (e.g. ' || string_agg(id, ', ' ORDER BY id) FILTER "
        "(WHERE r <= 5) || '): keep one row per customer' ) END FROM (SELECT id, row_number() OVER (ORDER BY id) AS r "
        "FROM cust_all WHERE reject IS NULL GROUP BY id HAVING count(*) > 1)",
        "CREATE TEMP TABLE cust AS SELECT (row_number() OVER (ORDER BY id))::INTEGER AS cid, * "
        "FROM cust_all WHERE reject IS NULL",
    ]


# ----- events: typed, checked and deduplicated, once per source ---------------------------------


def _events(d: FeatureDefinition, name: str, types: Mapping[str, str]) -> str:
    s = d.sources[name]
    where = f"source {name!r} column"
    cols = [
        f"{_text(ident(s.customer_id))} AS id",
        f"{timestamp_us(ident(s.time), types[s.time], s.timezone, f'{where} {s.time!r}')} AS ts_us",
    ]
    ing = "NULL::BIGINT"
    if s.ingested:
        ing = timestamp_us(ident(s.ingested), types[s.ingested], s.timezone, f"{where} {s.ingested!r}")
    cols.append(f"{ing} AS ing_us")
    cols.append(f"{_text(ident(s.type))} AS etype" if s.type else "NULL::VARCHAR AS etype")
    bad = []
    for i, v in enumerate(s.values):
        cols.append(f"{decimal(ident(v), types[v])} AS v{i}")
        cols.append(f"{_present(ident(v), types[v])} AS p{i}")
        bad.append(f"(p{i} AND v{i} IS NULL)")
    values = "".join(f", t.v{i}" for i in range(len(s.values)))
    bad_values = " OR ".join(bad) if bad else "false"
    skew = d.max_clock_skew_minutes * 60_000_000
    checks = [
        f"WHEN cid IS NULL THEN {literal(UNKNOWN_CUSTOMER)}",
        f"WHEN ts_us IS NULL THEN {literal(BAD_TIME)}",
    ]
    if s.ingested:
        checks.append(f"WHEN ing_us IS NULL THEN {literal(BAD_INGESTED)}")
    checks += [
        f"WHEN bad_values THEN {literal(BAD_VALUE)}",
        f"WHEN greatest(ts_us, coalesce(ing_us, ts_us)) > getvariable('as_of_us') THEN {literal(FUTURE)}",
        f"WHEN ts_us > ing_us + {skew} THEN {literal(RECORDED_EARLY)}",
    ]
    # Exact copies are one event, known from the first time any copy was recorded.
    return (
        f"CREATE TEMP TABLE ev_{name} AS SELECT *, greatest(ts_us, coalesce(ing_us, ts_us)) AS known_us, "
        f"CASE {' '.join(checks)} END AS reject FROM ("
        f"SELECT c.cid, t.ts_us, t.etype{values}, min(t.ing_us) AS ing_us, bool_or(t.bad_values) AS bad_values, "
        f"count(*)::BIGINT AS copies "
        f"FROM (SELECT *, {bad_values} AS bad_values FROM (SELECT {', '.join(cols)} FROM raw_{name})) t "
        f"LEFT JOIN cust c ON c.id = t.id GROUP BY c.cid, t.ts_us, t.etype{values})"
    )


def _rejections(d: FeatureDefinition) -> str:
    parts = [
        "SELECT 'entity' AS source, reject AS reason, count(*)::BIGINT AS n FROM cust_all "
        "WHERE reject IS NOT NULL GROUP BY reject"
    ]
    for n in d.sources:
        parts.append(
            f"SELECT {literal(n)}, reject, sum(copies)::BIGINT FROM ev_{n} WHERE reject IS NOT NULL GROUP BY reject"
        )
        parts.append(
            f"SELECT {literal(n)}, {literal(DUPLICATE)}, sum(copies - 1)::BIGINT FROM ev_{n} "
            "WHERE reject IS NULL HAVING sum(copies - 1) > 0"
        )
    return " UNION ALL ".join(parts)


# ----- who is a customer at each cutoff, and who churned after it ------------------------------


def _status(d: FeatureDefinition) -> str:
    """``status(cid, k, churned_before, churned)`` for the customers the rule has anything to say about."""
    rule = d.label
    h = f"{rule.horizon_days} * {DAY}"
    if rule.kind == "churn_date":
        return (
            "CREATE TEMP TABLE status AS SELECT g.cid, g.k, cu.churned_us < g.cutoff_us AS churned_before, "
            f"cu.churned_us >= g.cutoff_us AND cu.churned_us < g.cutoff_us + {h} AS churned "
            "FROM grid g JOIN cust cu ON cu.cid = g.cid WHERE cu.churned_us IS NOT NULL"
        )
    if rule.kind == "cancellation":
        types = f" AND etype IN ({', '.join(literal(t) for t in rule.types)})" if rule.types else ""
        return (
            "CREATE TEMP TABLE status AS SELECT g.cid, g.k, bool_or(x.ts_us < g.cutoff_us) AS churned_before, "
            f"bool_or(x.ts_us >= g.cutoff_us AND x.ts_us < g.cutoff_us + {h}) AS churned "
            f"FROM grid g JOIN (SELECT cid, ts_us FROM ev_{rule.source} WHERE reject IS NULL{types}) x "
            "ON x.cid = g.cid GROUP BY g.cid, g.k"
        )
    activity = " UNION ALL ".join(f"SELECT cid, ts_us FROM ev_{s} WHERE reject IS NULL" for s in rule.sources)
    return (
        "CREATE TEMP TABLE status AS WITH m AS ("
        f"SELECT k, cutoff_us, d AS day FROM cutoffs, range((cutoff_us - {h}) // {DAY}, "
        f"(cutoff_us + {h}) // {DAY} + 1) t(d)), "
        "n AS (SELECT a.cid, m.k, count(*) FILTER (WHERE a.ts_us < m.cutoff_us) AS n_before, "
        "count(*) FILTER (WHERE a.ts_us >= m.cutoff_us) AS n_after "
        f"FROM ({activity}) a JOIN m ON a.ts_us // {DAY} = m.day "
        f"WHERE a.ts_us >= m.cutoff_us - {h} AND a.ts_us < m.cutoff_us + {h} GROUP BY a.cid, m.k) "
        "SELECT g.cid, g.k, coalesce(n.n_before, 0) = 0 AND (cu.created_us IS NULL OR cu.created_us <= "
        f"g.cutoff_us - {h}) AS churned_before, coalesce(n.n_after, 0) = 0 AS churned "
        "FROM grid g JOIN cust cu ON cu.cid = g.cid LEFT JOIN n ON n.cid = g.cid AND n.k = g.k"
    )


# ----- aggregates ------------------------------------------------------------------------------


def _types(f: AggregateFeature) -> str:
    return f"etype IN ({', '.join(literal(t) for t in f.types)})" if f.types else ""


def _value(values: tuple[str, ...], f: AggregateFeature) -> str:
    """The typed column (v0, v1, ...) of the feature's value in its source's ``ev_`` table."""
    return f"v{values.index(f.column)}" if f.column else ""


def _known_before(e: str, cutoff: str) -> str:
    """THE point-in-time rule: happened before the cutoff and, where recorded, recorded before it."""
    return f"{e}.known_us < {cutoff}"


def _windowed(name: str, features: list[AggregateFeature], values: tuple[str, ...]) -> str:
    w = max(f.window_days or 0 for f in features)
    aggs: list[str] = []
    for f in features:
        cond = " AND ".join(c for c in (f"age_us <= {f.window_days} * {DAY}", _types(f)) if c)
        flt = f"FILTER (WHERE {cond})"
        v, x = _value(values, f), ident("x_" + f.name)
        aggs += {
            "count": [f"count(*) {flt} AS {x}"],
            "sum": [f"sum({v}) {flt} AS {x}"],
            "mean": [f"sum({v}) {flt} AS {ident('s_' + f.name)}", f"count({v}) {flt} AS {ident('n_' + f.name)}"],
            "min": [f"min({v}) {flt} AS {x}"],
            "max": [f"max({v}) {flt} AS {x}"],
            "count_distinct": [f"count(DISTINCT {v}) {flt} AS {x}"],
            "days_since_first": [f"max(age_us) {flt} AS {x}"],
            "days_since_last": [f"min(age_us) {flt} AS {x}"],
        }[f.agg]
    carry = "".join(f", e.{v}" for v in sorted({_value(values, f) for f in features} - {""}))
    # Each cutoff's window as the day numbers it covers: an equi-join, then the exact bounds.
    return (
        f"CREATE TEMP TABLE fw_{name} AS WITH m AS (SELECT k, cutoff_us, d AS day FROM cutoffs, "
        f"range((cutoff_us - {w} * {DAY}) // {DAY}, cutoff_us // {DAY} + 1) t(d)), "
        f"j AS (SELECT e.cid, m.k, m.cutoff_us - e.ts_us AS age_us, e.etype{carry} "
        f"FROM ev_{name} e JOIN m ON e.ts_us // {DAY} = m.day "
        f"WHERE e.reject IS NULL AND {_known_before('e', 'm.cutoff_us')} AND e.ts_us >= m.cutoff_us - {w} * {DAY}) "
        f"SELECT cid, k, {', '.join(aggs)} FROM j GROUP BY cid, k"
    )


def _history(name: str, features: list[AggregateFeature], values: tuple[str, ...]) -> str:
    partial: list[str] = []
    cumulative: list[str] = []
    for f in features:
        flt = f"FILTER (WHERE {_types(f)})" if f.types else ""
        v = _value(values, f)
        x, s, n = ident("x_" + f.name), ident("s_" + f.name), ident("n_" + f.name)
        parts = {
            "count": [(f"count(*) {flt}", x, "sum")],
            "sum": [(f"sum({v}) {flt}", x, "sum")],
            "mean": [(f"sum({v}) {flt}", s, "sum"), (f"count({v}) {flt}", n, "sum")],
            "min": [(f"min({v}) {flt}", x, "min")],
            "max": [(f"max({v}) {flt}", x, "max")],
            "days_since_first": [(f"min(e.ts_us) {flt}", x, "min")],
            "days_since_last": [(f"max(e.ts_us) {flt}", x, "max")],
        }[f.agg]
        for expr, alias, over in parts:
            partial.append(f"{expr} AS {alias}")
            cumulative.append(f"{over}(b.{alias}) OVER w AS {alias}")
    # Each event lands in the first cutoff that knows it (the same rule as _known_before), found through the
    # day it became known: the first cutoff after that day's start, or the next one when a cutoff falls inside
    # that day after the event (cutoffs are at least a day apart, so never two in one day). An equi-join on
    # the day number, as for windows; a cutoff sees its own bucket and every earlier one.
    return (
        f"CREATE TEMP TABLE fh_{name} AS WITH span AS (SELECT min(known_us) // {DAY} AS lo, "
        f"(SELECT max(cutoff_us) FROM cutoffs) // {DAY} AS hi FROM ev_{name}), "
        f"km AS (SELECT d AS day, (SELECT min(k) FROM cutoffs WHERE cutoff_us > d * {DAY}) AS k "
        "FROM span, range(span.lo, span.hi + 1) t(d)), "
        "kc AS (SELECT km.day, km.k, c.cutoff_us FROM km JOIN cutoffs c ON c.k = km.k), "
        f"b AS (SELECT e.cid, CASE WHEN {_known_before('e', 'kc.cutoff_us')} THEN kc.k ELSE kc.k + 1 END AS k, "
        f"{', '.join(partial)} FROM (SELECT * FROM ev_{name} WHERE reject IS NULL) e "
        f"JOIN kc ON e.known_us // {DAY} = kc.day GROUP BY ALL) "
        f"SELECT g.cid, g.k, {', '.join(cumulative)} FROM grid g LEFT JOIN b ON b.cid = g.cid AND b.k = g.k "
        "WINDOW w AS (PARTITION BY g.cid ORDER BY g.k ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
    )


# ----- the rows --------------------------------------------------------------------------------


def _feature_expr(f: AggregateFeature, table: str) -> str:
    """A feature's value (DOUBLE) from its partials in ``fw_``/``fh_`` tables."""
    x = f"{table}.{ident('x_' + f.name)}"
    if f.agg in ("count", "count_distinct"):
        return f"coalesce({x}, 0)::BIGINT"
    if f.agg == "sum":
        return f"CAST(coalesce({x}, 0) AS DOUBLE)"
    if f.agg == "mean":
        s, n = f"{table}.{ident('s_' + f.name)}", f"{table}.{ident('n_' + f.name)}"
        return f"CASE WHEN {n} > 0 THEN CAST({s} AS DOUBLE) / {n} END"
    if f.agg in ("min", "max"):
        return f"CAST({x} AS DOUBLE)"
    # days_since_*: whole days (0 = within the last 24 hours), from the age in the window or the time itself.
    if f.window_days is not None:
        return f"{x} // {DAY}"
    return f"(g.cutoff_us - {x}) // {DAY}"


def _result(d: FeatureDefinition, joins: list[str]) -> str:
    inner: list[str] = ["g.cid", "g.k", "g.cutoff_us", "cu.id"]
    inner += [f"cu.{ident('a_' + a.name)} AS {ident(a.name)}" for a in d.entity.attributes]
    outer: list[str] = ["cid", "k", "cutoff_us", "id"] + [ident(a.name) for a in d.entity.attributes]
    for f in d.features:
        if isinstance(f, AggregateFeature):
            table = f"fw_{f.source}" if f.window_days is not None else f"fh_{f.source}"
            inner.append(f"{_feature_expr(f, table)} AS {ident(f.name)}")
            outer.append(ident(f.name))
        elif isinstance(f, EntityFeature):
            inner.append(f"(g.cutoff_us - cu.created_us) // {DAY} AS {ident(f.name)}")
            outer.append(ident(f.name))
        else:
            outer.append(f"{_ratio(d, f)} AS {ident(f.name)}")
    inner.append("coalesce(st.churned, false) AS churned")
    outer.append("churned")
    return (
        f"CREATE TEMP TABLE result AS SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)} "
        "FROM grid g JOIN cust cu ON cu.cid = g.cid "
        + " ".join(joins)
        + " LEFT JOIN status st ON st.cid = g.cid AND st.k = g.k "
        "WHERE (cu.created_us IS NULL OR cu.created_us < g.cutoff_us) AND NOT coalesce(st.churned_before, false))"
    )


def _ratio(d: FeatureDefinition, f: RatioFeature) -> str:
    num, den = d.feature(f.numerator), d.feature(f.denominator)
    assert isinstance(num, AggregateFeature) and isinstance(den, AggregateFeature)
    a, b = ident(num.name), ident(den.name)
    if num.window_days and den.window_days:  # per-day rates: 1.0 is "as usual"
        return f"CASE WHEN {b} > 0 THEN ({a} / {num.window_days}) / ({b} / {den.window_days}) END"
    return f"CASE WHEN {b} <> 0 THEN {a} / {b} END"
