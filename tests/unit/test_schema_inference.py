"""Schema inference on generated frames: each case the issue names, and the pooled level end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnguard.domain.errors import SchemaError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.schema import CategoricalFeature, NumericFeature, Schema
from churnguard.domain.schema_inference import OTHER_LEVEL, id_like_name, infer_schema
from tests.conftest import TELCO_CSV

N = 2000


def bank_frame(n: int = N, seed: int = 0) -> pd.DataFrame:
    """A bank-churn-like frame of raw strings: row number, customer number, surname, a 51-value region,
    a unique float salary, 0/1 flags, small codes and a yes/no target."""
    rng = np.random.default_rng(seed)
    regions = [f"Region {i:02d}" for i in range(51)]
    return pd.DataFrame(
        {
            "RowNumber": [str(i + 1) for i in rng.permutation(n)],
            "CustomerId": [str(v) for v in rng.choice(np.arange(15_000_000, 16_000_000), n, replace=False)],
            "Surname": [f"Name{v}" for v in rng.integers(0, n * 2, n)],
            "Region": rng.choice(regions, n),
            "EstimatedSalary": [f"{v:.2f}" for v in rng.uniform(10_000, 200_000, n)],
            "HasCrCard": rng.choice(["0", "1"], n),
            "NumOfProducts": rng.choice(["1", "2", "3", "4"], n),
            "Tenure": [str(v) for v in rng.integers(0, 60, n)],
            "Exited": rng.choice(["0", "1"], n, p=[0.8, 0.2]),
        }
    )


def decisions(inference) -> dict[str, tuple[str, str]]:
    return {c.column: (c.role, c.kind) for c in inference.columns}


def test_integer_identifiers_are_found_and_a_float_is_never_one_for_uniqueness():
    inf = infer_schema(bank_frame(), target="Exited")
    d = decisions(inf)
    assert inf.schema.id_column == "CustomerId"  # the name says so: preferred over the row numbers
    assert d["RowNumber"] == ("left out", "identifier")
    assert "row numbers" in next(c.reason for c in inf.columns if c.column == "RowNumber")
    assert d["EstimatedSalary"] == ("feature", "numeric")
    salary = inf.schema.feature("EstimatedSalary")
    assert isinstance(salary, NumericFeature) and not salary.integer
    assert "CustomerId" not in inf.schema.feature_names and "RowNumber" not in inf.schema.feature_names


def test_an_unnamed_integer_column_unique_in_every_row_is_an_identifier():
    df = bank_frame().drop(columns=["CustomerId", "RowNumber"])
    df["account"] = [str(v) for v in np.random.default_rng(1).choice(10**9, N, replace=False)]
    inf = infer_schema(df, target="Exited")
    assert inf.schema.id_column == "account"
    assert "customer number" in next(c.reason for c in inf.columns if c.column == "account")


def test_a_column_named_like_an_id_with_few_values_is_a_category_not_an_identifier():
    df = bank_frame()
    df["PlanID"] = np.random.default_rng(2).choice(["P1", "P2", "P3", "P4", "P5"], N)
    inf = infer_schema(df, target="Exited")
    assert decisions(inf)["PlanID"] == ("feature", "categorical")


@pytest.mark.parametrize(
    ("name", "is_id"),
    [
        ("customerID", True),
        ("customer_id", True),
        ("Id", True),
        ("RowNumber", True),
        ("Unnamed: 0", True),
        ("user-uuid", True),
        ("paid", False),
        ("valid", False),
        ("Surname", False),
        ("Idle minutes", False),
    ],
)
def test_identifier_names(name, is_id):
    assert id_like_name(name) is is_id


def test_a_51_value_categorical_is_kept_and_names_are_left_out():
    inf = infer_schema(bank_frame(), target="Exited")
    region = inf.schema.feature("Region")
    assert isinstance(region, CategoricalFeature) and len(region.categories) == 51 and region.other is None
    d = decisions(inf)
    assert d["Surname"][0] == "left out"  # ~1,600 distinct surnames in 2,000 rows: not a category


def test_rare_levels_are_pooled_into_a_level_that_also_takes_unseen_values():
    rng = np.random.default_rng(3)
    df = bank_frame()
    common = [f"City {i}" for i in range(120)]
    df["City"] = rng.choice(common, N)
    df.loc[:9, "City"] = [f"Hamlet {i}" for i in range(10)]  # seen once each
    inf = infer_schema(df, target="Exited")
    city = inf.schema.feature("City")
    assert isinstance(city, CategoricalFeature)
    assert city.other == OTHER_LEVEL and city.categories[-1] == OTHER_LEVEL
    assert not any(c.startswith("Hamlet") for c in city.categories)
    reason = next(c.reason for c in inf.columns if c.column == "City")
    assert "pooled" in reason and "never seen" in reason
    # The training data validates, and rare, unseen and pooled values all get the pooled code.
    assert inf.schema.validate_frame(df).ok
    enc = FeatureEncoder(inf.schema)
    j = inf.schema.feature_names.index("City")
    X = enc.encode_frame(df)
    assert set(X[:10, j]) == {city.other_code}
    record = {k: v for k, v in df.iloc[20].to_dict().items()}
    for value in ("Hamlet 3", "Atlantis", OTHER_LEVEL):
        assert enc.encode_record({**record, "City": value})[j] == city.other_code
    assert enc.encode_record({**record, "City": common[5]})[j] == city.codes[common[5]]
    # The contract survives YAML: the pooled level is written once, as `other`.
    again = Schema.from_yaml(inf.schema.dump_yaml())
    assert again == inf.schema
    assert OTHER_LEVEL not in again.to_dict()["features"][[f.name for f in again.features].index("City")]["values"]


def test_binary_and_small_coded_integers_are_recognised():
    inf = infer_schema(bank_frame(), target="Exited")
    d = decisions(inf)
    assert d["HasCrCard"] == ("feature", "binary")
    assert d["NumOfProducts"] == ("feature", "coded")
    products = inf.schema.feature("NumOfProducts")
    assert isinstance(products, NumericFeature)
    assert (products.minimum, products.maximum, products.integer) == (0.0, None, True)
    flag = inf.schema.feature("HasCrCard")
    assert isinstance(flag, NumericFeature) and (flag.minimum, flag.maximum, flag.integer) == (0.0, 1.0, True)
    assert d["Tenure"] == ("feature", "numeric")


def test_a_numeric_column_with_a_stray_text_value_stays_numeric_and_the_cell_is_reported():
    df = bank_frame()
    df.loc[7, "Tenure"] = "twelve"
    inf = infer_schema(df, target="Exited")
    tenure = next(c for c in inf.columns if c.column == "Tenure")
    assert (tenure.role, tenure.kind) == ("feature", "numeric")
    assert tenure.invalid == [{"value": "twelve", "count": 1}]
    assert any("Tenure" in w and "twelve" in w for w in inf.warnings)
    report = inf.schema.validate_frame(df)
    assert [(p.column, p.value) for p in report.problems] == [("Tenure", "twelve")]


def test_a_mostly_text_column_is_not_forced_to_be_numeric():
    df = bank_frame()
    df["Plan"] = np.random.default_rng(4).choice(["basic", "pro", "team", "1", "2"], N)
    inf = infer_schema(df, target="Exited")
    assert decisions(inf)["Plan"] == ("feature", "categorical")


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["0", "1"], "1"),
        (["False", "True"], "True"),
        (["no", "yes"], "yes"),
        (["active", "churned"], "churned"),
        (["stayed", "gone"], "gone"),  # no known word: the rarer class
    ],
)
def test_the_positive_label_is_inferred_and_stated(labels, expected):
    df = bank_frame(400)
    rng = np.random.default_rng(5)
    rare = expected if expected in labels else labels[1]
    common = labels[0] if labels[0] != rare else labels[1]
    df["Exited"] = np.where(rng.random(len(df)) < 0.2, rare, common)
    inf = infer_schema(df, target="Exited")
    assert inf.schema.positive_label == expected
    target = next(c for c in inf.columns if c.column == "Exited")
    assert target.role == "target" and repr(expected) in target.reason and "%" in target.reason


def test_a_target_with_three_labels_is_refused_with_the_fix():
    df = bank_frame(300)
    df.loc[:5, "Exited"] = "maybe"
    with pytest.raises(SchemaError, match="not two"):
        infer_schema(df, target="Exited")


def test_constant_and_empty_columns_are_left_out_with_the_reason():
    df = bank_frame(300)
    df["Country"] = "France"
    df["Notes"] = ""
    d = {c.column: c for c in infer_schema(df, target="Exited").columns}
    assert d["Country"].role == "left out" and "constant" in d["Country"].reason
    assert d["Notes"].role == "left out" and "empty" in d["Notes"].reason


def test_every_column_has_a_role_and_a_reason_in_the_table_and_the_json():
    df = bank_frame()
    inf = infer_schema(df, target="Exited")
    assert [c.column for c in inf.columns] == list(df.columns)
    assert all(c.reason for c in inf.columns)
    table = inf.table().splitlines()
    assert table[0].split()[:3] == ["column", "role", "kept"]
    assert len(table) == 1 + len(df.columns)
    out = inf.to_dict()
    assert {c["column"] for c in out["columns"]} == set(df.columns)
    assert Schema.from_dict(out["schema"]) == inf.schema


def test_headers_with_spaces_and_coded_categories():
    """The Iranian churn CSV's shape: double spaces in names, all numeric, coded categories, 0/1 target."""
    rng = np.random.default_rng(6)
    n = 600
    df = pd.DataFrame(
        {
            "Call  Failure": [str(v) for v in rng.integers(0, 30, n)],
            "Tariff Plan": rng.choice(["1", "2"], n),
            "Age Group": rng.choice(["1", "2", "3", "4", "5"], n),
            "Customer Value": [f"{v:.3f}" for v in rng.uniform(0, 2000, n)],
            "Churn": rng.choice(["0", "1"], n, p=[0.85, 0.15]),
        }
    )
    inf = infer_schema(df, target="Churn")
    assert inf.schema.feature_names == ["Call  Failure", "Tariff Plan", "Age Group", "Customer Value"]
    assert inf.schema.positive_label == "1" and inf.schema.id_column is None
    assert inf.schema.validate_frame(df).ok


@pytest.mark.skipif(not TELCO_CSV.exists(), reason="the Telco CSV lives beside the repository")
def test_on_the_telco_csv_inference_agrees_with_the_hand_written_schema(schema):
    from churnguard.domain.training import read_csv

    inferred = infer_schema(read_csv(TELCO_CSV), target="Churn").schema
    assert inferred.id_column == schema.id_column and inferred.feature_names == schema.feature_names
    assert inferred.positive_label == "Yes"
    for f in schema.features:
        g = inferred.feature(f.name)
        assert type(g) is type(f), f.name
        if isinstance(f, CategoricalFeature):
            assert g.categories == f.categories


def test_pooled_levels_are_encoded_alike_in_training_the_api_and_batch():
    """A value the training data never had (or had too rarely) scores as the pooled level everywhere."""
    from fastapi.testclient import TestClient

    from churnguard.domain.batch import BatchOptions, BatchScorer
    from churnguard.domain.predictor import Predictor
    from churnguard.domain.training import TrainingConfig, train
    from churnguard.entrypoints.api import create_app
    from churnguard.services.lifecycle import build_bundle
    from churnguard.services.online_scoring import OnlineScoring
    from tests.conftest import FAST

    rng = np.random.default_rng(8)
    df = bank_frame(1500, seed=8)
    df["City"] = rng.choice([f"City {i}" for i in range(30)], len(df))
    df.loc[:5, "City"] = [f"Hamlet {i}" for i in range(6)]
    schema = infer_schema(df, target="Exited").schema
    assert schema.feature("City").other == OTHER_LEVEL
    predictor = Predictor(
        build_bundle("v-pool", train(df, schema, TrainingConfig.from_dict(FAST)), schema, "0" * 64, "synthetic")
    )
    client = TestClient(create_app(OnlineScoring(schema, lambda: predictor)))
    row = {k: v for k, v in df.iloc[40].to_dict().items() if k in [schema.id_column, *schema.feature_names]}
    answers = {}
    for city in ("Atlantis", "Hamlet 2", OTHER_LEVEL, "City 3"):
        r = client.post("/predict", json={**row, "City": city})
        assert r.status_code == 200, r.text
        answers[city] = r.json()["churn_probability"]
    assert answers["Atlantis"] == answers["Hamlet 2"] == answers[OTHER_LEVEL]
    docs = client.get("/openapi.json").json()["components"]["schemas"]["Customer"]["properties"]["City"]
    assert "any other value" in docs["description"]

    batch = pd.DataFrame([{**row, "City": c} for c in ("Atlantis", "Hamlet 2", OTHER_LEVEL, "City 3")])
    scorer = BatchScorer(predictor, num_threads=1)
    result = scorer.score_csv(batch.to_csv(index=False).encode(), BatchOptions(reasons="none"))
    scorer.close()
    assert result.rejected == 0
    assert np.round(result.probability, 4).tolist() == [
        answers[c] for c in ("Atlantis", "Hamlet 2", OTHER_LEVEL, "City 3")
    ]


def test_a_small_frame_with_text_id_blanks_and_a_yes_no_target():
    df = pd.DataFrame(
        {
            "account": [f"A{i:04d}" for i in range(100)],
            "plan": ["basic", "pro"] * 50,
            "seats": [str(i % 7) for i in range(100)],
            "spend": [f"{i * 1.5:.2f}" if i % 10 else "" for i in range(100)],
            "churned": ["yes", "no", "no", "no"] * 25,
        }
    )
    inf = infer_schema(df, target="churned")
    schema = inf.schema
    assert inf.warnings == []
    assert schema.id_column == "account"
    assert schema.positive_label == "yes"
    assert isinstance(schema.feature("plan"), CategoricalFeature)
    seats = schema.feature("seats")
    assert isinstance(seats, NumericFeature) and seats.integer
    assert schema.feature("spend").nullable
    assert schema.validate_frame(df).ok


def test_unknown_target_or_id_column_is_named():
    with pytest.raises(SchemaError, match="not in the data"):
        infer_schema(pd.DataFrame({"a": ["1"]}), target="Churn")
    with pytest.raises(SchemaError, match="id column 'key' is not in the data"):
        infer_schema(bank_frame(100), target="Exited", id_column="key")
