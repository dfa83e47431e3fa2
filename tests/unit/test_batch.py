"""Batch scoring domain: vectorised validation, scores equal to the online path, reasons, counts, line ranges."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from churnguard.domain.batch import (
    MAX_RECORD_BYTES,
    BatchOptions,
    BatchScorer,
    chunk_records,
    plan_chunks,
    summarize,
)
from churnguard.domain.errors import DataValidationError
from tests.conftest import synth_csv_bytes, synth_frame


@pytest.fixture(scope="module")
def scorer(trained):
    from churnguard.domain.predictor import Predictor

    bundle = trained[0]
    return BatchScorer(Predictor(bundle), num_threads=1)


def _rows(csv_bytes: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(csv_bytes.decode())))


def test_scores_equal_the_online_predictor_row_by_row(scorer, predictor):
    data = synth_csv_bytes(300, seed=11)
    result = scorer.score_csv(data, BatchOptions(reasons="none"))
    assert (result.rows_in, result.scored, result.rejected) == (300, 300, 0)
    frame = synth_frame(300, seed=11)
    for i in (0, 17, 299):
        online = predictor.predict_record(frame.iloc[i].to_dict(), reasons=False)
        assert result.ids[i] == frame.iloc[i]["customerID"]
        assert result.probability[i] == pytest.approx(online["churn_probability"], abs=5e-5)
        assert bool(result.will_churn[i]) == online["will_churn"]
        assert result.risk_level[i] == online["risk_level"]


def test_path_attributions_add_up_to_the_raw_score(scorer):
    frame = synth_frame(200, seed=5)
    X = scorer.encoder.encode_frame(frame)
    contrib = scorer.explainer.contributions(X)
    raw = scorer.booster.predict(X, raw_score=True)
    np.testing.assert_allclose(contrib.sum(axis=1), raw, rtol=1e-9, atol=1e-9)


def test_reasons_only_at_or_above_the_chosen_level_and_in_the_api_shape(scorer):
    data = synth_csv_bytes(400, seed=2)
    result = scorer.score_csv(data, BatchOptions(reasons="medium", top=3))
    has = result.reasons != ""
    assert has.any() and (~has).any()
    assert set(result.risk_level[has]) <= {"medium", "high"}
    assert set(result.risk_level[~has]) == {"low"}
    assert result.counts()["reasons_computed"] == int(has.sum())
    for text in result.reasons[has][:20]:
        reasons = json.loads(text)
        assert 1 <= len(reasons) <= 3
        assert set(reasons[0]) == {"feature", "value", "effect", "contribution"}
        mags = [abs(r["contribution"]) for r in reasons]
        assert mags == sorted(mags, reverse=True)
        for r in reasons:
            assert r["effect"] == ("increases risk" if r["contribution"] > 0 else "decreases risk")


def test_treeshap_reasons_match_the_online_api(scorer, predictor):
    frame = synth_frame(30, seed=9)
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    result = scorer.score_csv(buf.getvalue().encode(), BatchOptions(reasons="all", reason_method="treeshap"))
    for i in range(5):
        online = predictor.predict_record(frame.iloc[i].to_dict())
        assert json.loads(result.reasons[i]) == online["reasons"]


def test_bad_rows_are_rejected_with_reasons_and_good_rows_still_scored(scorer):
    frame = synth_frame(50, seed=4)
    frame.loc[3, "tenure"] = "abc"
    frame.loc[7, "Contract"] = "Weekly"
    frame.loc[7, "MonthlyCharges"] = "-5"
    frame.loc[9, "gender"] = " "
    frame.loc[11, "customerID"] = ""
    frame.loc[13, "TotalCharges"] = " "  # nullable: fine
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    result = scorer.score_csv(buf.getvalue().encode(), BatchOptions())
    assert (result.rows_in, result.scored, result.rejected) == (50, 46, 4)
    errors = {r["row"]: r["reason"] for r in _rows(result.errors_csv())}
    assert errors["4"] == "tenure: 'abc' is not a number"
    assert "Contract: 'Weekly' is not one of" in errors["8"] and "MonthlyCharges: '-5' must be >= 0" in errors["8"]
    assert errors["10"] == "gender: missing value not allowed"
    assert "missing customer id" in errors["12"]
    scored_ids = {r["customerID"] for r in _rows(result.scores_csv())}
    assert frame.loc[13, "customerID"] in scored_ids
    assert frame.loc[3, "customerID"] not in scored_ids
    # rejected rows keep their original values, so they can be fixed and resubmitted
    assert next(r for r in _rows(result.errors_csv()) if r["row"] == "4")["tenure"] == "abc"


def test_unreadable_lines_are_counted_as_rejected(scorer):
    lines = synth_csv_bytes(10, seed=1).decode().splitlines()
    lines[4] = lines[4] + ",extra,fields"
    result = scorer.score_csv(("\n".join(lines) + "\n").encode(), BatchOptions())
    assert (result.rows_in, result.scored, result.rejected) == (10, 9, 1)
    assert "unreadable line" in _rows(result.errors_csv())[0]["reason"]


def test_rows_after_an_unreadable_line_keep_their_numbers_and_every_row_its_values(scorer):
    """Row n of the errors is the n-th row after the header (blank lines are not rows), whatever was
    skipped before it; an unreadable line is reported with its original fields."""
    frame = synth_frame(12, seed=1).drop(columns=["Churn"])
    frame.loc[6, "tenure"] = "abc"  # the 7th row: after the unreadable 5th, and after a blank line
    frame.loc[10, "Contract"] = "Weekly"
    lines = frame.to_csv(index=False, lineterminator="\n").splitlines()
    lines[5] += ",extra,fields"  # row 5 (line 6 of the file): one field too many
    lines.insert(3, "")  # a blank line after row 2: not a row
    result = scorer.score_csv(("\n".join(lines) + "\n").encode(), BatchOptions())
    assert (result.rows_in, result.scored, result.rejected) == (12, 9, 3)
    errors = _rows(result.errors_csv())
    assert [e["row"] for e in errors] == ["5", "7", "11"]
    unreadable, tenure, contract = errors
    assert unreadable["reason"].startswith("unreadable line") and unreadable["customerID"] == frame.loc[4, "customerID"]
    assert unreadable["(extra field 1)"] == "extra" and unreadable["(extra field 2)"] == "fields"
    assert tenure["tenure"] == "abc" and tenure["customerID"] == frame.loc[6, "customerID"]
    assert contract["Contract"] == "Weekly" and contract["customerID"] == frame.loc[10, "customerID"]


def test_wrong_schema_fails_with_the_missing_columns_named(scorer):
    frame = synth_frame(10, seed=1).drop(columns=["tenure", "Contract"])
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    with pytest.raises(DataValidationError, match="missing columns tenure, Contract"):
        scorer.score_csv(buf.getvalue().encode(), BatchOptions())


def test_output_csv_round_trips(scorer):
    result = scorer.score_csv(synth_csv_bytes(100, seed=8), BatchOptions(reasons="all"))
    rows = _rows(result.scores_csv())
    assert len(rows) == 100
    assert list(rows[0]) == ["customerID", "churn_probability", "will_churn", "risk_level", "reasons", "model_version"]
    assert all(json.loads(r["reasons"]) for r in rows)
    assert {r["will_churn"] for r in rows} <= {"true", "false"}
    assert all(0.0 <= float(r["churn_probability"]) <= 1.0 for r in rows)


def test_byte_ranges_cover_every_record_exactly_once():
    text = b"h1,h2\n" + b"".join(f"{i},{'x' * (i % 37)}\n".encode() for i in range(500))
    size = len(text)
    for chunk in (MAX_RECORD_BYTES, 97, 1000):
        seen = []
        for start in range(0, size, chunk):
            part = chunk_records(lambda a, b: text[a : b + 1], start, min(start + chunk, size), size)
            seen.extend(part.decode().splitlines()[1:])  # every part starts with the header
        assert seen == text.decode().splitlines()[1:]


def test_plan_chunks_splits_objects_into_ranges():
    chunks = plan_chunks([("s3://b/a.csv", 200_000), ("s3://b/b.csv", 10)], chunk_bytes=MAX_RECORD_BYTES)
    assert [(c["input"], c["start"], c["end"]) for c in chunks] == [
        ("s3://b/a.csv", 0, 65536),
        ("s3://b/a.csv", 65536, 131072),
        ("s3://b/a.csv", 131072, 196608),
        ("s3://b/a.csv", 196608, 200000),
        ("s3://b/b.csv", 0, 10),
    ]
    assert len({c["chunk_id"] for c in chunks}) == len(chunks)


def test_summary_reconciles_or_refuses():
    chunk = {
        "rows_in": 5,
        "scored": 4,
        "rejected": 1,
        "risk_levels": {"low": 4},
        "model_version": "v1",
        "engine": "leaf-tables",
    }
    ok = summarize([chunk, dict(chunk, engine="lightgbm")])
    assert (ok["rows_in"], ok["scored"], ok["rejected"], ok["risk_levels"]) == (10, 8, 2, {"low": 8})
    assert ok["engines"] == ["leaf-tables", "lightgbm"]
    with pytest.raises(DataValidationError, match="do not reconcile"):
        summarize([{"rows_in": 5, "scored": 3, "rejected": 1}])


def test_options_are_checked():
    with pytest.raises(DataValidationError, match="reasons must be one of"):
        BatchOptions.from_dict({"reasons": "some"})
    with pytest.raises(DataValidationError, match="unknown batch options"):
        BatchOptions.from_dict({"colour": "red"})


def test_a_missing_id_is_rejected_whatever_the_other_ids_are():
    """factorize codes a missing cell as -1; it must not borrow the last distinct id's verdict."""
    import pandas as pd

    from churnguard.domain.batch import validate_encode
    from churnguard.domain.features import FeatureEncoder
    from churnguard.domain.schema import Schema

    schema = Schema.default()
    df = synth_frame(6).drop(columns=["Churn"])
    df = df.astype(object)
    for last_id in ("PLAIN-1", " "):  # the last distinct id plain, then blank
        frame = df.copy()
        frame.loc[2, "customerID"] = pd.NA
        frame.loc[5, "customerID"] = last_id
        _, bad, problems = validate_encode(frame, FeatureEncoder(schema), "customerID")
        assert bad[2] and "customerID: missing customer id" in problems[2]
        assert bad[5] == (last_id.strip() == "")
        assert not bad[[0, 1, 3, 4]].any()
