"""Both kinds of error of the drift check, measured on resamples.

False alarms: 200 resamples of 1,000 and 2,000 rows drawn from the training distribution (generated
customers with other seeds) must alarm at most 5% of the time. Misses: the shifts seen in practice
(tenure halved; the Month-to-month share up 20 points) must be caught in at least 95% of resamples.
A fixed score stands in for the model (drift checks read scores, never a model), which keeps this
fast and independent of training. Each measured rate is printed (``pytest -s``) so the figures can be quoted.
"""

import numpy as np
import pytest

from churnguard.domain import drift as D
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.reference_profile import build_profile
from tests.conftest import synth_frame

RESAMPLES = 200


def stand_in_score(schema, X):
    col = {n: X[:, j] for j, n in enumerate(schema.feature_names)}
    logit = 1.2 * (col["Contract"] == 0) - 0.04 * col["tenure"] + 0.8 * (col["InternetService"] == 1) - 0.6
    return 1 / (1 + np.exp(-logit))


@pytest.fixture(scope="module")
def population(schema):
    """The reference profile (3,000 training rows) and a pool of 30,000 unseen rows from the same process."""
    enc = FeatureEncoder(schema)
    X_train = enc.encode_frame(synth_frame(3000, seed=3))
    profile = build_profile(schema, X_train, stand_in_score(schema, X_train))
    X = enc.encode_frame(synth_frame(30000, seed=11))
    return profile, X


def alarm_rate(profile, schema, X, scores, n, weights=None, seed=0):
    rng = np.random.default_rng(seed)
    p = None if weights is None else weights / weights.sum()
    alarms, flagged = 0, {}
    for _ in range(RESAMPLES):
        idx = rng.choice(len(X), n, replace=False, p=p)
        report = D.check_drift(profile, schema, X[idx], scores[idx])
        alarms += report.decision == "retrain"
        for name in report.drifted_features + (["score"] if report.score.drifted else []):
            flagged[name] = flagged.get(name, 0) + 1
    return alarms / RESAMPLES, {k: v / RESAMPLES for k, v in flagged.items()}


@pytest.mark.parametrize("n", [1000, 2000])
def test_false_alarm_rate_on_unshifted_resamples(schema, population, n):
    profile, X = population
    rate, flagged = alarm_rate(profile, schema, X, stand_in_score(schema, X), n)
    print(f"\nunshifted n={n}: false-alarm rate {rate:.3f} over {RESAMPLES} resamples, flagged {flagged}")
    assert rate <= 0.05


@pytest.mark.parametrize("n", [1000, 2000])
def test_tenure_halved_is_caught(schema, population, n):
    profile, X = population
    Xs = X.copy()
    j = schema.feature_names.index("tenure")
    Xs[:, j] = np.round(Xs[:, j] / 2)
    rate, flagged = alarm_rate(profile, schema, Xs, stand_in_score(schema, Xs), n, seed=1)
    print(f"\ntenure halved n={n}: detection rate {rate:.3f}, flagged {flagged}")
    assert rate >= 0.95 and flagged["tenure"] >= 0.95


@pytest.mark.parametrize("n", [1000, 2000])
def test_month_to_month_share_up_20_points_is_caught(schema, population, n):
    profile, X = population
    m2m = X[:, schema.feature_names.index("Contract")] == 0
    share = m2m.mean()
    # Reweight the population so Month-to-month rises by 20 points; correlated features move with it.
    weights = np.where(m2m, (share + 0.2) / share, (1 - share - 0.2) / (1 - share))
    rate, flagged = alarm_rate(profile, schema, X, stand_in_score(schema, X), n, weights=weights, seed=2)
    print(f"\nMonth-to-month +20 points n={n}: detection rate {rate:.3f}, flagged {flagged}")
    assert rate >= 0.95 and flagged["Contract"] >= 0.95
