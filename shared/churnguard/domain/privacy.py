"""Right to erasure: ``churn forget CUSTOMER_ID`` removes what the platform holds about one customer.

Every store keys a customer by the keyed hash of the id (churnguard.domain.identity.customer_key), so
erasure needs the id and the hash key, and nothing else: no store holds the id in clear.

What is erased (each store is an ``Eraser`` port, services/ports.py; adapters/erasure.py has the AWS ones):
- outcomes (ground truth from POST /feedback and feedback CSVs): every item of the customer;
- the stored score (batch scoring's latest score per customer);
- the stored feature vector (the feature refresh's latest features per customer);
- prediction-log records (``predictions/dt=*/…jsonl`` with this ``customer_key``): each object
  holding one is rewritten without it, and its older versions are deleted (the bucket is versioned).

What is not, and why (say so to whoever asked):
- model bundles: a trained model holds no individual record (trees and a bounded feature profile);
  the customer leaves the next model when its training data no longer holds them;
- batch inputs and outputs in the batch bucket: files the operator supplied and fetched, named
  by job; delete the job's prefix there;
- CloudWatch logs: handlers log hashed keys only, never ids or features.

    report = forget_customer(  # services/erasure.py
       "7590-VHVEG", key, [OutcomeEraser(...), ScoreEraser(...), LogEraser(...)])
    report.to_dict()   # {"customer_key": "…", "removed": {"outcomes": 2, "scores": 1, "prediction_log": 5}, ...}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class ErasureReport:
    customer_key: str
    removed: dict[str, int] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer_key": self.customer_key,
            "complete": self.complete,
            "removed": self.removed,
            "total_removed": sum(self.removed.values()),
            "details": self.details,
            "failed": self.failed,
            "not_covered": [
                "model bundles (no individual records)",
                "batch job inputs and outputs in the batch bucket (delete the job's prefix)",
                "the customer table and event logs a feature definition reads (the business's own sources)",
            ],
        }
