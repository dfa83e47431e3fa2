"""POST /customers/{customer_id}/predict: the champion on the customer's stored vector, through the app and
through the predict function's handler (API Gateway event), with 404, 409, 422 and 503 where they belong."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from tests.conftest import load_event, load_function
from tests.functional.event_fixtures import active_at, promote, upload_logs

T = datetime(2026, 5, 2, tzinfo=UTC)


@pytest.fixture
def refreshed(aws, services, event_logs, monkeypatch):
    """Features of every active customer at T stored; returns the active ids."""
    from churnguard.bootstrap import build_feature_refresh

    data, folder = event_logs
    uri = upload_logs(aws, folder, monkeypatch)
    build_feature_refresh(services).refresh(T, uri)
    return active_at(data, T)


def test_a_customer_is_scored_by_the_champion_from_the_stored_features(services, events_model, refreshed):
    from churnguard.bootstrap import build_feature_store
    from churnguard.domain.predictor import Predictor
    from churnguard.entrypoints.api import build_app

    bundle, _, _ = events_model
    promote(services, bundle)
    client = TestClient(build_app(services))
    cid = refreshed[3]

    got = client.post(f"/customers/{cid}/predict")

    assert got.status_code == 200, got.text
    body = got.json()
    expected = Predictor(bundle).predict_record(build_feature_store(services).get(cid)["features"])
    assert body["model_version"] == bundle.version
    assert body["churn_probability"] == expected["churn_probability"]
    assert body["risk_level"] == expected["risk_level"] and body["will_churn"] == expected["will_churn"]
    assert body["reasons"] == expected["reasons"]
    assert body["features_as_of"] == "2026-05-02T00:00:00Z"
    assert client.post(f"/customers/{cid}/predict?reasons=false").json()["reasons"] == []


def test_an_unknown_or_departed_customer_is_404(services, events_model, refreshed, event_logs):
    from churnguard.entrypoints.api import build_app

    promote(services, events_model[0])
    client = TestClient(build_app(services))
    data, _ = event_logs
    departed = next(c for c in data.customers["customer_id"] if c not in set(refreshed))

    for cid in ("nobody-42", departed):
        got = client.post(f"/customers/{cid}/predict")
        assert got.status_code == 404
        assert got.json()["error"] == "customer not found" and "no current features" in got.json()["detail"]


def test_a_champion_trained_on_other_features_is_409_naming_what_it_lacks(services, champion, refreshed):
    from churnguard.entrypoints.api import build_app

    got = TestClient(build_app(services)).post(f"/customers/{refreshed[0]}/predict")

    assert got.status_code == 409
    assert got.json()["error"] == "stored features do not fit the champion"
    assert "lack gender" in got.json()["detail"] and "churn features build" in got.json()["detail"]


def test_no_champion_is_503_and_a_malformed_id_422(services, refreshed):
    from churnguard.entrypoints.api import build_app

    client = TestClient(build_app(services))

    assert client.post(f"/customers/{refreshed[0]}/predict").status_code == 503
    bad = client.post("/customers/" + "x" * 200 + "/predict")
    assert bad.status_code == 422 and bad.json()["problems"][0]["field"] == "customer_id"


def test_a_deployment_without_a_feature_table_says_so(services, predictor):
    from churnguard.entrypoints.api import create_app
    from churnguard.services.online_scoring import OnlineScoring

    app = create_app(OnlineScoring(predictor.schema, lambda: predictor))

    got = TestClient(app).post("/customers/C1/predict")

    assert got.status_code == 503 and "no feature table" in got.json()["detail"]


def test_through_the_predict_function_handler(services, events_model, refreshed, lambda_context):
    promote(services, events_model[0])
    event = load_event("predict_customer")
    cid = refreshed[0]
    event.update(path=f"/customers/{cid}/predict", pathParameters={"customer_id": cid})

    fn = load_function("predict")
    answered = fn.handler(event, lambda_context)
    missing = fn.handler(
        {**event, "path": "/customers/nobody/predict", "pathParameters": {"customer_id": "nobody"}}, lambda_context
    )

    assert answered["statusCode"] == 200, answered["body"]
    assert json.loads(answered["body"])["model_version"] == events_model[0].version
    assert missing["statusCode"] == 404


def test_forget_erases_the_customers_stored_features(services, refreshed):
    from churnguard.bootstrap import build_feature_store, build_forget

    cid = refreshed[1]
    report = build_forget(services)(cid).to_dict()

    assert report["removed"]["features"] == 1
    assert build_feature_store(services).get(cid) is None
