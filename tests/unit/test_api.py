"""The API through FastAPI's test client, with the champion handed in directly (no AWS)."""

import json

import pytest
from fastapi.testclient import TestClient

from churnguard.domain.errors import ModelUnavailableError
from churnguard.entrypoints.api import create_app
from churnguard.services.online_scoring import OnlineScoring
from tests.conftest import load_event


@pytest.fixture(scope="module")
def client(schema, predictor):
    return TestClient(create_app(OnlineScoring(schema, lambda: predictor), max_batch=5, max_body_bytes=50_000))


def body(name):
    return json.loads(load_event(name)["body"])


def test_predict_a_telco_row(client):
    r = client.post("/predict", json=body("predict"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert 0 < out["churn_probability"] < 1
    assert out["risk_level"] in {"low", "medium", "high"}
    assert len(out["reasons"]) == 3
    assert out["recommendation"]


def test_a_raw_csv_row_with_strings_and_blank_total_is_accepted(client):
    row = {k: str(v) for k, v in body("predict").items()}
    row.update(TotalCharges=" ", tenure="0", Churn="No")
    r = client.post("/predict", json=row)
    assert r.status_code == 200, r.text


def test_invalid_fields_get_422_naming_field_value_and_allowed(client):
    r = client.post("/predict", json=body("predict_invalid"))
    assert r.status_code == 422
    problems = {p["field"]: p for p in r.json()["problems"]}
    assert problems["Contract"]["value"] == "Weekly"
    assert "Month-to-month" in problems["Contract"]["problem"]
    assert problems["tenure"]["value"] == -4
    assert "greater than or equal to 0" in problems["tenure"]["problem"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"tenure": 1.5}, "tenure"),
        ({"MonthlyCharges": "lots"}, "MonthlyCharges"),
        ({"MonthlyCharges": 1e300}, "MonthlyCharges"),
        ({"gender": None}, "gender"),
        ({"favourite_colour": "blue"}, "favourite_colour"),
        ({"Contract": "Månad-till-månad ✓"}, "Contract"),
    ],
)
def test_each_kind_of_bad_field_is_named(client, change, field):
    r = client.post("/predict", json={**body("predict"), **change})
    assert r.status_code == 422
    assert field in [p["field"] for p in r.json()["problems"]]


def test_missing_field_is_named(client):
    row = body("predict")
    del row["Contract"]
    r = client.post("/predict", json=row)
    assert r.status_code == 422
    assert r.json()["problems"][0]["field"] == "Contract"


@pytest.mark.parametrize("raw", ["", "[]", "null", '{"tenure": NaN}', '{"a": Infinity}'])
def test_bodies_that_are_json_but_not_a_customer_get_422(client, raw):
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["problems"][0]["problem"]


@pytest.mark.parametrize(
    "raw, where",
    [
        ("not json", "line 1, column 1 (character 1)"),
        ('{"tenure": }', "line 1, column 12 (character 12)"),
        ('{\n  "tenure": 1,\n  "Contract": Month}', "line 3, column 15 (character 32)"),
    ],
)
def test_a_body_that_is_not_json_gets_400_with_the_position(client, raw, where):
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert r.json() == {
        "error": "invalid JSON",
        "detail": f"the body is not valid JSON: Expecting value at {where}; send one JSON object",
    }


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml; charset=utf-8"])
def test_a_wrong_content_type_gets_415_naming_it_without_echoing_bytes(client, content_type):
    r = client.post("/predict", content=json.dumps(body("predict")).encode(), headers={"content-type": content_type})
    assert r.status_code == 415
    detail = r.json()["detail"]
    assert "Content-Type: application/json" in detail and "b'" not in detail
    assert content_type in detail


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", None])
def test_json_sent_as_a_form_or_untyped_is_read_as_json_and_a_real_form_gets_415(client, content_type):
    # `curl -d '{...}'` without -H sends the JSON as a form; sam's generated events carry no Content-Type.
    headers = {"content-type": content_type} if content_type else {}
    assert client.post("/predict", content=json.dumps(body("predict")).encode(), headers=headers).status_code == 200
    r = client.post("/predict", content=b"tenure=3&Contract=Month", headers=headers)
    if content_type:
        assert r.status_code == 415 and content_type in r.json()["detail"]
    else:
        assert r.status_code == 400 and r.json()["error"] == "invalid JSON"


def test_docs_and_redoc_are_served_from_the_app_itself(client):
    for page, asset in (("/docs", "/docs/assets/swagger-ui-bundle.js"), ("/redoc", "/docs/assets/redoc.standalone.js")):
        html = client.get(page).text
        assert asset in html and "cdn." not in html and "://" not in html.split("<body>")[-1]
        js = client.get(asset)
        assert js.status_code == 200 and len(js.content) > 500_000
    assert client.get("/docs/assets/swagger-ui.css").status_code == 200


def test_every_answer_the_routes_give_is_documented(client):
    spec = client.get("/openapi.json").json()
    statuses = {f"{m.upper()} {p}": set(op["responses"]) for p, ops in spec["paths"].items() for m, op in ops.items()}
    assert statuses["POST /predict"] == {"200", "400", "413", "415", "422", "503"}
    assert statuses["GET /customers/{customer_id}/score"] == {"200", "404", "422", "503"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["InvalidRequest"]["required"]) == {"error", "problems"}
    assert "HTTPValidationError" not in schemas  # FastAPI's {"detail": [...]} is not what the API sends


def test_nan_value_is_refused(client):
    raw = json.dumps(body("predict")).replace('"tenure": 1', '"tenure": NaN')
    r = client.post("/predict", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_batch_scores_every_customer(client):
    r = client.post("/predict/batch", json=body("predict_batch"))
    assert r.status_code == 200
    preds = r.json()["predictions"]
    assert len(preds) == 3
    single = client.post("/predict", json=body("predict_batch")["customers"][1]).json()
    assert preds[1] == single


def test_empty_and_oversize_batches_get_422(client):
    assert client.post("/predict/batch", json={"customers": []}).status_code == 422
    r = client.post("/predict/batch", json={"customers": [body("predict")] * 6})
    assert r.status_code == 422
    assert "at most 5" in r.json()["problems"][0]["problem"]


def test_body_over_the_limit_gets_413(client):
    r = client.post("/predict/batch", content=b"{" + b" " * 60_000 + b"}", headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert "limit" in r.json()["detail"]


def test_reasons_opt_out(client):
    r = client.post("/predict?reasons=false", json=body("predict"))
    assert r.status_code == 200 and r.json()["reasons"] == []
    # Without reasons there is no driver to name, and the recommendation does not pretend there is none.
    assert "none identified" not in r.json()["recommendation"] and "driver:" not in r.json()["recommendation"]


def test_openapi_shows_the_schema_fields(client, schema):
    spec = client.get("/openapi.json").json()
    props = spec["components"]["schemas"]["Customer"]["properties"]
    assert set(schema.feature_names) <= set(props)
    assert props["Contract"]["enum"] == ["Month-to-month", "One year", "Two year"]


def test_model_endpoint_shows_metrics(client):
    out = client.get("/model").json()
    assert out["version"] == "v-test-1"
    assert 0.5 < out["metrics"]["cv_roc_auc"] <= 1


def test_no_champion_gets_503_not_500(schema):
    def unavailable():
        raise ModelUnavailableError("no champion model has been promoted yet")

    c = TestClient(create_app(OnlineScoring(schema, unavailable)))
    r = c.post("/predict", json=body("predict"))
    assert r.status_code == 503
    assert "no champion" in r.json()["detail"]
    health = c.get("/health")  # not "ok" while every prediction is refused
    assert health.status_code == 503 and health.headers["Retry-After"]
    assert health.json()["status"] == "unavailable" and "no champion" in health.json()["detail"]


def test_customer_routes_without_their_table_answer_503_naming_it(client):
    """A deployment without a score or feature table: the /customers routes say which one is missing."""
    score = client.get("/customers/C-1/score")
    assert score.status_code == 503
    assert score.json() == {"error": "customer scores unavailable", "detail": "this deployment has no score table"}
    features = client.post("/customers/C-1/predict")
    assert features.status_code == 503
    assert features.json() == {
        "error": "customer features unavailable",
        "detail": "this deployment has no feature table",
    }
