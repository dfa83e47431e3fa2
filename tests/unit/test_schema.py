import pytest

from churnguard.domain.errors import SchemaError
from churnguard.domain.schema import Schema

TELCO_COLUMNS = [
    "gender",
    "SeniorCitizen",
    "Partner",
    "Dependents",
    "tenure",
    "PhoneService",
    "MultipleLines",
    "InternetService",
    "OnlineSecurity",
    "OnlineBackup",
    "DeviceProtection",
    "TechSupport",
    "StreamingTV",
    "StreamingMovies",
    "Contract",
    "PaperlessBilling",
    "PaymentMethod",
    "MonthlyCharges",
    "TotalCharges",
]


def test_default_schema_describes_the_telco_columns(schema):
    assert schema.id_column == "customerID"
    assert (schema.target, schema.positive_label) == ("Churn", "Yes")
    assert schema.feature_names == TELCO_COLUMNS
    assert schema.feature("TotalCharges").nullable
    assert schema.feature("Contract").categories == ("Month-to-month", "One year", "Two year")


def test_yaml_round_trip_keeps_the_hash(schema):
    again = Schema.from_yaml(schema.dump_yaml())
    assert again == schema
    assert again.sha256 == schema.sha256


def test_hash_changes_when_the_contract_changes(schema):
    d = schema.to_dict()
    d["features"][0]["values"] = ["Female", "Male", "Other"]
    assert Schema.from_dict(d).sha256 != schema.sha256


def test_validate_reports_column_value_and_count(schema):
    from tests.conftest import synth_frame

    df = synth_frame(200)
    df.loc[0:2, "tenure"] = "abc"
    df.loc[5, "Contract"] = "Monthly"
    df.loc[6, "MonthlyCharges"] = "-5"
    df.loc[7, "gender"] = ""
    report = schema.validate_frame(df)
    assert not report.ok
    problems = {(p.column, p.problem, p.value): p.count for p in report.problems}
    assert problems[("tenure", "not a number", "abc")] == 3
    assert any(c == "Contract" and v == "Monthly" for c, _, v in problems)
    assert problems[("MonthlyCharges", "must be >= 0", "-5")] == 1
    assert problems[("gender", "missing value not allowed", "")] == 1
    assert report.bad_rows == 6


def test_validate_names_missing_columns(schema):
    from tests.conftest import synth_frame

    report = schema.validate_frame(synth_frame(20).drop(columns=["Churn", "tenure"]))
    assert set(report.missing_columns) == {"Churn", "tenure"}
    assert not report.ok


def test_blank_total_charges_is_allowed_missing(schema):
    from tests.conftest import synth_frame

    df = synth_frame(50)
    df.loc[0, "TotalCharges"] = " "
    assert schema.validate_frame(df).ok


def test_malformed_schema_is_refused():
    with pytest.raises(SchemaError):
        Schema.from_yaml("name: x\ntarget: {column: y, positive: '1'}\nfeatures: [{name: a, type: text}]\n")
    with pytest.raises(SchemaError, match="more than once"):
        Schema.from_yaml(
            "target: {column: y, positive: '1'}\nfeatures: [{name: a, type: numeric}, {name: a, type: numeric}]\n"
        )
