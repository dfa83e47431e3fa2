"""Right to erasure: remove one customer from every store that holds them (domain/privacy.py says
what is and is not covered, and why).

    report = forget_customer("7590-VHVEG", key, [OutcomeEraser(...), ScoreEraser(...), PredictionLogEraser(...)])
"""

from __future__ import annotations

from collections.abc import Sequence

from churnguard.domain.errors import ChurnGuardError, DataValidationError, StorageError
from churnguard.domain.identity import customer_key
from churnguard.domain.privacy import ErasureReport
from churnguard.services.ports import Eraser


def forget_customer(customer_id: str, hash_key: bytes, erasers: Sequence[Eraser]) -> ErasureReport:
    """Erase one customer from every store; a failing store is reported, the others still erased.

    Every store is checked first: if one cannot be reached nothing is erased (StorageError naming
    each), so an erasure is never silently partial. A store failing during the erasure itself is
    reported in ``failed``. Running it again is safe (erasure is idempotent): a second run removes
    nothing and says so.
    """
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise DataValidationError("give the customer's id (a non-empty string)")
    unreachable = {}
    for eraser in erasers:
        try:
            eraser.check()
        except ChurnGuardError as e:
            unreachable[eraser.name] = str(e)
    if unreachable:
        problems = "; ".join(f"{name}: {problem}" for name, problem in unreachable.items())
        raise StorageError(
            f"nothing erased: {len(unreachable)} of {len(erasers)} stores cannot be reached ({problems}); "
            "fix access to them and run the erasure again"
        )
    key = customer_key(customer_id, hash_key)
    report = ErasureReport(customer_key=key)
    for eraser in erasers:
        try:
            result = dict(eraser.erase(key))
        except ChurnGuardError as e:
            report.failed[eraser.name] = str(e)
            continue
        report.removed[eraser.name] = int(result.pop("removed"))
        if result:
            report.details[eraser.name] = result
    return report
