"""The rule-based estimate served when no model at all can be loaded (off unless configured).

The rule is deliberately the simplest honest one: every customer gets the churn rate of the
population the champion was trained on (``positive_rate`` in its registry record), flagged
``"fallback": true``, with no reasons, and nobody is flagged: ``will_churn`` is false and the risk
level ``low`` ("no action") whatever the rate. A constant cannot tell one customer from another,
so a decision drawn from it would put the whole customer base into a retention campaign (or none
of it) because of an outage; the decision waits for a model. Why not hand-written rules such as "month-to-month and
tenure < 12 means high risk"? They only fit one data set (the platform serves any schema),
nobody has measured them, and a plausible-looking personal score that is really a guess is
worse than an answer that says what it is. The base rate is the best constant estimate there
is: calibrated in aggregate (its Brier score is p(1-p)), wrong for nobody on average, and it
ranks nobody above anybody else, which is exactly what "no model" means.

    estimate = BaseRateEstimate(base_rate=0.265, threshold=0.31, source="positive_rate of v1")
    estimate.predict_records([{"tenure": 2}])[0]["fallback"]   # True; "will_churn": False
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churnguard.domain.predictor import RiskBands

FALLBACK_OFF = "off"
FALLBACK_BASE_RATE = "base_rate"
FALLBACK_MODES = (FALLBACK_OFF, FALLBACK_BASE_RATE)
FALLBACK_VERSION = "fallback-base-rate"


@dataclass(frozen=True)
class BaseRateEstimate:
    """The population churn rate, the same for every customer."""

    base_rate: float
    source: str
    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not (
            isinstance(self.base_rate, (int, float)) and math.isfinite(self.base_rate) and 0 <= self.base_rate <= 1
        ):
            raise ValueError(f"a base rate must be a probability in [0, 1], not {self.base_rate!r}")
        if not (math.isfinite(self.threshold) and 0 < self.threshold < 1):
            raise ValueError(f"a threshold must be in (0, 1), not {self.threshold!r}")

    @property
    def version(self) -> str:
        return FALLBACK_VERSION

    def predict_records(self, records: Sequence[Mapping[str, Any]], **_: Any) -> list[dict[str, Any]]:
        p = float(self.base_rate)
        population = RiskBands.for_threshold(self.threshold).level(p)
        note = (
            f"No model is available, so this is not a personal score: it is the churn rate of the training "
            f"population ({p:.1%}, {population} risk, {self.source}), the same for every customer. "
            f"Nobody is flagged: do not act on it per customer."
        )
        return [
            {
                "churn_probability": round(p, 4),
                "will_churn": False,  # a constant cannot single anybody out (see the module's docstring)
                "risk_level": "low",
                "reasons": [],
                "recommendation": note,
                "model_version": FALLBACK_VERSION,
                "fallback": True,
            }
            for _ in records
        ]


def estimate_from_metrics(metrics: Mapping[str, Any], version: str) -> BaseRateEstimate | None:
    """The estimate from a registry record's metrics, or None when they lack a usable base rate."""
    rate = metrics.get("positive_rate")
    threshold = metrics.get("threshold", 0.5)
    if rate is None:
        return None
    try:
        return BaseRateEstimate(
            base_rate=float(rate),
            threshold=float(threshold) if threshold is not None else 0.5,
            source=f"positive_rate of model {version}, {metrics.get('rows', '?')} training rows",
        )
    except (TypeError, ValueError):
        return None
