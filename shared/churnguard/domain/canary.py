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
from churnguard.domain.mapping import check_settings

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


# ----- the canary stage of the retraining loop -----------------------------------------------------
# Added to the latency limit so that sub-millisecond scoring times do not fail on noise.
LATENCY_SLACK_MS = 5.0
# Latency is compared only with at least this many timed answers on each side.
MIN_TIMED = 20


@dataclass(frozen=True)
class CanaryPolicy:
    """How the retraining loop runs and judges a candidate's canary. ``CanaryPolicy.from_dict({"share": "0.2"})``."""

    share: float = 0.1
    shadow: bool = False
    wait_seconds: int = 86_400
    # Canary answers (shadow scores) needed in the window before anything is concluded.
    min_requests: int = 200
    # Canary answers that failed (model unloadable or scoring error; the champion answered instead).
    max_error_rate: float = 0.01
    # The canary's p95 scoring time may be at most this many times the champion's, plus LATENCY_SLACK_MS.
    max_latency_ratio: float = 2.0
    # Its live scores against the scores it gave the held-out period (PSI and a KS test at alpha).
    max_score_psi: float = 0.2
    alpha: float = 0.05
    # 5xx answers and fallbacks over all requests in the window (CloudWatch), whoever answered them.
    max_service_error_rate: float = 0.01

    def __post_init__(self) -> None:
        check_settings(
            "canary policy",
            [
                (
                    not 0 <= self.share <= 1 or (not self.shadow and self.share <= 0),
                    "share must be in (0, 1] (or use shadow)",
                ),
                (
                    self.wait_seconds < 0 or self.min_requests < 1,
                    "wait_seconds must be >= 0 and min_requests >= 1",
                ),
                (
                    not 0 <= self.max_error_rate <= 1 or not 0 <= self.max_service_error_rate <= 1,
                    "max_error_rate and max_service_error_rate must be in [0, 1]",
                ),
                (
                    self.max_latency_ratio < 1 or self.max_score_psi <= 0 or not 0 < self.alpha < 1,
                    "max_latency_ratio must be >= 1, max_score_psi > 0 and alpha in (0, 1)",
                ),
            ],
        )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CanaryPolicy:
        from churnguard.domain.mapping import dataclass_from_mapping

        data = dict(data)
        if isinstance(data.get("shadow"), str):  # "false" from an environment variable is not True
            data["shadow"] = data["shadow"].strip().lower() in ("1", "true", "yes")
        return dataclass_from_mapping(cls, data, "canary settings")

    def variant(self) -> str:
        return "shadow" if self.shadow else "canary"


@dataclass
class CanaryVerdict:
    decision: str  # promote | reject | inconclusive
    reasons: list[str]
    checks: list[dict[str, Any]]
    counts: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"decision": self.decision, "reasons": self.reasons, "checks": self.checks, "counts": self.counts}


def _p95(values: list[float]) -> float:
    import numpy as np

    return float(np.quantile(np.asarray(values, dtype=float), 0.95))


def judge_canary(
    version: str,
    policy: CanaryPolicy,
    records: Iterable[Mapping[str, Any]],
    *,
    expected_scores: Mapping[str, Any] | None = None,
    joined: Iterable[Mapping[str, Any]] = (),
    service: Mapping[str, float] | None = None,
) -> CanaryVerdict:
    """The canary's verdict from what is known at the end of its window.

    ``records``: the prediction log over the window; ``expected_scores``: the score profile the
    candidate gave the held-out period; ``joined``: outcomes joined point in time, by variant
    (``outcomes.join_point_in_time``); ``service``: ``{"requests", "errors", "fallbacks"}`` of the
    predict function over the window (None when unknown). Any failed check rejects; too little canary
    traffic leaves it inconclusive (never promoted); otherwise it is promoted.
    """
    import numpy as np

    from churnguard.domain.drift import score_shift

    variant = policy.variant()
    records = list(records)
    mine = [r for r in records if r.get("variant") == variant and r.get("model_version") == version]
    failed = [r for r in records if r.get("canary_error")] if not policy.shadow else []
    attempts = len(mine) + len(failed)
    checks: list[dict[str, Any]] = []
    fails: list[str] = []

    def check(name: str, status: str, detail: str) -> None:
        checks.append({"name": name, "status": status, "detail": detail})
        if status == "fail":
            fails.append(detail)

    enough = attempts >= policy.min_requests
    check(
        "traffic",
        "pass" if enough else "unknown",
        f"{attempts} {variant} requests in the window (at least {policy.min_requests} needed to judge)",
    )
    if enough and not policy.shadow:
        rate = len(failed) / attempts
        kinds = sorted({str(r["canary_error"]) for r in failed})
        check(
            "errors",
            "fail" if rate > policy.max_error_rate else "pass",
            f"{len(failed)} of {attempts} canary requests failed ({rate:.2%}"
            + (f": {', '.join(kinds)}" if kinds else "")
            + f"), limit {policy.max_error_rate:.2%}; the champion answered them",
        )
    timed = [float(r["latency_ms"]) for r in mine if isinstance(r.get("latency_ms"), (int, float))]
    champion_timed = [
        float(r["latency_ms"])
        for r in records
        if r.get("variant") == "champion" and isinstance(r.get("latency_ms"), (int, float))
    ]
    if len(timed) >= MIN_TIMED and len(champion_timed) >= MIN_TIMED:
        mine_p95, champ_p95 = _p95(timed), _p95(champion_timed)
        limit = policy.max_latency_ratio * champ_p95 + LATENCY_SLACK_MS
        check(
            "latency",
            "fail" if mine_p95 > limit else "pass",
            f"p95 scoring time {mine_p95:.2f} ms against the champion's {champ_p95:.2f} ms (limit {limit:.2f} ms)",
        )
    else:
        check("latency", "unknown", f"{len(timed)} timed {variant} answers, {len(champion_timed)} champion ones")
    scores = np.asarray(
        [float(r["churn_probability"]) for r in mine if isinstance(r.get("churn_probability"), (int, float))]
    )
    if expected_scores is None:
        check("score distribution", "unknown", "no offline score profile for this version")
    elif len(scores) < policy.min_requests:
        check("score distribution", "unknown", f"{len(scores)} live scores, {policy.min_requests} needed")
    else:
        shift = score_shift(expected_scores, scores, policy.max_score_psi, policy.alpha)
        check(
            "score distribution",
            "fail" if shift.drifted else "pass",
            f"live scores against the held-out period's: PSI {shift.psi:.3f} (limit {policy.max_score_psi:g}), "
            f"KS p={shift.p_value:.2g} (alpha {policy.alpha:g})",
        )
    comparison = compare_variants(joined, alpha=policy.alpha)
    test = comparison["tests"].get(variant)
    if test is None or test.get("p_value") is None:
        check(
            "outcomes",
            "unknown",
            (test or {}).get("verdict") or f"no outcomes yet for {variant} predictions made in the window",
        )
    else:
        worse = test["significant"] and test["error_rate_difference"] > 0
        check(
            "outcomes",
            "fail" if worse else "pass",
            f"{variant} against the champion on outcomes: {test['verdict']} ({test['test']}, p={test['p_value']:.3g}, "
            f"error rate difference {test['error_rate_difference']:+.3f})",
        )
    if not service or not service.get("requests"):
        check("service", "unknown", "no request metrics for the window (CloudWatch)")
    else:
        bad = float(service.get("errors") or 0) + float(service.get("fallbacks") or 0)
        rate = bad / float(service["requests"])
        check(
            "service",
            "fail" if rate > policy.max_service_error_rate else "pass",
            f"{bad:.0f} of {service['requests']:.0f} requests answered 5xx or by the fallback ({rate:.2%}), "
            f"limit {policy.max_service_error_rate:.2%}",
        )
    counts = {
        "requests": attempts,
        "answered": len(mine),
        "failed": len(failed),
        "labelled": comparison["variants"].get(variant, {}).get("n", 0),
    }
    if fails:
        return CanaryVerdict("reject", fails, checks, counts)
    if not enough:
        return CanaryVerdict(
            "inconclusive",
            [f"only {attempts} {variant} requests in the window; at least {policy.min_requests} are needed"],
            checks,
            counts,
        )
    return CanaryVerdict("promote", [c["detail"] for c in checks if c["status"] == "pass"], checks, counts)


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
