"""Read models of the console and the dashboard routes: what the retention team and the model owners see.

Everything here reads; nothing promotes, rolls back or erases (those stay off HTTP). Each view is a
method of ``ConsoleReads``, typed against the ports, built once per container by
``bootstrap.build_console``; the only state is a cache of the latest job's call list (a finished
job's score files never change) and of model metadata by version.

    reads = build_console(services)
    reads.models()["champion"]
    reads.call_list_page(risk_levels={"high"}, reason="Contract", page=1, size=25)
    reads.customer("7590-VHVEG")
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from churnguard.domain.call_list import DEFAULT_MAX_ENTRIES, CallList, CallListBuilder, RetentionEconomics
from churnguard.domain.canary import compare_variants, error_rates_over_time
from churnguard.domain.errors import ModelNotFoundError
from churnguard.domain.identity import customer_key
from churnguard.domain.model_registry import retraining_runs
from churnguard.domain.outcomes import join_point_in_time
from churnguard.domain.predictor import Predictor
from churnguard.services.ports import (
    JobHistory,
    JobOutputs,
    ModelStore,
    OutcomeStore,
    PredictionLogSource,
    Registry,
    ReportArchive,
    RetrainExecutions,
    ScoreStore,
)

# Most history rows shown for one customer.
MAX_HISTORY = 50


def _today() -> date:
    return datetime.now(UTC).date()


@dataclass
class ConsoleReads:
    registry: Registry
    store: ModelStore
    reports: ReportArchive
    log: PredictionLogSource
    hash_key: bytes
    jobs: JobHistory | None = None
    outputs: JobOutputs | None = None
    scores: ScoreStore | None = None
    outcomes: OutcomeStore | None = None
    executions: RetrainExecutions | None = None
    max_entries: int = DEFAULT_MAX_ENTRIES
    history_days: int = 30
    canary_days: int = 90
    today: Callable[[], date] = _today
    _call_list: tuple[str, CallList] | None = field(default=None, repr=False)
    _metadata: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    # ----- models ------------------------------------------------------------------------------
    def models(self) -> dict[str, Any]:
        """Every version (status, metrics), the champion with its evaluation, and the canary."""
        alias = self.registry.alias()
        champion = alias["version"] if alias else None
        canary = self.registry.canary()
        versions = []
        for mv in reversed(self.registry.list()):
            versions.append(
                {
                    "version": mv.version,
                    "status": mv.status,
                    "champion": mv.version == champion,
                    "canary": bool(canary and canary.get("version") == mv.version),
                    "metrics": mv.metrics,
                    "created_at": mv.created_at,
                    "promoted_at": mv.promoted_at,
                    "reason": mv.reason,
                    "evaluation": mv.evaluation,
                    "lineage": mv.lineage,
                }
            )
        current = next((v for v in versions if v["champion"]), None)
        evaluation = self.reports.evaluation(champion) if champion else None
        return {
            "champion": current,
            "champion_since": alias.get("updated_at") if alias else None,
            "previous_champions": list(alias.get("previous", [])) if alias else [],
            "canary": canary,
            "versions": versions,
            "champion_evaluation": evaluation,
        }

    # ----- the call list -------------------------------------------------------------------------
    def latest_job(self) -> dict[str, Any] | None:
        """The newest batch job that finished, or None (no jobs table, or no job yet)."""
        if self.jobs is None:
            return None
        return next((j for j in self.jobs.recent(50) if j.get("status") == "SUCCEEDED"), None)

    def call_list(self) -> tuple[dict[str, Any] | None, CallList | None]:
        """(the latest finished job, its call list); read from the job's score files once per container."""
        job = self.latest_job()
        if job is None or self.outputs is None:
            return job, None
        job_id = str(job["job_id"])
        if self._call_list is None or self._call_list[0] != job_id:
            builder = CallListBuilder(self.economics(str(job.get("model_version") or "")), self.max_entries)
            for part in self.outputs.score_files(str(job["output"])):
                builder.add_csv(part)
            self._call_list = (job_id, builder.build())
        return job, self._call_list[1]

    def call_list_page(
        self, risk_levels: Collection[str] | None = None, reason: str | None = None, page: int = 1, size: int = 25
    ) -> dict[str, Any]:
        job, full = self.call_list()
        if full is None:
            return {"job": job, "entries": [], "total": 0, "page": 1, "pages": 1, "size": size, "rows_scored": 0}
        chosen = full.select(risk_levels, reason)
        shown = chosen.page(page, size)
        return {
            "job": _job_summary(job),
            "filters": {"risk_levels": sorted(risk_levels or ("high", "medium")), "reason": reason or None},
            "total": shown.total,
            "page": shown.number,
            "pages": shown.pages,
            "size": shown.size,
            "first_rank": shown.first_rank,
            "entries": [e.to_dict() for e in shown.entries],
            "rows_scored": full.rows_scored,
            "risk_counts": full.risk_counts,
            "truncated": full.truncated,
            "reasons": full.reason_counts(),
            "score_distribution": {"bins": full.histogram_labels(), "counts": full.histogram},
            "economics": None if full.economics is None else vars(full.economics),
        }

    def economics(self, version: str) -> RetentionEconomics | None:
        metadata = self.metadata(version)
        return RetentionEconomics.from_metadata(metadata) if metadata else None

    def metadata(self, version: str) -> dict[str, Any] | None:
        """A version's bundle metadata (verified), kept per container; None if the version is unknown."""
        if not version:
            return None
        if version not in self._metadata:
            try:
                mv = self.registry.get(version)
            except ModelNotFoundError:
                return None
            self._metadata[version] = self.store.get(version, mv.manifest_sha256).metadata
        return self._metadata[version]

    # ----- one customer --------------------------------------------------------------------------
    def customer(self, customer_id: str) -> dict[str, Any]:
        """The latest stored score with its reasons, action and value, and the recent predictions logged."""
        latest = self.scores.get(customer_id) if self.scores is not None else None
        if latest is not None:
            economics = self.economics(latest["model_version"])
            latest = {
                **latest,
                "recommended_action": Predictor.recommend(latest["risk_level"], latest["reasons"]),
                "expected_value": None
                if economics is None
                else round(economics.expected_value(latest["churn_probability"]), 2),
            }
        key = customer_key(customer_id, self.hash_key)
        end = self.today()
        history = [
            {k: r.get(k) for k in ("ts", "churn_probability", "will_churn", "model_version", "variant", "source")}
            for r in self.log.records(end - timedelta(days=self.history_days - 1), end)
            if r.get("customer_key") == key
        ]
        history.sort(key=lambda r: str(r.get("ts")), reverse=True)
        return {
            "customer_id": customer_id,
            "latest": latest,
            "history": history[:MAX_HISTORY],
            "history_days": self.history_days,
            "scores_table": self.scores is not None,
        }

    # ----- the loop ------------------------------------------------------------------------------
    def drift(self) -> dict[str, Any] | None:
        return self.reports.latest("drift")

    def evaluation(self, version: str | None = None) -> dict[str, Any] | None:
        return self.reports.evaluation(version) if version else self.reports.latest("evaluation")

    def canary(self, period_days: int = 7) -> dict[str, Any]:
        """The canary or shadow configured now, and every variant's results on observed outcomes."""
        config = self.registry.canary()
        until = self.today()
        since = until - timedelta(days=self.canary_days)
        if self.outcomes is None:
            return {"config": config, "outcomes": 0, "since": since.isoformat(), "until": until.isoformat()}
        outcomes = list(self.outcomes.outcomes(since=since, until=until))
        joined = join_point_in_time(self.log.records(since, until), outcomes) if outcomes else []
        return {
            "config": config,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "outcomes": len(outcomes),
            "comparison": compare_variants(joined),
            "over_time": error_rates_over_time(joined, period_days),
            "period_days": period_days,
        }

    def retraining(self) -> dict[str, Any]:
        alias = self.registry.alias()
        executions = self.executions.recent(50) if self.executions is not None else None
        runs = retraining_runs(self.registry.list(), alias["version"] if alias else None, executions)
        return {"runs": runs, "state_machine": self.executions is not None}


def _job_summary(job: dict[str, Any] | None) -> dict[str, Any] | None:
    if job is None:
        return None
    keys = ("job_id", "status", "model_version", "rows_in", "scored", "rejected", "finished_at", "output", "reasons")
    return {k: job.get(k) for k in keys}


# ----- people signing in to the console --------------------------------------------------------------
class ConsoleSessions:
    """Who a console session belongs to: the identity provider checks the token, at most once a minute
    per token per container (a revoked token stops working within that minute)."""

    def __init__(
        self,
        user_of: Callable[[str], str | None],
        ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_cached: int = 1000,
    ) -> None:
        self._user_of = user_of
        self.ttl_s = ttl_s
        self.clock = clock
        self.max_cached = max_cached
        self._cache: dict[str, tuple[float, str | None]] = {}

    def user(self, token: str | None) -> str | None:
        if not token:
            return None
        digest = hashlib.sha256(token.encode()).hexdigest()
        now = self.clock()
        hit = self._cache.get(digest)
        if hit is not None and hit[0] > now:
            return hit[1]
        user = self._user_of(token)
        if len(self._cache) >= self.max_cached:
            self._cache.clear()
        self._cache[digest] = (now + self.ttl_s, user)
        return user
