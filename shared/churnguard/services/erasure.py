"""Right to erasure: remove one customer from every store that holds them (domain/privacy.py says
what is and is not covered, and why).

    report = forget_customer("7590-VHVEG", key, [OutcomeEraser(...), ScoreEraser(...), PredictionLogEraser(...)])
"""

from __future__ import annotations

from collections.abc import Sequence

from churnguard.domain.errors import ChurnGuardError, DataValidationError
from churnguard.domain.identity import customer_key
from churnguard.domain.privacy import ErasureReport
from churnguard.services.ports import Eraser


def forget_customer(customer_id: str, hash_key: bytes, erasers: Sequence[Eraser]) -> ErasureReport:
    """Erase one customer from every store; a failing store is reported, the others still erased.

    Running it again is safe (erasure is idempotent): a second run removes nothing and says so.
    """
    if not isinstance(customer_id, str) or not customer_id.strip():
        raise DataValidationError("give the customer's id (a non-empty string)")
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
