"""Broken JSON sent by `curl -d` (Content-Type application/x-www-form-urlencoded) or with no Content-Type
is answered as broken JSON (400 naming the position), the same answer a JSON Content-Type gets; a real
form body sent as a form stays a wrong content type (415). The app as build_app composes it, under moto
with a promoted champion, through FastAPI's test client."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from tests.conftest import load_event

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def client(services, champion):
    from churnguard.entrypoints.api import build_app

    return TestClient(build_app(services))


def _post(client, path, body: bytes, content_type: str | None):
    return client.post(path, content=body, headers={"content-type": content_type} if content_type else {})


@pytest.mark.parametrize(
    ("path", "broken"),
    [
        ("/predict", b'{"tenure": 1,'),  # curl -d '{"tenure": 1,' URL
        ("/predict", b'\n  {"tenure": 1, "gender": }'),
        ("/predict/batch", b'{"customers": [{"tenure": 1}'),
        ("/predict", b"[1, 2,]"),
    ],
)
@pytest.mark.parametrize("content_type", [FORM, f"{FORM}; charset=utf-8", None])
def test_broken_json_sent_as_a_form_or_untyped_gets_the_json_400(client, path, broken, content_type):
    as_json = _post(client, path, broken, "application/json")
    got = _post(client, path, broken, content_type)

    assert as_json.status_code == 400
    assert got.status_code == 400, got.text
    assert got.json() == as_json.json()
    assert got.json()["error"] == "invalid JSON" and "(character " in got.json()["detail"]


def test_valid_json_sent_as_a_form_is_still_scored(client, champion):
    got = _post(client, "/predict", json.dumps(json.loads(load_event("predict")["body"])).encode(), FORM)
    assert got.status_code == 200, got.text
    assert got.json()["model_version"] == champion


@pytest.mark.parametrize("form", [b"a=1&b=2", b"tenure=3&Contract=Month-to-month", b"  a={"])
def test_a_real_form_sent_as_a_form_keeps_its_415(client, form):
    got = _post(client, "/predict", form, FORM)
    assert got.status_code == 415, got.text
    assert got.json()["error"] == "unsupported media type" and FORM in got.json()["detail"]
