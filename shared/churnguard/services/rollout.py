"""Rolling a candidate out safely, and back by itself: the retraining loop after the offline gate.

- ``start_canary``: the candidate answers a share of customers (or scores them in shadow) for the wait;
- ``check_canary``: at the end of the wait, judge it on what is known (domain/canary.judge_canary): failed
  canary answers, latency, its live scores against the ones it gave the held-out period, outcomes by
  variant when enough exist, and the service's 5xx and fallback rate; the report goes to S3;
- ``finish_canary``: a rejected, inconclusive or superseded canary is cleared and the candidate's entry
  says why (rejected only when a check failed);
- ``promote_candidate``: the switch itself, only for a version that passed the gate, was never rolled
  back, and only if the champion is still the one the canary ran against; it starts the watch;
- ``roll_back_on_alarm``: during the watch, the champion's alarm rolls it back through the registry's
  conditional switch, marks the version, notifies AlarmTopic and publishes ModelRolledBack.

    state = start_canary(registry, "v7", CanaryPolicy(share=0.1), now)
    result = check_canary(registry, log, outcomes, objects, health, state, "s3://.../evaluation.json", now, root)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from churnguard.domain import reports
from churnguard.domain.canary import CanaryPolicy, judge_canary
from churnguard.domain.errors import ChurnGuardError, DataValidationError, ModelNotFoundError
from churnguard.domain.outcomes import SERVED_VARIANTS, join_point_in_time
from churnguard.domain.prediction_log import parse_ts
from churnguard.domain.watch import check_automatic_promotion, iso, parse_iso, rollback_decision, watch_after
from churnguard.services.lifecycle import require_passed_gate
from churnguard.services.ports import (
    EventPublisher,
    Notifier,
    ObjectStore,
    OutcomeStore,
    PredictionLogSource,
    Registry,
    ServiceHealth,
    WatchStore,
)


class CanaryConflictError(ChurnGuardError):
    """Another canary is running: the loop does not replace it (the run ends without promoting)."""


# ----- the canary stage ------------------------------------------------------------------------------
def start_canary(
    registry: Registry, version: str, policy: CanaryPolicy, now: datetime, execution: str | None = None
) -> dict[str, Any]:
    """Let the candidate answer ``policy.share`` of customers (or shadow them) and remember against which
    champion (its alias revision), so the promotion after the wait is conditioned on it."""
    candidate = registry.get(version)
    check_automatic_promotion(version, candidate.rolled_back)
    running = registry.canary()
    if running and running.get("version") != version:
        raise CanaryConflictError(
            f"a canary of {running['version']} is already running (set {running.get('updated_at')}, "
            f"{running.get('reason')}); this run does not replace it"
        )
    alias = registry.alias()
    registry.set_canary(
        version, share=policy.share, shadow=policy.shadow, reason=f"retraining canary {execution or ''}".strip()
    )
    return {
        "version": version,
        "share": policy.share,
        "shadow": policy.shadow,
        "wait_seconds": int(policy.wait_seconds),
        "started_at": iso(now),
        "champion": alias["version"] if alias else None,
        "champion_revision": int(alias["revision"]) if alias else 0,
        "policy": {k: v for k, v in policy.__dict__.items()},
    }


def _records_between(log: PredictionLogSource, start: datetime, end: datetime) -> list[dict[str, Any]]:
    out = []
    for r in log.records(start.date(), end.date()):
        ts = parse_ts(r.get("ts"))
        if ts is not None and start <= ts <= end:
            out.append(r)
    return out


def check_canary(
    registry: Registry,
    log: PredictionLogSource,
    outcomes: OutcomeStore | None,
    objects: ObjectStore,
    health: ServiceHealth | None,
    canary: Mapping[str, Any],
    evaluation_report: str | None,
    now: datetime,
    reports_root: str,
) -> dict[str, Any]:
    """The verdict on a canary started by ``start_canary`` (its returned state is ``canary``), with the
    report written to ``{reports_root}/canary/{version}/``."""
    version = str(canary["version"])
    policy = CanaryPolicy.from_dict(canary.get("policy") or {})
    started = parse_iso(str(canary["started_at"]))
    current = registry.canary()
    if not current or current.get("version") != version or bool(current.get("shadow")) != policy.shadow:
        verdict: dict[str, Any] = {
            "decision": "inconclusive",
            "reasons": [
                f"the canary of {version} was changed during its window (now: {current or 'none'}); "
                "nothing is concluded from it"
            ],
            "checks": [],
            "counts": {},
        }
    else:
        records = _records_between(log, started, now)
        expected = None
        if evaluation_report:
            try:
                expected = json.loads(objects.read(evaluation_report)).get("score_profile")
            except (DataValidationError, ValueError):
                expected = None  # judged without it; the check says so
        joined: list[dict[str, Any]] = []
        if outcomes is not None:
            # Outcomes of customers scored in the window: each variant matched on its own.
            observed = list(outcomes.outcomes(since=started.date(), until=now.date() + timedelta(days=1)))
            variants = (*SERVED_VARIANTS, "shadow")
            joined = join_point_in_time(records, observed, variants=variants)
        service = health.counts(started, now) if health is not None else None
        verdict = judge_canary(
            version, policy, records, expected_scores=expected, joined=joined, service=service
        ).to_dict()
    base = f"{reports_root}/canary/{version}/{now.strftime('%Y%m%dT%H%M%SZ')}"
    body = {"version": version, "canary": dict(canary), "window": {"start": iso(started), "end": iso(now)}, **verdict}
    objects.write(base + ".json", reports.to_json(body), "application/json")
    return {**verdict, "version": version, "report": base + ".json"}


def finish_canary(
    registry: Registry, version: str, outcome: str, reasons: list[str], report: str | None = None
) -> dict[str, Any]:
    """End a canary that does not lead to a promotion: clear it (if it is still this version's) and record
    why on the candidate: ``rejected`` when a check failed, still a candidate when nothing was concluded
    (``inconclusive``) or the champion changed meanwhile (``superseded``)."""
    running = registry.canary()
    cleared = bool(running and running.get("version") == version)
    if cleared:
        registry.clear_canary()
    why = f"canary {outcome}: " + "; ".join(reasons) + (f" (report {report})" if report else "")
    try:
        status = registry.get(version).status
    except ModelNotFoundError:
        return {"version": version, "outcome": outcome, "cleared": cleared, "status": None, "reason": why}
    if status == "candidate":
        status = "rejected" if outcome == "reject" else "candidate"
        registry.set_status(version, status, reason=why[:2000])
    return {"version": version, "outcome": outcome, "cleared": cleared, "status": status, "reason": why[:2000]}


# ----- promotion and the watch ------------------------------------------------------------------------
def promote_and_watch(
    registry: Registry,
    watches: WatchStore | None,
    version: str,
    reason: str,
    now: datetime,
    watch_hours: float,
    expected_revision: int | None = None,
) -> dict[str, Any]:
    """Switch the champion (conditioned on ``expected_revision`` when given) and start the watch."""
    alias = registry.promote(version, reason=reason, expected_revision=expected_revision)
    if watches is not None and watch_hours > 0:
        watches.start(watch_after(alias, watch_hours, now, reason))
    return alias


def promote_candidate(
    registry: Registry,
    watches: WatchStore | None,
    version: str,
    evaluation: Mapping[str, Any],
    reason: str,
    now: datetime,
    watch_hours: float,
    expected_revision: int | None = None,
) -> dict[str, Any]:
    """The loop's promotion: the gate passed for this version, it was never rolled back, and the champion
    is still at ``expected_revision`` (the one the canary ran against: PromotionConflictError otherwise)."""
    require_passed_gate(version, evaluation)
    check_automatic_promotion(version, registry.get(version).rolled_back)
    return promote_and_watch(registry, watches, version, reason, now, watch_hours, expected_revision)


def roll_back_on_alarm(
    registry: Registry,
    watches: WatchStore,
    notifier: Notifier | None,
    publisher: EventPublisher | None,
    alarm: Mapping[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Roll the champion back if ``alarm`` (``{"name", "state", "reason"}``) fired during its watch
    (domain/watch.rollback_decision); record why, tell AlarmTopic and publish ModelRolledBack."""
    watch = watches.current()
    alias = registry.alias()
    act, why = rollback_decision(watch, alias, str(alarm.get("state")), now)
    if not act or watch is None:
        return {"rolled_back": False, "reason": why, "alarm": dict(alarm)}
    reason = (
        f"automatic rollback: alarm {alarm.get('name')} ({alarm.get('reason')}) during the watch of {watch.version}"
    )
    restored = registry.rollback(reason=reason[:1000], expected_revision=watch.revision)
    at = iso(now)
    marker = {"at": at, "reason": reason[:1000], "alarm": alarm.get("name"), "restored": restored["version"]}
    registry.set_status(watch.version, "archived", reason=reason[:2000], extra={"rolled_back": marker})
    watches.end(watch, "rolled_back", reason, at)
    result = {
        "rolled_back": True,
        "version": watch.version,
        "champion": restored["version"],
        "revision": restored["revision"],
        "reason": reason,
        "alarm": dict(alarm),
        "at": at,
    }
    if notifier is not None:
        notifier.notify(f"churnguard: {watch.version} rolled back to {restored['version']}", result)
    if publisher is not None:
        publisher.publish("ModelRolledBack", result)
    return result


def watch_status(watches: WatchStore, now: datetime | None = None) -> dict[str, Any] | None:
    """The current watch, with whether it is still active."""
    watch = watches.current()
    if watch is None:
        return None
    return {**watch.to_dict(), "active": watch.active(now or datetime.now(UTC))}
