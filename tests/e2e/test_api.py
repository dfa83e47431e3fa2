"""The prediction API through API Gateway (REST API, LocalStack), the deployed PredictFunction and its layers.

Bodies come from the same event files `sam local invoke -e` takes.
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import load_event


def _body(event_name: str) -> dict:
    return json.loads(load_event(event_name)["body"])


def _expect(response, status: int, stack) -> dict:
    """The JSON body of a response with this status; otherwise fail showing what PredictFunction logged."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url.path} -> {response.status_code}: {response.text[:500]}\n"
        f"PredictFunction log:\n{stack.function_logs('PredictFunction')}"
    )
    return response.json()


def test_predict_answers_the_champions_calibrated_probability_with_reasons(stack, api, registry, model_store):
    from churnguard.domain.predictor import Predictor

    row = _body("predict")
    got = _expect(api.post("/predict", json=row), 200, stack)

    champion = registry.champion()
    assert got["model_version"] == champion.version
    assert not got.get("fallback"), "scored by the champion, not the base-rate fallback"
    # The deployed function scores with the stored bundle: the same calibrated probability and reasons as the
    # bundle loaded here from the model bucket, checksums verified.
    expected = Predictor(model_store.get(champion.version, champion.manifest_sha256)).predict_record(row)
    assert 0.0 < got["churn_probability"] < 1.0
    assert got["churn_probability"] == pytest.approx(expected["churn_probability"], abs=1e-4)
    assert got["will_churn"] == expected["will_churn"]
    assert got["risk_level"] == expected["risk_level"]
    assert got["reasons"], "a prediction carries its reasons"
    assert [r["feature"] for r in got["reasons"]] == [r["feature"] for r in expected["reasons"]]
    assert {r["effect"] for r in got["reasons"]} <= {"increases risk", "decreases risk"}


def test_bad_input_gets_422_naming_each_problem(stack, api):
    problems = _expect(api.post("/predict", json=_body("predict_invalid")), 422, stack)["problems"]

    fields = {p["field"] for p in problems}
    assert {"tenure", "Contract"} <= fields


def test_a_body_that_is_not_json_gets_400_with_the_position_not_500(stack, api):
    response = api.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})

    got = _expect(response, 400, stack)
    assert got["detail"].startswith("the body is not valid JSON: Expecting property name enclosed in double quotes")
    assert "line 1, column 2 (character 2)" in got["detail"]


def test_batch_scores_every_customer(stack, api):
    batch = _body("predict_batch")
    got = _expect(api.post("/predict/batch", json=batch), 200, stack)

    assert len(got["predictions"]) == len(batch["customers"])
    assert all(0.0 < p["churn_probability"] < 1.0 for p in got["predictions"])


def test_health_names_the_loaded_model(stack, api, registry):
    api.post("/predict", json=_body("predict"))  # a container that has scored has loaded the champion

    health = _expect(api.get("/health"), 200, stack)

    assert health["status"] == "ok"
    assert health["model_version"] == registry.alias()["version"]


def test_model_describes_the_champion(stack, api, registry):
    model = _expect(api.get("/model"), 200, stack)

    assert model["version"] == registry.alias()["version"]
    assert 0.0 < model["threshold"] < 1.0
    assert model["metrics"]["rows"] > 0
    assert 0.5 < model["metrics"]["cv_roc_auc"] <= 1.0
    assert "Contract" in model["schema"]["features"]


def test_predict_without_the_api_key_is_refused_and_health_stays_open(stack, api):
    import httpx

    assert "x-api-key" in api.headers, "template.yaml's API requires a key: the stack should have one"
    with httpx.Client(base_url=str(api.base_url), timeout=60, trust_env=False) as anonymous:
        assert anonymous.post("/predict", json=_body("predict")).status_code == 403
        assert anonymous.get("/health").status_code == 200
