import math

import numpy as np
import pytest

from churnguard.domain.errors import RecordValidationError
from churnguard.domain.features import FeatureEncoder
from tests.conftest import synth_frame, telco_row


@pytest.fixture(scope="module")
def encoder(schema):
    return FeatureEncoder(schema)


def test_a_csv_row_encodes_like_the_frame(encoder, schema):
    df = synth_frame(30)
    X = encoder.encode_frame(df)
    for i in range(30):
        row = encoder.encode_record(df.iloc[i].to_dict())
        np.testing.assert_array_equal(np.isnan(row), np.isnan(X[i]))
        np.testing.assert_allclose(np.nan_to_num(row), np.nan_to_num(X[i]))


def test_categoricals_become_schema_codes(encoder, schema):
    row = encoder.encode_record(telco_row(0))
    j = encoder.names.index("Contract")
    assert schema.feature("Contract").categories[int(row[j])] == telco_row(0)["Contract"]
    assert encoder.decode(j, row[j]) == telco_row(0)["Contract"]


def test_every_bad_field_is_named_with_value_and_allowed(encoder):
    record = dict(telco_row(0), Contract="Weekly", tenure="soon", MonthlyCharges=-3, gender=None)
    with pytest.raises(RecordValidationError) as info:
        encoder.encode_record(record)
    by_field = {p["field"]: p for p in info.value.problems}
    assert set(by_field) == {"Contract", "tenure", "MonthlyCharges", "gender"}
    assert by_field["Contract"]["value"] == "Weekly"
    assert "Month-to-month" in by_field["Contract"]["allowed"]
    assert by_field["tenure"]["problem"] == "is not a number"
    assert by_field["MonthlyCharges"]["problem"] == "must be >= 0"
    assert by_field["gender"]["problem"] == "is required"


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True, [1], {"a": 1}, 1e308 * 10])
def test_non_numbers_are_refused(encoder, bad):
    with pytest.raises(RecordValidationError):
        encoder.encode_record(dict(telco_row(0), tenure=bad))


def test_nullable_missing_becomes_nan(encoder):
    row = encoder.encode_record(dict(telco_row(0), TotalCharges=" "))
    assert math.isnan(row[encoder.names.index("TotalCharges")])
