"""A number sent as text is read the same way online (the API's request model, encode_record) and in batch
scoring (domain/batch/encoding.py): Python's float() reads "1_0" and other scripts' digits ("١٠") as 10
and pydantic reads "1_0", but batch refuses both, so online refuses them too, naming the field."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from churnguard.domain.batch.encoding import validate_encode
from churnguard.domain.errors import RecordValidationError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.schema import is_plain_number_text
from churnguard.entrypoints.api import create_app
from churnguard.services.online_scoring import OnlineScoring
from tests.conftest import load_event

REFUSED = ["1_0", "1_000.5", "١٠", "٣.٥", "１０", "\u00a010"]  # underscores, Arabic-Indic, full-width, NBSP
READ = ["10", " 10 ", "10.0", "+5", "1e1", "10\t"]


@pytest.fixture(scope="module")
def row():
    return json.loads(load_event("predict")["body"])


@pytest.fixture(scope="module")
def client(schema, predictor):
    return TestClient(create_app(OnlineScoring(schema, lambda: predictor)))


def _batch_problems(schema, row, field, texts):
    frame = pd.DataFrame([{**{k: str(v) for k, v in row.items()}, field: t} for t in texts])
    _, bad, problems = validate_encode(frame, FeatureEncoder(schema), schema.id_column)
    return bad, problems


@pytest.mark.parametrize("field", ["MonthlyCharges", "TotalCharges"])
def test_batch_and_encode_record_refuse_the_same_texts_with_the_same_words(schema, row, field):
    bad, problems = _batch_problems(schema, row, field, REFUSED + READ)
    encoder = FeatureEncoder(schema)
    for i, text in enumerate(REFUSED):
        assert bad[i] and problems[i] == [f"{field}: {text.strip()!r} is not a number"]
        with pytest.raises(RecordValidationError) as caught:
            encoder.encode_record({**row, field: text})
        assert [(p["field"], p["value"], p["problem"]) for p in caught.value.problems] == [
            (field, text, "is not a number")
        ]
    for i, text in enumerate(READ, start=len(REFUSED)):
        assert not bad[i]
        assert encoder.encode_record({**row, field: text})[schema.feature_names.index(field)] == float(text)


@pytest.mark.parametrize("text", REFUSED)
@pytest.mark.parametrize("field", ["tenure", "MonthlyCharges"])
def test_the_api_refuses_them_naming_field_and_value(client, row, field, text):
    r = client.post("/predict", json={**row, field: text})
    assert r.status_code == 422, r.text
    (problem,) = r.json()["problems"]
    assert problem["field"] == field and problem["value"] == text
    if "_" in text:  # pydantic alone would have read it: our words, naming the fix
        assert "ASCII digits and no '_'" in problem["problem"]


@pytest.mark.parametrize("text", ["10", " 10 ", "10.0", "+5"])
def test_the_api_still_reads_plain_number_text(client, row, text):
    assert client.post("/predict", json={**row, "tenure": text, "MonthlyCharges": text}).status_code == 200


def test_the_rule():
    assert is_plain_number_text(" -1.5e3 ") and not is_plain_number_text("1_0") and not is_plain_number_text("١")
