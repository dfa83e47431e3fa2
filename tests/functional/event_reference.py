"""A plain pandas reference of the point-in-time features, written from the rules as stated, to check the
DuckDB engine's SQL against: for each cutoff, keep the events that happened and were recorded before it,
then aggregate them per customer. Slow and obvious on purpose."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd

from churnguard.domain.event_features import AggregateFeature, EntityFeature, FeatureDefinition, RatioFeature


def _utc(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s, utc=True)


def reference_rows(definition: FeatureDefinition, tables: dict[str, pd.DataFrame], cutoffs: list) -> dict:
    """{(cutoff, customer id): {feature: value, "churned": bool}} for the generated definition's kinds of features."""
    customers = tables["entity"].copy()
    customers["created"] = _utc(customers[definition.entity.created_at])
    events: dict[str, pd.DataFrame] = {}
    for name, src in definition.sources.items():
        df = tables[name].copy()
        df["ts"] = _utc(df[src.time])
        df["known"] = np.maximum(df["ts"], _utc(df[src.ingested])) if src.ingested else df["ts"]
        df["etype"] = df[src.type] if src.type else None
        keys = ["customer_id", "ts", "etype", *src.values]
        df = df.sort_values("known").drop_duplicates(keys, keep="first")
        events[name] = df
    rule = definition.label
    cancels = events[rule.source]
    cancels = cancels[cancels["etype"].isin(rule.types)] if rule.types else cancels
    out: dict = {}
    for c in cutoffs:
        c = pd.Timestamp(c)
        horizon = c + timedelta(days=rule.horizon_days)
        gone_before = set(cancels.loc[cancels["ts"] < c, "customer_id"])
        churned = set(cancels.loc[(cancels["ts"] >= c) & (cancels["ts"] < horizon), "customer_id"])
        active = customers[(customers["created"] < c) & ~customers["customer_id"].isin(gone_before)]
        values: dict[str, dict[str, Any]] = {cid: {} for cid in active["customer_id"]}
        for _, row in active.iterrows():
            for a in definition.entity.attributes:
                v = row[a.name]
                values[row["customer_id"]][a.name] = float(v) if a.type == "numeric" else v
        for f in definition.features:
            if isinstance(f, EntityFeature):
                for _, row in active.iterrows():
                    values[row["customer_id"]][f.name] = float((c - row["created"]) // timedelta(days=1))
            elif isinstance(f, AggregateFeature):
                df = events[f.source]
                df = df[df["known"] < c]
                if f.window_days is not None:
                    df = df[df["ts"] >= c - timedelta(days=f.window_days)]
                if f.types:
                    df = df[df["etype"].isin(f.types)]
                groups = df.groupby("customer_id")
                for cid in values:
                    g = groups.get_group(cid) if cid in groups.groups else df.iloc[0:0]
                    values[cid][f.name] = _aggregate(f, g, c)
            elif isinstance(f, RatioFeature):
                num, den = definition.feature(f.numerator), definition.feature(f.denominator)
                for v in values.values():
                    a, b = v[num.name], v[den.name]
                    if num.window_days and den.window_days:
                        v[f.name] = (a / num.window_days) / (b / den.window_days) if b else None
                    else:
                        v[f.name] = a / b if b else None
        for cid, v in values.items():
            out[(c.to_pydatetime(), cid)] = {**v, "churned": cid in churned}
    return out


def _aggregate(f: AggregateFeature, g: pd.DataFrame, c: pd.Timestamp) -> Any:
    if f.agg == "count":
        return float(len(g))
    col = g[f.column] if f.column else None
    if f.agg == "sum":
        return float(col.astype(float).sum()) if len(g) else 0.0
    if f.agg == "mean":
        return float(col.astype(float).mean()) if len(g) else None
    if f.agg == "min":
        return float(col.astype(float).min()) if len(g) else None
    if f.agg == "max":
        return float(col.astype(float).max()) if len(g) else None
    if f.agg == "days_since_last":
        return float((c - g["ts"].max()) // timedelta(days=1)) if len(g) else None
    if f.agg == "days_since_first":
        return float((c - g["ts"].min()) // timedelta(days=1)) if len(g) else None
    raise NotImplementedError(f.agg)
