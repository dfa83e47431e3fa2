"""The retention call list: a batch job's at-risk customers, why, what to do and what it is worth.

A batch job writes ``scores/part-*.csv`` (``customerID,churn_probability,will_churn,risk_level,
reasons,model_version``). The call list keeps the customers at medium or high risk, highest
probability first, each with the model's recommended action (the predictor's RECOMMENDATIONS,
named after the main risk-increasing reason) and, when the model was trained with retention
economics (``offer_cost`` and ``customer_value`` in its training config), the expected value of
calling them: ``p * save_rate * customer_value - offer_cost``, the quantity the training threshold
maximised (classification.best_value_threshold). Every scored row also counts in the score
distribution, low risk included.

    builder = CallListBuilder(economics=RetentionEconomics.from_metadata(predictor.metadata))
    for part in score_files:
        builder.add_csv(part)
    call_list = builder.build()
    page = call_list.select(risk_levels={"high"}, reason="Contract").page(1, 25)
    body = call_list_csv(page.entries)
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from churnguard.domain.predictor import Predictor
from churnguard.domain.spreadsheet import formula_safe

AT_RISK = ("high", "medium")
RISK_LEVELS = ("high", "medium", "low")
HISTOGRAM_BINS = 20
# Enough for any team's calls in one campaign; bounds a console container's memory on a 100M-row job.
DEFAULT_MAX_ENTRIES = 100_000
MAX_PAGE_SIZE = 200
CSV_COLUMNS = (
    "rank",
    "customer_id",
    "churn_probability",
    "risk_level",
    "will_churn",
    "reason_1",
    "reason_2",
    "reason_3",
    "recommended_action",
    "expected_value",
    "model_version",
)


@dataclass(frozen=True)
class RetentionEconomics:
    """What a retention call costs and what keeping a churner is worth (the training config's figures)."""

    offer_cost: float
    customer_value: float
    save_rate: float = 0.3

    def expected_value(self, probability: float) -> float:
        """Value of calling this customer: saved value if they were leaving, minus the offer's cost."""
        return probability * self.save_rate * self.customer_value - self.offer_cost

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> RetentionEconomics | None:
        """From a bundle's ``training.config``; None when the model was not trained with economics."""
        config = (metadata.get("training") or {}).get("config") or {}
        cost, value = config.get("offer_cost"), config.get("customer_value")
        if cost is None or value is None:
            return None
        return cls(float(cost), float(value), float(config.get("save_rate", 0.3)))


@dataclass(frozen=True)
class CallListEntry:
    customer_id: str
    churn_probability: float
    risk_level: str
    will_churn: bool
    reasons: tuple[dict[str, Any], ...]
    action: str
    expected_value: float | None
    model_version: str

    def risk_drivers(self) -> list[str]:
        """Features of the reasons that increase this customer's risk, strongest first."""
        return [r["feature"] for r in self.reasons if r.get("effect") == "increases risk"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "churn_probability": self.churn_probability,
            "risk_level": self.risk_level,
            "will_churn": self.will_churn,
            "reasons": list(self.reasons),
            "recommended_action": self.action,
            "expected_value": None if self.expected_value is None else round(self.expected_value, 2),
            "model_version": self.model_version,
        }


@dataclass(frozen=True)
class Page:
    entries: list[CallListEntry]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    @property
    def first_rank(self) -> int:
        return (self.number - 1) * self.size + 1


@dataclass
class CallList:
    """At-risk customers highest probability first, and the job's score distribution."""

    entries: list[CallListEntry]
    rows_scored: int
    risk_counts: dict[str, int]
    histogram: list[int]
    truncated: bool = False
    economics: RetentionEconomics | None = None

    def select(self, risk_levels: Collection[str] | None = None, reason: str | None = None) -> CallList:
        """The entries at one of ``risk_levels`` whose risk-increasing reasons include ``reason``."""
        levels = set(risk_levels or AT_RISK)
        kept = [e for e in self.entries if e.risk_level in levels and (not reason or reason in e.risk_drivers())]
        return CallList(kept, self.rows_scored, self.risk_counts, self.histogram, self.truncated, self.economics)

    def page(self, number: int, size: int) -> Page:
        size = min(max(1, size), MAX_PAGE_SIZE)
        pages = max(1, math.ceil(len(self.entries) / size))
        number = min(max(1, number), pages)
        start = (number - 1) * size
        return Page(self.entries[start : start + size], number, size, len(self.entries))

    def reason_counts(self) -> dict[str, int]:
        """How many listed customers each risk-increasing reason names, most common first."""
        counts: dict[str, int] = {}
        for e in self.entries:
            for f in e.risk_drivers():
                counts[f] = counts.get(f, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def histogram_labels(self) -> list[str]:
        width = 1 / len(self.histogram)
        return [f"{i * width:.2f}-{(i + 1) * width:.2f}" for i in range(len(self.histogram))]


def _entry(row: Sequence[str], economics: RetentionEconomics | None) -> CallListEntry:
    cid, prob, churn, risk, reasons_text, version = row[:6]
    p = float(prob)
    try:
        reasons = tuple(json.loads(reasons_text)) if reasons_text else ()
    except ValueError:
        reasons = ()
    return CallListEntry(
        customer_id=cid,
        churn_probability=p,
        risk_level=risk,
        will_churn=churn == "true",
        reasons=reasons,
        action=Predictor.recommend(risk, list(reasons)),
        expected_value=economics.expected_value(p) if economics else None,
        model_version=version,
    )


@dataclass
class CallListBuilder:
    """Reads a job's score files one by one, keeping at most ``max_entries`` at-risk customers (the most
    likely to leave) and counting every row in the score distribution."""

    economics: RetentionEconomics | None = None
    max_entries: int = DEFAULT_MAX_ENTRIES
    _heap: list[tuple[float, tuple[int, ...], int, CallListEntry]] = field(default_factory=list)
    _histogram: list[int] = field(default_factory=lambda: [0] * HISTOGRAM_BINS)
    _risk: dict[str, int] = field(default_factory=lambda: dict.fromkeys(RISK_LEVELS, 0))
    _rows: int = 0
    _dropped: int = 0

    def add_csv(self, data: bytes) -> None:
        reader = csv.reader(io.StringIO(data.decode("utf-8", errors="replace")))
        next(reader, None)  # the header: the id column is named by the schema
        for row in reader:
            if len(row) < 6:
                continue
            try:
                p = float(row[1])
            except ValueError:
                continue
            if not math.isfinite(p):
                continue
            self._rows += 1
            self._histogram[min(int(p * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)] += 1
            risk = row[3]
            self._risk[risk] = self._risk.get(risk, 0) + 1
            if risk not in AT_RISK:
                continue
            # A min-heap on probability: the least likely customer leaves first when full.
            item = (p, _negated(row[0]), self._rows, _entry(row, self.economics))
            if len(self._heap) < self.max_entries:
                heapq.heappush(self._heap, item)
            else:
                heapq.heappushpop(self._heap, item)
                self._dropped += 1

    def build(self) -> CallList:
        ordered = sorted(self._heap, key=lambda t: (-t[0], t[3].customer_id))
        return CallList(
            [t[3] for t in ordered],
            rows_scored=self._rows,
            risk_counts=dict(self._risk),
            histogram=list(self._histogram),
            truncated=self._dropped > 0,
            economics=self.economics,
        )


def _negated(customer_id: str) -> tuple[int, ...]:
    # Heap tie-break: among equal probabilities the larger id is dropped first, so the kept set is the
    # same whatever order the score files arrive in.
    return tuple(-ord(c) for c in customer_id)


def reason_text(reason: Mapping[str, Any]) -> str:
    return f"{reason.get('feature')} = {reason.get('value')} ({reason.get('effect')})"


def call_list_csv(entries: Iterable[CallListEntry], first_rank: int = 1) -> bytes:
    """The entries as CSV for a spreadsheet; every text cell from data is formula-safe."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for rank, e in enumerate(entries, start=first_rank):
        reasons = [formula_safe(reason_text(r)) for r in e.reasons[:3]]
        reasons += [""] * (3 - len(reasons))
        w.writerow(
            [
                rank,
                formula_safe(e.customer_id),
                f"{e.churn_probability:.4f}",
                e.risk_level,
                "true" if e.will_churn else "false",
                *reasons,
                formula_safe(e.action),
                "" if e.expected_value is None else f"{e.expected_value:.2f}",
                formula_safe(e.model_version),
            ]
        )
    return buf.getvalue().encode()
