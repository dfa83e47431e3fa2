"""One range check for the loop's settings (domain/mapping.check_settings): the drift thresholds, the
canary policy and the promotion gate refuse bad values with the messages they always gave, and every
broken rule is named in one error (the gate used to stop at the first)."""

from __future__ import annotations

import re

import pytest

from churnguard.domain.canary import CanaryPolicy
from churnguard.domain.drift import DriftThresholds
from churnguard.domain.evaluation import GateConfig
from churnguard.domain.mapping import check_settings


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: DriftThresholds(alpha=1.0), "drift thresholds: alpha must be in (0, 1)"),
        (
            lambda: DriftThresholds(min_rows=0, score_psi=0),
            "drift thresholds: min_rows, min_outcomes and min_class_count must be >= 1; psi and score_psi must be > 0",
        ),
        (lambda: DriftThresholds(max_estimated_pr_drop=-1), "drift thresholds: max_estimated_pr_drop must be >= 0"),
        (lambda: CanaryPolicy(share=0), "canary policy: share must be in (0, 1] (or use shadow)"),
        (
            lambda: CanaryPolicy(max_error_rate=2, alpha=0),
            "canary policy: max_error_rate and max_service_error_rate must be in [0, 1]; "
            "max_latency_ratio must be >= 1, max_score_psi > 0 and alpha in (0, 1)",
        ),
        (lambda: GateConfig(confidence=1), "gate: confidence must be in (0, 1)"),
        (
            lambda: GateConfig(n_bootstrap=10, min_rows=1),
            "gate: n_bootstrap must be at least 100 for a usable interval; "
            "min_rows must be >= 2 and min_class_count >= 1",
        ),
    ],
)
def test_bad_settings_are_refused_naming_every_broken_rule(build, message):
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        build()


def test_good_settings_pass():
    DriftThresholds(), CanaryPolicy(), CanaryPolicy(share=0, shadow=True), GateConfig()
    check_settings("anything", [(False, "never said")])
