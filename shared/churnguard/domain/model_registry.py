"""The model registry's entity and rules: what a model version is, and which switches are allowed.

A version moves through ``candidate -> production -> archived``, or ends ``rejected`` (the
promotion gate said no) or ``failed`` (its training run failed). The ``champion`` alias names the
version in production with the stack of earlier champions (newest first, at most ``MAX_HISTORY``);
the ``canary`` alias names a challenger that answers a share of traffic (domain/canary.py).
The storage of all this is an adapter's business (adapters/registry.py); the rules are here.

    check_promotable(candidate, champion_version="v1")     # PromotionConflictError if not allowed
    history = champion_history(alias)                        # what the alias keeps after a switch
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from churnguard.domain.errors import ModelNotFoundError, PromotionConflictError

STATUSES = ("candidate", "production", "archived", "rejected", "failed")
# Versions that may never serve again: the gate refused them or their run failed.
REFUSED = ("rejected", "failed")
CHAMPION = "champion"
CANARY = "canary"
# Earlier champions remembered by the alias (rollback goes back through them, newest first).
MAX_HISTORY = 20


def now_iso() -> str:
    """A UTC timestamp as the registry writes them: ``2026-05-01T10:00:00.123456Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ModelVersion:
    version: str
    status: str
    location: str
    manifest_sha256: str
    metrics: dict[str, Any] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    created_at: str = field(default_factory=now_iso)
    updated_at: str | None = None
    promoted_at: str | None = None
    reason: str | None = None
    # Set by the evaluate step: the gate's decision and the location of its report.
    evaluation: dict[str, Any] | None = None
    # Set when a watch alarm rolled this version back (domain/watch.py): when, why, the alarm.
    rolled_back: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_item(cls, d: Mapping[str, Any]) -> ModelVersion:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})


def check_status(status: str) -> None:
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}")


def check_promotable(target: ModelVersion, champion_version: str | None) -> None:
    """Raise PromotionConflictError unless ``target`` may become the champion now."""
    if target.status in REFUSED:
        raise PromotionConflictError(f"version {target.version} is {target.status}: it cannot be promoted")
    if champion_version == target.version:
        raise PromotionConflictError(f"version {target.version} is already the champion")


def check_canary_allowed(target: ModelVersion, champion_version: str | None) -> None:
    """Raise PromotionConflictError unless ``target`` may answer as a canary (or shadow) now."""
    if target.status in REFUSED:
        raise PromotionConflictError(f"version {target.version} is {target.status}: it cannot serve as a canary")
    if champion_version == target.version:
        raise PromotionConflictError(f"version {target.version} is the champion: a canary must be another version")


def champion_history(current_alias: Mapping[str, Any] | None) -> list[str]:
    """The alias's history after a promotion: the current champion, then its own history, capped."""
    if not current_alias:
        return []
    return ([current_alias["version"]] + list(current_alias.get("previous", [])))[:MAX_HISTORY]


def rollback_target(current_alias: Mapping[str, Any] | None) -> tuple[str, list[str]]:
    """(the version a rollback restores, the history it leaves); ModelNotFoundError when there is none."""
    if not current_alias or not current_alias.get("previous"):
        raise ModelNotFoundError("there is no previous champion to roll back to")
    previous = list(current_alias["previous"])
    return previous[0], previous[1:]


def retraining_runs(
    versions: list[ModelVersion],
    champion_version: str | None,
    executions: list[dict[str, Any]] | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Every training run known, newest first, with its outcome.

    A run that registered a candidate is known by the registry (``lineage``: why it ran, the drift
    report, the state machine's execution); its outcome is the version's state: ``serving`` (the
    champion now), ``promoted`` (served, since replaced), ``rejected`` (the gate said no, with the
    reason), ``failed``, or ``pending`` (a candidate still waiting; its evaluation verdict when there
    is one). ``executions`` (the retraining state machine's, newest first) add the runs that never
    registered one: ``running``, or ``failed before registering a model`` (its data was refused, or
    training crashed or timed out).
    """
    runs = []
    by_execution: dict[str, dict[str, Any]] = {}
    for mv in sorted(versions, key=lambda m: m.created_at, reverse=True)[:limit]:
        if mv.version == champion_version:
            outcome = "serving"
        elif mv.status in ("archived", "production") or mv.promoted_at:
            outcome = "promoted"
        elif mv.status in REFUSED:
            outcome = mv.status
        else:
            outcome = "pending"
        lineage = mv.lineage or {}
        execution = lineage.get("execution") or {}
        run = {
            "version": mv.version,
            "trained_at": mv.created_at,
            "trigger": lineage.get("reason") or "manual",
            "execution": execution.get("name") if isinstance(execution, dict) else None,
            "execution_status": None,
            "drift_report": lineage.get("drift_report"),
            "outcome": outcome,
            "detail": mv.reason,
            "gate_passed": (mv.evaluation or {}).get("passed"),
            "cv_roc_auc": (mv.metrics or {}).get("cv_roc_auc"),
            "promoted_at": mv.promoted_at,
        }
        if run["execution"]:
            by_execution[run["execution"]] = run
        runs.append(run)
    for ex in executions or []:
        known = by_execution.get(ex["name"])
        if known is not None:
            known["execution_status"] = ex["status"]
            continue
        runs.append(
            {
                "version": None,
                "trained_at": ex.get("started_at"),
                "trigger": ex["name"].split("-", 1)[0],
                "execution": ex["name"],
                "execution_status": ex["status"],
                "drift_report": None,
                "outcome": {"RUNNING": "running", "SUCCEEDED": "finished without a model"}.get(
                    ex["status"], "failed before registering a model"
                ),
                "detail": f"execution {ex['status'].lower()} at {ex.get('stopped_at')}"
                if ex.get("stopped_at")
                else None,
                "gate_passed": None,
                "cv_roc_auc": None,
                "promoted_at": None,
            }
        )
    runs.sort(key=lambda r: str(r["trained_at"] or ""), reverse=True)
    return runs[:limit]
