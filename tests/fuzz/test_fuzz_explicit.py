"""Explicit hostile input: each answer is a 4xx naming the problem, never a 5xx."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import load_event
from tests.functional.test_security_degradation import register

GOOD = json.loads(load_event("predict")["body"])


@pytest.fixture
def client(aws, services, trained, monkeypatch):
    from churnguard.entrypoints.api import build_app
    from churnguard.settings import Settings

    register(services, trained, "v1", promote=True)
    services.settings = Settings.from_env({**aws, "MAX_BODY_BYTES": "20000", "MAX_BATCH_SIZE": "10"})
    return TestClient(build_app(services))


def raw(client, text: str, path="/predict"):
    return client.post(path, content=text.encode(), headers={"content-type": "application/json"})


def with_field(field: str, token: str) -> str:
    """GOOD as JSON text with one value replaced by a raw JSON token (NaN, Infinity, 1e999...)."""
    body = dict(GOOD)
    body[field] = "__X__"
    return json.dumps(body).replace('"__X__"', token)


def problems(r) -> dict[str, str]:
    return {p["field"]: p["problem"] for p in r.json()["problems"]}


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 400])
def test_non_finite_and_huge_numbers_are_named(client, token):
    r = raw(client, with_field("MonthlyCharges", token))
    assert r.status_code == 422, r.text
    assert "MonthlyCharges" in problems(r)


@pytest.mark.parametrize(
    "field, value",
    [
        ("tenure", 10**30),
        ("tenure", -1),
        ("tenure", 2.5),
        ("MonthlyCharges", [1, 2]),
        ("MonthlyCharges", {"x": 1}),
        ("MonthlyCharges", True),
        ("Contract", 7),
        ("Contract", "Ｍonth-to-month"),
        ("Contract", "Month-to-month\u0000"),
        ("gender", "👩‍💻"),
        ("PaymentMethod", "e" * 10_000),
        ("customerID", "x" * 500),
    ],
)
def test_wrong_types_values_and_unicode_are_named(client, field, value):
    r = client.post("/predict", json={**GOOD, field: value})
    assert r.status_code == 422, r.text
    named = problems(r)
    assert field in named and named[field]
    echoed = next(p["value"] for p in r.json()["problems"] if p["field"] == field)
    assert echoed is None or len(str(echoed)) <= 203  # long input is not echoed back whole


def test_missing_and_extra_fields_are_each_named(client):
    body = {k: v for k, v in GOOD.items() if k not in ("tenure", "Contract")}
    body.update({"favourite_colour": "blue", "__proto__": {}})
    r = client.post("/predict", json=body)
    assert r.status_code == 422
    named = problems(r)
    assert {"tenure", "Contract", "favourite_colour", "__proto__"} <= set(named)
    assert "required" in named["tenure"].lower() and "extra" in named["favourite_colour"].lower()


@pytest.mark.parametrize(
    "text", ["", "null", "[]", '"a string"', "42", "{", '{"tenure": }', "\ufeff{}", "[" * 5000 + "]" * 5000]
)
def test_bodies_that_are_not_one_json_object(client, text):
    r = raw(client, text)
    assert 400 <= r.status_code < 500, r.text
    body = r.json()
    assert body["error"] and (body.get("problems") or body.get("detail"))


def test_body_over_the_size_limit_is_413_naming_the_limit(client):
    big = json.dumps({**GOOD, "customerID": "x" * 30_000})
    r = raw(client, big)
    assert r.status_code == 413
    assert "20000" in r.json()["detail"]


def test_batch_over_the_limit_and_empty_batch(client):
    r = client.post("/predict/batch", json={"customers": [GOOD] * 11})
    assert r.status_code == 422 and "customers" in problems(r)
    r = client.post("/predict/batch", json={"customers": []})
    assert r.status_code == 422 and "customers" in problems(r)
    r = client.post("/predict/batch", json={"customers": [GOOD, {**GOOD, "tenure": "lots"}]})
    assert r.status_code == 422 and "customers.1.tenure" in problems(r)


def test_query_parameter_of_the_wrong_type(client):
    r = client.post("/predict?reasons=perhaps", json=GOOD)
    assert r.status_code == 422 and "query.reasons" in problems(r)


def test_feedback_with_hostile_values(client):
    for body in (
        {"customer_id": "", "churned": "yes", "observed_date": "2026-01-01"},
        {"customer_id": "c1", "churned": "maybe", "observed_date": "2026-01-01"},
        {"customer_id": "c1", "churned": "yes", "observed_date": "2026-13-45"},
        {"customer_id": ["c1"], "churned": NotImplemented and "yes", "observed_date": "2026-01-01"},
    ):
        r = client.post("/feedback", json=body)
        assert r.status_code == 422, r.text
        assert r.json()["problems"]


def test_the_well_formed_request_still_scores(client):
    r = client.post("/predict", json=GOOD)
    assert r.status_code == 200 and r.json()["fallback"] is False


@pytest.mark.parametrize("path", ["/predict", "/predict/batch", "/feedback"])
def test_every_body_route_names_json_syntax_errors_and_wrong_content_types(client, path):
    r = raw(client, '{"customers": [}', path)
    assert r.status_code == 400
    assert r.json()["detail"].startswith("the body is not valid JSON: Expecting value at line 1, column 16")
    r = client.post(path, content=b"customer_id=c1", headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    assert r.json() == {
        "error": "unsupported media type",
        "detail": "the body was sent as application/x-www-form-urlencoded: "
        "send JSON with Content-Type: application/json",
    }


def test_feedback_answers_201_then_200_for_the_same_outcome_then_409_for_the_opposite(client):
    sent = {"customer_id": "C-77", "churned": "yes", "observed_date": "2026-01-02"}
    first, again = client.post("/feedback", json=sent), client.post("/feedback", json=sent)
    assert (first.status_code, first.json()["stored"]) == (201, True)
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    r = client.post("/feedback", json={**sent, "churned": "no"})
    assert r.status_code == 409 and r.json()["error"] == "conflicting outcome"


@pytest.mark.parametrize("date", ["20260102", "2026-W01-5", " 2026-01-02x", "٢٠٢٦-٠١-٠٢"])
def test_feedback_dates_are_exactly_the_documented_form(client, date):
    r = client.post("/feedback", json={"customer_id": "C-78", "churned": "no", "observed_date": date})
    assert r.status_code == 422 and "YYYY-MM-DD" in problems(r)["observed_date"]
