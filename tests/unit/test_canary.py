"""Canary routing (sticky, proportional), the challenger cache, and per-variant significance tests."""

import random

import pytest

from churnguard.domain.canary import (
    CanaryConfig,
    compare_variants,
    mcnemar_test,
    routes_to_canary,
    two_proportion_z_test,
)
from churnguard.domain.identity import customer_key
from churnguard.services.champion import ChallengerProvider


def test_routing_is_sticky_and_close_to_the_share():
    keys = [customer_key(f"c{i}", b"k") for i in range(20000)]
    first = [routes_to_canary(k, 0.1) for k in keys]
    assert first == [routes_to_canary(k, 0.1) for k in keys]
    assert 0.09 < sum(first) / len(keys) < 0.11
    # Raising the share only adds customers: nobody in the canary at 10% leaves it at 20%.
    assert all(routes_to_canary(k, 0.2) for k, c in zip(keys, first, strict=False) if c)
    assert not any(routes_to_canary(k, 0.0) for k in keys[:100])
    assert routes_to_canary(None, 1.0) is False


@pytest.mark.parametrize(
    "kw", [{"share": 0}, {"share": 1.5}, {"share": float("nan")}, {"share": -0.1}, {"version": ""}]
)
def test_bad_canary_configs_are_refused(kw):
    with pytest.raises(ValueError):
        CanaryConfig(**{"version": "v2", "share": 0.1, **kw})


def test_shadow_needs_no_share():
    assert CanaryConfig("v2", shadow=True).shadow


class Clock:
    t = 0.0

    def __call__(self):
        return self.t


def test_challenger_is_read_only_when_due_and_failures_mean_no_challenger():
    clock, reads, loads = Clock(), [], []
    config = {"version": "v2", "share": 0.5, "shadow": False}

    def read():
        reads.append(1)
        if config.get("boom"):
            raise RuntimeError("registry down")
        return dict(config) if config.get("version") else None

    provider = ChallengerProvider(read, lambda v: loads.append(v) or f"model {v}", ttl_s=30, clock=clock)
    assert provider.current() is None  # nothing is read before the first refresh
    provider.refresh_if_due()
    assert provider.current().predictor == "model v2" and loads == ["v2"]
    provider.refresh_if_due()
    assert len(reads) == 1  # within the TTL: no registry read
    config["share"] = 0.2
    clock.t = 31
    provider.refresh_if_due()
    assert provider.current().config.share == 0.2 and loads == ["v2"]  # same version: not reloaded
    config["boom"] = True
    clock.t = 62
    provider.refresh_if_due()
    assert provider.current() is None


def test_z_test_and_mcnemar_agree_with_known_values():
    z, p = two_proportion_z_test(30, 100, 50, 100)
    assert z == pytest.approx(-2.887, abs=1e-3) and p == pytest.approx(0.00389, abs=1e-4)
    assert two_proportion_z_test(0, 50, 0, 50) == (0.0, 1.0)
    stat, p = mcnemar_test(10, 30)  # chi2 with continuity = 19^2/40
    assert stat == pytest.approx(9.025) and p == pytest.approx(0.00266, abs=1e-4)
    _, p = mcnemar_test(1, 9)  # exact: 2 * P(X <= 1), X ~ Bin(10, 0.5)
    assert p == pytest.approx(22 / 1024)


def _joined(variant, n, error_rate, rng, keys=None):
    rows = []
    for i in range(n):
        churned = rng.random() < 0.3
        wrong = rng.random() < error_rate
        will = churned != wrong
        rows.append(
            {
                "customer_key": keys[i] if keys else f"{variant}{i}",
                "variant": variant,
                "model_version": variant,
                "churn_probability": 0.8 if will else 0.2,
                "will_churn": will,
                "churned": churned,
                "observed_date": "2026-05-01",
            }
        )
    return rows


def test_a_clearly_better_canary_is_significant_and_equal_ones_are_not():
    rng = random.Random(0)
    report = compare_variants(_joined("champion", 2000, 0.30, rng) + _joined("canary", 400, 0.15, rng))
    t = report["tests"]["canary"]
    assert t["significant"] and t["verdict"] == "canary makes fewer errors" and t["error_rate_difference"] < 0
    assert report["variants"]["canary"]["n"] == 400 and report["variants"]["champion"]["roc_auc"] is not None

    # Same error rate: across 200 repetitions the test fires about alpha of the time, not more.
    fired = sum(
        compare_variants(_joined("champion", 300, 0.25, rng) + _joined("canary", 300, 0.25, rng))["tests"]["canary"][
            "significant"
        ]
        for _ in range(200)
    )
    assert fired <= 20


def test_shadow_is_tested_paired_and_small_samples_say_so():
    rng = random.Random(1)
    keys = [f"k{i}" for i in range(500)]
    champ = _joined("champion", 500, 0.3, rng, keys)
    shadow = [
        {**r, "variant": "shadow", "will_churn": r["churned"] if rng.random() < 0.9 else not r["churned"]}
        for r in champ
    ]
    t = compare_variants(champ + shadow)["tests"]["shadow"]
    assert t["test"].startswith("McNemar") and t["significant"] and t["n"]["pairs"] == 500
    small = compare_variants(_joined("champion", 10, 0.3, rng) + _joined("canary", 10, 0.3, rng))["tests"]["canary"]
    assert small["p_value"] is None and "insufficient data" in small["verdict"]


class ListLog:
    """An in-memory prediction log (the PredictionLogSink port)."""

    def __init__(self):
        self.records = []

    def add(self, records):
        self.records.extend(records)

    def flush(self):
        return len(self.records)


def _online(schema, predictor, load):
    from churnguard.services.online_scoring import OnlineScoring

    clock = Clock()
    config = {"version": "v-canary", "share": 1.0, "shadow": False}
    challengers = ChallengerProvider(lambda: config, load, ttl_s=30, clock=clock)
    challengers.refresh_if_due()
    log = ListLog()
    return OnlineScoring(schema, lambda: predictor, challenger=challengers, log=log, hash_key=b"k"), log


def _row(schema):
    from tests.conftest import synth_frame

    return {**synth_frame(1, seed=5).iloc[0].to_dict(), "customerID": "7590-VHVEG"}


def test_a_canary_that_cannot_load_is_logged_as_failed_and_the_champion_answers(schema, predictor):
    def broken(version):
        raise RuntimeError("bundle checksum mismatch")

    scoring, log = _online(schema, predictor, broken)
    pred, later = scoring.predict_one(_row(schema))
    scoring.follow_up(later, "r1")
    [rec] = log.records
    assert pred["model_version"] == predictor.version and rec["variant"] == "champion"
    assert rec["canary_error"] == "unavailable" and rec["latency_ms"] > 0


def test_a_canary_that_fails_to_score_is_logged_as_failed(schema, predictor):
    class Exploding:
        schema = predictor.schema

        def predict_records(self, *a, **k):
            raise ValueError("boom")

    scoring, log = _online(schema, predictor, lambda v: Exploding())
    pred, later = scoring.predict_one(_row(schema))
    scoring.follow_up(later, "r1")
    assert pred["model_version"] == predictor.version
    assert log.records[0]["canary_error"] == "scoring" and log.records[0]["variant"] == "champion"


def test_a_canary_answer_is_logged_with_its_scoring_time(schema, predictor):
    scoring, log = _online(schema, predictor, lambda v: predictor)
    _, later = scoring.predict_one(_row(schema))
    scoring.follow_up(later, "r1")
    [rec] = log.records
    assert rec["variant"] == "canary" and "canary_error" not in rec and 0 < rec["latency_ms"] < 1000
