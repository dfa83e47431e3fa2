"""Canary and shadow: letting a challenger model prove itself on live traffic.

- Canary: a configured share of customers is answered by the challenger. Assignment is sticky:
  ``identity.bucket_of(customer_key)`` puts a customer in the same one of 10,000 buckets on every
  request and in every container, so the same customer always sees the same model. Requests
  without a customer id cannot be assigned stickily and stay with the champion.
- Shadow: the challenger scores every request after the champion has answered; its score is only
  logged (variant ``shadow``), never returned.

The configuration is one registry item (``ALIAS#canary``: version, share, shadow), read at most
every TTL seconds, after a response has been computed, never before one.

Per-variant results come from feedback: outcomes joined point in time to the prediction log
(``outcomes.join_point_in_time``) and compared with a significance test: a two-proportion z-test
of error rates for a canary (independent groups), McNemar's test for shadow (the same customers
scored by both models).

    routes_to_canary(customer_key("7590-VHVEG", key), share=0.1)   # True for ~10% of customers
    compare_variants(join_point_in_time(log_records, outcomes))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from churnguard.domain.classification import brier, roc_auc
from churnguard.domain.identity import bucket_of

log = logging.getLogger(__name__)

CANARY_ALIAS = "canary"
BUCKETS = 10_000
# Below this many labelled predictions per variant the comparison says so instead of testing.
MIN_LABELLED = 30


@dataclass(frozen=True)
class CanaryConfig:
    version: str
    share: float = 0.0
    shadow: bool = False

    def __post_init__(self) -> None:
        if not self.version:
            raise ValueError("a canary needs a model version")
        if not (isinstance(self.share, (int, float)) and math.isfinite(self.share) and 0 <= self.share <= 1):
            raise ValueError(f"share must be between 0 and 1, not {self.share!r}")
        if not self.shadow and self.share <= 0:
            raise ValueError("a canary needs a share above 0 (or use shadow mode)")

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "share": self.share, "shadow": self.shadow}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CanaryConfig:
        return cls(version=str(d["version"]), share=float(d.get("share", 0.0)), shadow=bool(d.get("shadow", False)))


def routes_to_canary(customer_key: str | None, share: float) -> bool:
    """Whether this customer is answered by the canary; the same answer for the same key, always."""
    if customer_key is None or share <= 0:
        return False
    return bucket_of(customer_key, BUCKETS) < round(share * BUCKETS)


@dataclass(frozen=True)
class Challenger:
    config: CanaryConfig
    predictor: Any  # churnguard.domain.predictor.Predictor

    @property
    def shadow(self) -> bool:
        return self.config.shadow

    def answers(self, customer_key: str | None) -> bool:
        return not self.config.shadow and routes_to_canary(customer_key, self.config.share)


# ----- per-variant results from feedback -----------------------------------------------------
def _variant_summary(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    import numpy as np

    y = np.array([bool(r["churned"]) for r in rows], dtype=float)
    p = np.array([float(r["churn_probability"]) for r in rows])
    decided = np.array([bool(r["will_churn"]) for r in rows], dtype=float)
    errors = int(np.sum(decided != y))
    out: dict[str, Any] = {
        "n": len(rows),
        "churned": int(y.sum()),
        "errors": errors,
        "error_rate": errors / len(rows),
        "brier": float(brier(y, p)),
        "roc_auc": float(roc_auc(y, p)) if 0 < y.sum() < len(y) else None,
        "model_versions": sorted({str(r["model_version"]) for r in rows}),
    }
    return out


def two_proportion_z_test(errors_a: int, n_a: int, errors_b: int, n_b: int) -> tuple[float, float]:
    """(z, two-sided p) for H0: both groups have the same error rate."""
    pooled = (errors_a + errors_b) / (n_a + n_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if se == 0:
        return 0.0, 1.0
    z = (errors_a / n_a - errors_b / n_b) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def mcnemar_test(only_a_right: int, only_b_right: int) -> tuple[float, float]:
    """(statistic, two-sided p) on the discordant pairs; exact binomial below 25 of them."""
    d = only_a_right + only_b_right
    if d == 0:
        return 0.0, 1.0
    if d < 25:
        k = min(only_a_right, only_b_right)
        p = 2 * sum(math.comb(d, i) for i in range(k + 1)) / 2**d
        return float(k), min(1.0, p)
    stat = (abs(only_a_right - only_b_right) - 1) ** 2 / d
    return stat, math.erfc(math.sqrt(stat / 2))


def compare_variants(
    joined: Iterable[Mapping[str, Any]],
    baseline: str = "champion",
    alpha: float = 0.05,
    min_labelled: int = MIN_LABELLED,
) -> dict[str, Any]:
    """Per-variant results and a test of each challenger variant against ``baseline``.

    ``joined`` is the output of ``outcomes.join_point_in_time``. Returns
    ``{"variants": {name: summary}, "tests": {name: {...}}}``; a test with too little data says so.
    """
    rows = list(joined)
    by_variant: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        by_variant.setdefault(r["variant"], []).append(r)
    report: dict[str, Any] = {
        "variants": {v: _variant_summary(rs) for v, rs in sorted(by_variant.items())},
        "tests": {},
        "alpha": alpha,
    }
    base = by_variant.get(baseline, [])
    for variant, rs in sorted(by_variant.items()):
        if variant == baseline:
            continue
        if variant == "shadow":
            test = _paired_test(base, rs, min_labelled)
        else:
            test = _independent_test(base, rs, min_labelled)
        if test.get("p_value") is not None:
            test["significant"] = test["p_value"] < alpha
            diff = test["error_rate_difference"]
            test["verdict"] = (
                "no significant difference"
                if not test["significant"]
                else f"{variant} makes fewer errors"
                if diff < 0
                else f"{variant} makes more errors"
            )
        report["tests"][variant] = test
    return report


def _insufficient(n_base: int, n_other: int, min_labelled: int) -> dict[str, Any]:
    return {
        "p_value": None,
        "verdict": f"insufficient data: {n_base} and {n_other} labelled predictions, at least "
        f"{min_labelled} each needed",
    }


def _independent_test(
    base: list[Mapping[str, Any]], other: list[Mapping[str, Any]], min_labelled: int
) -> dict[str, Any]:
    if len(base) < min_labelled or len(other) < min_labelled:
        return {"test": "two-proportion z-test of error rates", **_insufficient(len(base), len(other), min_labelled)}
    e_b = sum(bool(r["will_churn"]) != bool(r["churned"]) for r in base)
    e_o = sum(bool(r["will_churn"]) != bool(r["churned"]) for r in other)
    z, p = two_proportion_z_test(e_o, len(other), e_b, len(base))
    return {
        "test": "two-proportion z-test of error rates",
        "statistic": z,
        "p_value": p,
        "error_rate_difference": e_o / len(other) - e_b / len(base),
        "n": {"baseline": len(base), "challenger": len(other)},
    }


def _paired_test(base: list[Mapping[str, Any]], shadow: list[Mapping[str, Any]], min_labelled: int) -> dict[str, Any]:
    def key(r: Mapping[str, Any]) -> tuple[str, str]:
        return r["customer_key"], r["observed_date"]

    base_by = {key(r): r for r in base}
    pairs = [(base_by[key(r)], r) for r in shadow if key(r) in base_by]
    if len(pairs) < min_labelled:
        return {"test": "McNemar's test (paired)", **_insufficient(len(pairs), len(pairs), min_labelled)}
    right = [
        (bool(b["will_churn"]) == bool(b["churned"]), bool(s["will_churn"]) == bool(s["churned"])) for b, s in pairs
    ]
    only_base = sum(rb and not rs for rb, rs in right)
    only_shadow = sum(rs and not rb for rb, rs in right)
    stat, p = mcnemar_test(only_base, only_shadow)
    return {
        "test": "McNemar's test (paired)",
        "statistic": stat,
        "p_value": p,
        "error_rate_difference": (only_base - only_shadow) / len(pairs),
        "n": {"pairs": len(pairs), "only_baseline_right": only_base, "only_challenger_right": only_shadow},
    }


def error_rates_over_time(joined: Iterable[Mapping[str, Any]], period_days: int = 7) -> dict[str, list[dict[str, Any]]]:
    """Each variant's error rate per period of ``period_days`` (by observed date), oldest first.

    ``joined`` is ``outcomes.join_point_in_time``'s output, as for ``compare_variants``; the console
    draws it as the canary over time. ``{"champion": [{"start": "2026-05-04", "n": 40,
    "errors": 9, "error_rate": 0.225}, ...], "canary": [...]}``
    """
    from datetime import date, timedelta

    if period_days < 1:
        raise ValueError("period_days must be at least 1")
    cells: dict[str, dict[date, list[int]]] = {}
    for r in joined:
        day = date.fromisoformat(str(r["observed_date"])[:10])
        start = day - timedelta(days=(day - date(1970, 1, 5)).days % period_days)  # periods start on Mondays
        cell = cells.setdefault(str(r["variant"]), {}).setdefault(start, [0, 0])
        cell[0] += 1
        cell[1] += bool(r["will_churn"]) != bool(r["churned"])
    return {
        variant: [
            {"start": start.isoformat(), "n": n, "errors": errors, "error_rate": errors / n}
            for start, (n, errors) in sorted(periods.items())
        ]
        for variant, periods in sorted(cells.items())
    }
