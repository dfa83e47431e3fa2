"""Tampered artifacts are refused and alarmed; the last known good model keeps serving; with none,
a clear 503 or (when configured) the flagged base-rate estimate; a failing store trips the breaker."""

import json

import boto3
import pytest

from churnguard.domain.bundle import ModelBundle
from churnguard.domain.errors import ModelUnavailableError
from churnguard.domain.model_registry import ModelVersion
from churnguard.services.champion import ChampionProvider
from tests.conftest import load_event, load_function
from tests.functional.faultinject import inject, remove


def register(services, trained, version, promote=False):
    bundle, result = trained
    b = ModelBundle(version=version, model_text=bundle.model_text, metadata={**bundle.metadata, "version": version})
    stored = services.store.put(b)
    services.registry.register(
        ModelVersion(
            version=version,
            status="candidate",
            location=stored["location"],
            manifest_sha256=stored["manifest_sha256"],
            checksums=stored["files"],
            metrics={k: v for k, v in result.metrics.items() if k != "folds"},
        )
    )
    if promote:
        services.registry.promote(version)


def tamper(aws, version, how="flip"):
    s3 = boto3.client("s3")
    key = f"models/{version}/model.txt"
    text = s3.get_object(Bucket=aws["MODEL_BUCKET"], Key=key)["Body"].read()
    if how == "truncate":
        body = text[: len(text) // 2]
    else:  # change one digit of one leaf value: same length, different model
        i = next(i for i in range(text.index(b"leaf_value=") + 11, len(text)) if text[i : i + 1].isdigit())
        body = text[:i] + (b"7" if text[i : i + 1] != b"7" else b"3") + text[i + 1 :]
    s3.put_object(Bucket=aws["MODEL_BUCKET"], Key=key, Body=body)


def emitted_metrics(out: str) -> dict[str, float]:
    """Sum of every EMF metric Powertools printed."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("{") or "_aws" not in line:
            continue
        doc = json.loads(line)
        for d in doc["_aws"]["CloudWatchMetrics"]:
            for m in d["Metrics"]:
                v = doc[m["Name"]]
                totals[m["Name"]] = totals.get(m["Name"], 0) + (sum(v) if isinstance(v, list) else v)
    return totals


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.mark.parametrize("how", ["flip", "truncate"])
def test_tampered_new_champion_is_refused_alarmed_and_last_good_keeps_serving(
    aws, services, trained, lambda_context, monkeypatch, capsys, caplog, how
):
    monkeypatch.setenv("CHAMPION_TTL_SECONDS", "0")
    register(services, trained, "v1", promote=True)
    predict = load_function("predict")
    assert json.loads(predict.handler(load_event("predict"), lambda_context)["body"])["model_version"] == "v1"
    capsys.readouterr()

    register(services, trained, "v2")
    tamper(aws, "v2", how)
    services.registry.promote("v2")
    r = predict.handler(load_event("predict"), lambda_context)
    assert r["statusCode"] == 200
    assert json.loads(r["body"])["model_version"] == "v1", "the tampered model must never be served"
    logged = capsys.readouterr().out
    assert emitted_metrics(logged)["ArtifactIntegrityFailure"] == 1
    assert emitted_metrics(logged)["ModelFallback"] == 1
    refused = [r for r in caplog.records if r.getMessage() == "model artifact refused"]
    assert len(refused) == 1 and refused[0].version == "v2"
    assert ("sha256" if how == "flip" else "truncated") in refused[0].problem


def test_tampered_champion_and_nothing_cached_answers_503_naming_the_problem(
    aws, services, trained, lambda_context, capsys
):
    register(services, trained, "v1", promote=True)
    tamper(aws, "v1")
    predict = load_function("predict")
    r = predict.handler(load_event("predict"), lambda_context)
    assert r["statusCode"] == 503
    body = json.loads(r["body"])
    assert body["error"] == "model unavailable" and "sha256" in body["detail"] and "v1" in body["detail"]
    assert int(r["headers"]["retry-after"]) >= 1
    assert emitted_metrics(capsys.readouterr().out)["ArtifactIntegrityFailure"] == 1


def test_configured_fallback_serves_the_flagged_base_rate(aws, services, trained, lambda_context, monkeypatch):
    monkeypatch.setenv("FALLBACK_MODE", "base_rate")
    register(services, trained, "v1", promote=True)
    tamper(aws, "v1")
    predict = load_function("predict")
    r = predict.handler(load_event("predict_batch"), lambda_context)
    assert r["statusCode"] == 200, r["body"]
    preds = json.loads(r["body"])["predictions"]
    rate = trained[1].metrics["positive_rate"]
    assert all(p["fallback"] is True and p["churn_probability"] == round(rate, 4) and p["reasons"] == [] for p in preds)
    assert not any(p["will_churn"] for p in preds)  # a constant flags nobody
    # /model has no fallback: with no model it stays an honest 503.
    assert predict.handler(load_event("model"), lambda_context)["statusCode"] == 503
    # /health does not call a fallback "ok": a load balancer or canary check must see it.
    health = predict.handler(load_event("health"), lambda_context)
    assert health["statusCode"] == 503
    assert json.loads(health["body"])["status"] == "degraded" and json.loads(health["body"])["fallback"] is True


def test_health_is_ok_only_while_a_verified_champion_is_loaded(aws, services, trained, lambda_context):
    predict = load_function("predict")
    empty = predict.handler(load_event("health"), lambda_context)  # nothing promoted yet
    assert empty["statusCode"] == 503 and json.loads(empty["body"])["status"] == "unavailable"
    register(services, trained, "v1", promote=True)
    tamper(aws, "v1")  # the champion's bundle fails its checksums: every prediction would answer 503
    refused = load_function("predict").handler(load_event("health"), lambda_context)
    assert refused["statusCode"] == 503 and "sha256" in json.loads(refused["body"])["detail"]
    register(services, trained, "v2", promote=True)
    fresh = load_function("predict")
    ok = fresh.handler(load_event("health"), lambda_context)  # loads and verifies the champion itself
    assert ok["statusCode"] == 200 and json.loads(ok["body"]) == {"status": "ok", "model_version": "v2"}


def test_real_predictions_are_flagged_not_fallback(aws, services, trained, lambda_context, monkeypatch):
    monkeypatch.setenv("FALLBACK_MODE", "base_rate")
    register(services, trained, "v1", promote=True)
    r = load_function("predict").handler(load_event("predict"), lambda_context)
    assert json.loads(r["body"])["fallback"] is False


def test_fallback_without_any_base_rate_stays_503(aws, services, lambda_context, monkeypatch):
    monkeypatch.setenv("FALLBACK_MODE", "base_rate")
    r = load_function("predict").handler(load_event("predict"), lambda_context)
    assert r["statusCode"] == 503


def test_failing_bucket_trips_the_breaker_then_recovers_by_itself(aws, services, trained):
    register(services, trained, "v1", promote=True)
    clock = Clock()
    provider = ChampionProvider(services.registry, services.store, ttl_s=30, clock=clock)
    fault = inject(services.store.s3, "GetObject", "AccessDenied")
    for _ in range(3):
        with pytest.raises(ModelUnavailableError, match="AccessDenied"):
            provider.champion()
    calls_when_opened = fault.calls
    for _ in range(50):
        with pytest.raises(ModelUnavailableError, match="not retried for another"):
            provider.champion()
    assert fault.calls == calls_when_opened, "an open breaker must leave S3 alone"
    assert provider.breaker.state == "open"

    remove(services.store.s3, fault)
    clock.t += provider.breaker.reset_timeout_s
    assert provider.champion().version == "v1"
    assert provider.breaker.state == "closed"
