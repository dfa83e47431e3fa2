"""The model registry's entity and rules: a small state machine over model versions and two aliases.

A version's status moves only along these arrows (anything else is refused)::

    register -> candidate --promote--> production --(the next promote, or a rollback)--> archived
                candidate --reject--> rejected          candidate --fail--> failed
                archived --promote, or rollback--> production
                archived --reject--> rejected  (an old champion withdrawn for good)
                rejected, failed: final, never served again

The ``champion`` alias names the version in production, the earlier champions a rollback may
return to (newest first) and a ``revision`` that every switch raises by one. The ``canary`` alias
names a challenger answering a share of traffic (domain/canary.py). Storage is an adapter's
business (adapters/registry.py): it reads a ``RegistryState``, asks the ``plan_*`` functions here
for a ``Transition`` and writes it as one conditional transaction, so a transition applies to the
state it was planned from or not at all.

The invariants, checked by ``check_transition`` on the state every planned transition leads to,
and on the stored registry after every step of random sequences of register, promote, reject,
fail, rollback and canary changes by tests/functional/test_registry_properties.py:

1. the champion alias's version is the only ``production`` version (none without an alias);
2. the history holds only ``archived`` versions, each once, never the champion, at most MAX_HISTORY;
3. ``rejected`` and ``failed`` are final: such a version is never the champion, in the history or
   the canary, and never changes status again;
4. the canary names a registered ``candidate`` or ``archived`` version other than the champion;
5. every champion switch raises the revision by exactly one, conditioned on the revision read;
6. every version id matches ``VERSION_ID`` (it becomes part of S3 keys and DynamoDB keys).

    state = RegistryState(statuses={"v1": "production", "v2": "candidate"}, champion=ChampionAlias("v1"))
    plan_promotion(state, "v2").champion        # ChampionAlias("v2", previous=("v1",), revision=1)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from churnguard.domain.errors import (
    DataValidationError,
    ModelNotFoundError,
    PromotionConflictError,
    RegistryInvariantError,
)

STATUSES = ("candidate", "production", "archived", "rejected", "failed")
# Versions that may never serve again: the gate refused them or their run failed.
REFUSED = ("rejected", "failed")
CHAMPION = "champion"
CANARY = "canary"
# Earlier champions remembered by the alias (rollback goes back through them, newest first).
MAX_HISTORY = 20
# The status changes set_status may make; production and archived come only from champion switches.
STATUS_CHANGES = {
    ("candidate", "rejected"),
    ("candidate", "failed"),
    ("archived", "rejected"),
}
# One pattern for every version id, wherever it enters (registry, model store, CLI, events): it is a
# path segment of S3 keys and part of DynamoDB keys, so no "/", no "..", nothing to escape.
VERSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
VERSION_ID_RULE = "1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"


def now_iso() -> str:
    """A UTC timestamp as the registry writes them: ``2026-05-01T10:00:00.123456Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_version_id(version: Any) -> str:
    """``version`` if it is a well-formed version id, else InvalidVersionIdError naming the rule."""
    if not isinstance(version, str) or not VERSION_ID.fullmatch(version):
        shown = version if not isinstance(version, str) or len(version) <= 80 else version[:80] + "..."
        raise InvalidVersionIdError(f"{shown!r} is not a model version id: use {VERSION_ID_RULE}")
    return version


class InvalidVersionIdError(DataValidationError):
    """A version id that breaks VERSION_ID (e.g. ``../../etc``)."""


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


# ----- the state and its transitions ------------------------------------------------------------
@dataclass(frozen=True)
class ChampionAlias:
    version: str
    previous: tuple[str, ...] = ()
    revision: int = 0

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> ChampionAlias | None:
        if not item:
            return None
        return cls(str(item["version"]), tuple(item.get("previous") or ()), int(item.get("revision") or 0))


@dataclass(frozen=True)
class RegistryState:
    """What a transition is planned from: every version's status and the two aliases."""

    statuses: Mapping[str, str]
    champion: ChampionAlias | None = None
    canary: str | None = None  # the canary alias's version


@dataclass(frozen=True)
class Transition:
    """Everything one registry operation writes, applied all together or not at all.

    ``statuses``: version -> (status read, status to write); the write is conditioned on the status read.
    ``champion``: the new champion alias (None: the alias is not touched), written only if the alias
    is still at ``read_revision`` (None: only if there is no alias yet). ``end_canary``: delete the
    canary alias, conditioned on it still naming ``canary_read``.
    """

    statuses: Mapping[str, tuple[str, str]]
    champion: ChampionAlias | None = None
    read_revision: int | None = None
    end_canary: bool = False
    canary_read: str | None = None

    def apply(self, state: RegistryState) -> RegistryState:
        statuses = dict(state.statuses)
        for version, (_, new) in self.statuses.items():
            statuses[version] = new
        return RegistryState(
            statuses=statuses,
            champion=self.champion if self.champion is not None else state.champion,
            canary=None if self.end_canary else state.canary,
        )


def violations(state: RegistryState) -> list[str]:
    """Every broken invariant of ``state``, in words (empty when it is consistent)."""
    out: list[str] = []
    statuses, alias = state.statuses, state.champion
    for version, status in statuses.items():
        if not VERSION_ID.fullmatch(version):
            out.append(f"version id {version!r} breaks the pattern")
        if status not in STATUSES:
            out.append(f"{version} has unknown status {status!r}")
    production = sorted(v for v, s in statuses.items() if s == "production")
    if alias is None:
        if production:
            out.append(f"no champion alias, yet {', '.join(production)} in production")
    else:
        if statuses.get(alias.version) != "production":
            out.append(f"champion {alias.version} is {statuses.get(alias.version, 'not registered')}, not production")
        others = [v for v in production if v != alias.version]
        if others:
            out.append(f"{', '.join(others)} in production beside the champion {alias.version}")
        if len(alias.previous) > MAX_HISTORY:
            out.append(f"history holds {len(alias.previous)} versions, over {MAX_HISTORY}")
        if len(set(alias.previous)) != len(alias.previous):
            out.append("history holds a version twice")
        if alias.version in alias.previous:
            out.append(f"history holds the champion {alias.version}")
        for v in alias.previous:
            if v != alias.version and statuses.get(v) != "archived":
                out.append(f"history holds {v}, which is {statuses.get(v, 'not registered')}, not archived")
    if state.canary is not None:
        canary_status = statuses.get(state.canary)
        if canary_status not in ("candidate", "archived"):
            out.append(f"canary {state.canary} is {canary_status or 'not registered'}")
        if alias is not None and state.canary == alias.version:
            out.append(f"canary {state.canary} is the champion")
    return out


def check_transition(before: RegistryState, transition: Transition) -> RegistryState:
    """The state ``transition`` leads to; RegistryInvariantError if it would break an invariant that held.

    Refused statuses must stay final whatever held before; the other invariants are checked as
    "no new violation", so a registry damaged before these rules (a history naming a rejected
    version, say) can still be repaired by the next switch.
    """
    for version, (old, new) in transition.statuses.items():
        if old in REFUSED and new != old:
            raise RegistryInvariantError(f"{version} is {old}: a refused version never changes status")
    if transition.champion is not None:
        read = before.champion.revision if before.champion else 0
        if transition.champion.revision != read + 1:
            raise RegistryInvariantError(f"a switch must raise the revision from {read} to {read + 1}")
    after = transition.apply(before)
    held = set(violations(before))
    broken = [v for v in violations(after) if v not in held]
    if broken:
        raise RegistryInvariantError(
            "refusing a registry change that would leave it inconsistent: " + "; ".join(broken)
        )
    return after


def _status_of(state: RegistryState, version: str) -> str:
    status = state.statuses.get(check_version_id(version))
    if status is None:
        raise ModelNotFoundError(f"no model version {version!r}")
    return status


def _check_revision(state: RegistryState, expected_revision: int | None) -> int:
    revision = state.champion.revision if state.champion else 0
    if expected_revision is not None and expected_revision != revision:
        raise PromotionConflictError(
            f"champion is at revision {revision}, not {expected_revision}: read it again (churn models list)"
        )
    return revision


def _history(candidates: tuple[str, ...], statuses: Mapping[str, str], champion: str) -> tuple[str, ...]:
    """Earlier champions a rollback may return to: archived, each once, never the champion, capped."""
    out: list[str] = []
    for v in candidates:
        if v != champion and v not in out and statuses.get(v) == "archived":
            out.append(v)
    return tuple(out[:MAX_HISTORY])


def _switch(state: RegistryState, target: str, history: tuple[str, ...], revision: int) -> Transition:
    statuses: dict[str, tuple[str, str]] = {target: (state.statuses[target], "production")}
    alias = state.champion
    if alias is not None and alias.version != target:
        statuses[alias.version] = (state.statuses.get(alias.version, "production"), "archived")
    after = {**state.statuses, **{v: new for v, (_, new) in statuses.items()}}
    return Transition(
        statuses=statuses,
        champion=ChampionAlias(target, _history(history, after, target), revision + 1),
        read_revision=alias.revision if alias else None,
        # The challenger became the champion: its canary split has served its purpose.
        end_canary=state.canary == target,
        canary_read=state.canary,
    )


def plan_promotion(state: RegistryState, version: str, expected_revision: int | None = None) -> Transition:
    """Make ``version`` the champion; the current one is archived and heads the history.

    PromotionConflictError for a refused version, the champion itself, or a stale ``expected_revision``.
    """
    status = _status_of(state, version)
    revision = _check_revision(state, expected_revision)
    if status in REFUSED:
        raise PromotionConflictError(f"version {version} is {status}: it cannot be promoted")
    alias = state.champion
    if alias is not None and alias.version == version:
        raise PromotionConflictError(f"version {version} is already the champion")
    history = ((alias.version,) + alias.previous) if alias else ()
    transition = _switch(state, version, history, revision)
    check_transition(state, transition)
    return transition


def plan_rollback(state: RegistryState, expected_revision: int | None = None) -> Transition:
    """Restore the newest earlier champion that may still serve; the current one is archived and is
    not remembered (a second rollback goes further back, not back and forth)."""
    revision = _check_revision(state, expected_revision)
    alias = state.champion
    usable = _history(alias.previous, state.statuses, alias.version) if alias else ()
    if alias is None or not usable:
        raise ModelNotFoundError("there is no previous champion to roll back to")
    transition = _switch(state, usable[0], usable[1:], revision)
    check_transition(state, transition)
    return transition


def plan_status(state: RegistryState, version: str, status: str) -> Transition:
    """Reject or fail a version (``STATUS_CHANGES``). Rejecting the champion is refused: roll back or
    promote another version first. Rejecting the canary also ends the canary; rejecting an earlier
    champion also takes it out of the history (a revision of the alias, the champion unchanged)."""
    check_status(status)
    current = _status_of(state, version)
    if current == status:
        return Transition(statuses={version: (current, status)}, canary_read=state.canary)
    if state.champion is not None and state.champion.version == version:
        raise PromotionConflictError(
            f"version {version} is the champion: roll back or promote another version before marking it {status}"
        )
    if (current, status) not in STATUS_CHANGES:
        raise PromotionConflictError(f"version {version} is {current}: it cannot become {status}")
    alias, champion = state.champion, None
    if alias is not None and version in alias.previous:  # a refused version leaves the history with it
        champion = ChampionAlias(alias.version, tuple(v for v in alias.previous if v != version), alias.revision + 1)
    transition = Transition(
        statuses={version: (current, status)},
        champion=champion,
        read_revision=alias.revision if champion is not None and alias is not None else None,
        end_canary=state.canary == version,
        canary_read=state.canary,
    )
    check_transition(state, transition)
    return transition


def check_canary_allowed(state: RegistryState, version: str) -> None:
    """Raise PromotionConflictError unless ``version`` may answer as a canary (or shadow) now."""
    status = _status_of(state, version)
    if state.champion is not None and state.champion.version == version:
        raise PromotionConflictError(f"version {version} is the champion: a canary must be another version")
    if status not in ("candidate", "archived"):
        raise PromotionConflictError(f"version {version} is {status}: it cannot serve as a canary")


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
