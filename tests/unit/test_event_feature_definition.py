"""The feature definition: parsing, the problems it names, its version hash, and the SQL it compiles to."""

from __future__ import annotations

import pytest
import yaml

from churnguard.domain.event_features import (
    AggregateFeature,
    FeatureDefinition,
    FeatureDefinitionError,
    RatioFeature,
    compile_query,
)

BASE = {
    "name": "subs",
    "entity": {
        "path": "customers.csv",
        "id": "customer_id",
        "created_at": "signup",
        "attributes": [{"name": "plan", "type": "categorical"}, {"name": "fee", "type": "numeric"}],
    },
    "sources": {
        "usage": {"path": "usage.csv", "customer_id": "cid", "time": "ts", "ingested": "ing", "values": ["minutes"]},
        "billing": {"path": "billing.parquet", "customer_id": "cid", "time": "ts", "type": "status"},
    },
    "features": [
        {"name": "tenure_days", "agg": "days_since_created"},
        {"name": "sessions", "source": "usage", "agg": "count", "windows": [7, "30d", 90]},
        {"name": "minutes_30d", "source": "usage", "agg": "sum", "column": "minutes", "window": 30},
        {"name": "last_session", "source": "usage", "agg": "days_since_last"},
        {"name": "trend", "ratio": ["sessions_30d", "sessions_90d"]},
        {"name": "failed_30d", "source": "billing", "agg": "count", "types": ["failed"], "window": 30},
    ],
    "label": {"horizon_days": 30, "cancellation": {"source": "billing", "types": ["cancel"]}},
}
TYPES = {
    "entity": {"customer_id": "VARCHAR", "signup": "VARCHAR", "plan": "VARCHAR", "fee": "VARCHAR"},
    "usage": {"cid": "VARCHAR", "ts": "VARCHAR", "ing": "VARCHAR", "minutes": "VARCHAR"},
    "billing": {"cid": "BIGINT", "ts": "TIMESTAMP WITH TIME ZONE", "status": "VARCHAR"},
}


def with_(**changes):
    data = yaml.safe_load(yaml.safe_dump(BASE))
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        if value is None:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


def problems(data) -> str:
    with pytest.raises(FeatureDefinitionError) as e:
        FeatureDefinition.from_dict(data)
    return str(e.value)


def test_a_definition_expands_windows_into_named_features_in_order():
    d = FeatureDefinition.from_dict(BASE)

    assert d.feature_names == [
        "plan",
        "fee",
        "tenure_days",
        "sessions_7d",
        "sessions_30d",
        "sessions_90d",
        "minutes_30d",
        "last_session",
        "trend",
        "failed_30d",
    ]
    assert d.feature("sessions_30d") == AggregateFeature("sessions_30d", "usage", "count", None, (), 30)
    assert d.feature("last_session").window_days is None  # the whole history before the cutoff
    assert d.feature("trend") == RatioFeature("trend", "sessions_30d", "sessions_90d")
    assert d.entity.format == "csv" and d.sources["billing"].format == "parquet"


def test_the_version_hash_follows_content_not_layout():
    a = FeatureDefinition.from_dict(BASE)
    reordered = FeatureDefinition.from_yaml("# a comment\n" + yaml.safe_dump(BASE, sort_keys=True))
    changed = FeatureDefinition.from_dict(with_(features__1__windows=[7, 30, 90, 180]))

    assert a.sha256 == reordered.sha256
    assert a.sha256 != changed.sha256
    assert len(a.sha256) == 64


@pytest.mark.parametrize(
    "change, says",
    [
        ({"features__1__agg": "median"}, "unknown aggregate 'median'; known: count, sum, mean"),
        ({"features__2__column": "seconds"}, "column 'seconds' is not among sources.usage.values (minutes)"),
        ({"features__2__column": None}, "sum needs column"),
        ({"features__1__source": "clicks"}, "unknown source 'clicks' (defined: billing, usage)"),
        ({"features__5__source": "usage"}, "types needs sources.usage.type"),
        ({"features__4__ratio": ["sessions_30d", "nope"]}, "ratio names 'nope', which is not an aggregate feature"),
        ({"features__1__name": "cutoff", "features__1__window": 7, "features__1__windows": None}, "reserved"),
        ({"features__1__name": "label_end", "features__1__window": 7, "features__1__windows": None}, "reserved"),
        ({"features__2__name": "plan"}, "'plan' is used more than once"),
        ({"features__1__windows": [0]}, "whole number of days >= 1"),
        ({"label__cancellation__source": "clicks"}, "unknown source 'clicks'"),
        ({"label__inactivity_days": 30}, "exactly one rule"),
        ({"sources__usage__timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"sources__usage__path": "usage.txt"}, "cannot tell CSV from Parquet"),
        ({"entity__created_at": None}, "days_since_created needs entity.created_at"),
        ({"colour": "blue"}, "unknown key 'colour'"),
    ],
)
def test_each_problem_is_named_with_where_and_how_to_fix_it(change, says):
    assert says in problems(with_(**change))


def test_count_distinct_needs_a_window():
    data = with_()
    data["features"].append({"name": "kinds", "source": "usage", "agg": "count_distinct", "column": "minutes"})

    assert "count_distinct needs a window" in problems(data)


def test_every_problem_is_listed_at_once():
    text = problems(with_(features__1__agg="median", features__2__column="seconds"))

    assert "median" in text and "seconds" in text


def test_a_missing_column_is_named_with_the_columns_that_exist():
    d = FeatureDefinition.from_dict(BASE)
    types = {**TYPES, "usage": {"cid": "VARCHAR", "ts": "VARCHAR", "ing": "VARCHAR", "mins": "VARCHAR"}}

    with pytest.raises(FeatureDefinitionError) as e:
        compile_query(d, types)

    assert (
        "source 'usage' (usage.csv) has no column 'minutes' (named by values); its columns are: cid, ts, ing, mins"
        in str(e.value)
    )


def test_a_time_column_of_numbers_is_refused_by_name():
    d = FeatureDefinition.from_dict(BASE)
    types = {**TYPES, "usage": {**TYPES["usage"], "ts": "BIGINT"}}

    with pytest.raises(FeatureDefinitionError, match="source 'usage' column 'ts' holds BIGINT"):
        compile_query(d, types)


def test_every_aggregate_reads_events_through_the_one_point_in_time_rule():
    q = compile_query(FeatureDefinition.from_dict(BASE), TYPES)
    features = [s for s in q.statements if s.startswith(("CREATE TEMP TABLE fw_", "CREATE TEMP TABLE fh_"))]

    assert len(features) == 3  # usage windowed, usage history, billing windowed
    for s in features:
        assert "known_us < " in s, s
    # known_us is the later of the event and ingestion times; the cancellation label reads event times.
    events = next(s for s in q.statements if s.startswith("CREATE TEMP TABLE ev_usage"))
    assert "greatest(ts_us, coalesce(ing_us, ts_us)) AS known_us" in events
    assert "x.ts_us >= g.cutoff_us" in next(s for s in q.statements if "TABLE status" in s)


def test_paths_are_read_beside_the_definition_local_or_in_s3(tmp_path):
    local = FeatureDefinition.from_dict(BASE, base=str(tmp_path))
    remote = FeatureDefinition.from_dict(BASE, base="s3://bucket/features")

    assert local.path_of("usage.csv") == str(tmp_path / "usage.csv")
    assert remote.path_of("usage.csv") == "s3://bucket/features/usage.csv"
    assert remote.path_of("s3://other/x.csv") == "s3://other/x.csv"


def test_the_readme_example_definition_is_valid():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("### The definition", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]

    d = FeatureDefinition.from_yaml(block)

    assert "sessions_90d" in d.feature_names and d.label.kind == "cancellation"
    assert d.sources["tickets"].timezone == "Europe/Berlin" and d.sources["payments"].format == "csv"
