"""The watch after a promotion: for a while, an alarm on the new champion rolls it back by itself.

Every promotion starts a watch (``watch_after``): the version promoted, the champion alias revision the
promotion wrote, and until when. When the champion's watch alarm (error or fallback rate) goes to ALARM,
``rollback_decision`` says whether to roll back: only during the watch, only while the champion is still
the watched version at the watched revision (an alarm during a second promotion must not roll back a
version it was not watching), and only once. A version rolled back is marked so (``ModelVersion.rolled_back``)
and is never promoted again by the loop (``check_automatic_promotion``); an operator still can.

    watch = watch_after({"version": "v2", "previous": ["v1"], "revision": 5}, hours=24, now=now, reason="drift")
    act, why = rollback_decision(watch, registry_alias, "ALARM", now)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from churnguard.domain.errors import PromotionConflictError


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class Watch:
    version: str
    revision: int  # the champion alias revision the promotion wrote
    previous: str | None  # what a rollback would restore
    started_at: str
    until: str
    reason: str
    ended: str | None = None  # rolled_back | superseded
    ended_at: str | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Watch:
        known = set(cls.__dataclass_fields__)
        fields: dict[str, Any] = {k: v for k, v in d.items() if k in known}
        fields["revision"] = int(fields["revision"])
        return cls(**fields)

    def active(self, now: datetime) -> bool:
        return self.ended is None and now < parse_iso(self.until)


def watch_after(alias: Mapping[str, Any], hours: float, now: datetime, reason: str) -> Watch:
    """The watch a promotion that wrote ``alias`` (the champion alias item) starts."""
    previous = list(alias.get("previous") or [])
    return Watch(
        version=str(alias["version"]),
        revision=int(alias["revision"]),
        previous=previous[0] if previous else None,
        started_at=iso(now),
        until=iso(now + timedelta(hours=hours)),
        reason=reason,
    )


def rollback_decision(
    watch: Watch | None, alias: Mapping[str, Any] | None, alarm_state: str, now: datetime
) -> tuple[bool, str]:
    """(roll back now?, why). Rolls back only an ALARM during an active watch of the current champion."""
    if alarm_state != "ALARM":
        return False, f"the alarm is {alarm_state}, not ALARM"
    if watch is None:
        return False, "no promotion is being watched"
    if watch.ended is not None:
        return False, f"the watch of {watch.version} already ended ({watch.ended} at {watch.ended_at})"
    if now >= parse_iso(watch.until):
        return False, f"the watch of {watch.version} ended at {watch.until}"
    if not alias or alias.get("version") != watch.version or int(alias.get("revision", -1)) != watch.revision:
        current = f"{alias.get('version')} at revision {alias.get('revision')}" if alias else "no champion"
        return False, (
            f"the champion changed since the watched promotion of {watch.version} (revision {watch.revision}); "
            f"now {current}: a version the alarm did not watch is not rolled back"
        )
    if not watch.previous:
        return False, f"{watch.version} was the first champion: there is nothing to roll back to"
    return True, f"{watch.version} alarmed during its watch (until {watch.until}): back to {watch.previous}"


def check_automatic_promotion(version: str, rolled_back: Mapping[str, Any] | None) -> None:
    """PromotionConflictError when the loop would promote a version that was once rolled back."""
    if rolled_back:
        raise PromotionConflictError(
            f"{version} was rolled back at {rolled_back.get('at')} ({rolled_back.get('reason')}): it is never "
            "promoted again automatically; an operator may (churn promote)"
        )
