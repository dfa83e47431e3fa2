"""Prediction log records: the agreed shape, no raw ids, JSON lines that survive concatenation."""

import json
import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from churnguard.domain.identity import customer_key
from churnguard.domain.prediction_log import parse_jsonl, parse_ts, partition_prefix, prediction_record, to_jsonl

PRED = {"churn_probability": 0.7312, "will_churn": True, "risk_level": "high", "model_version": "v1"}


def test_record_has_the_agreed_fields_and_only_schema_features(schema):
    row = {
        "customerID": "7590-VHVEG",
        "tenure": 2,
        "TotalCharges": float("nan"),
        "Churn": "Yes",
        "Contract": "Month-to-month",
    }
    key = customer_key("7590-VHVEG", b"k")
    ts = datetime(2026, 5, 1, 23, 59, 59, tzinfo=UTC)
    rec = prediction_record(
        features=row,
        prediction=PRED,
        variant="canary",
        customer_key=key,
        request_id="r1",
        feature_names=schema.feature_names,
        ts=ts,
    )
    assert set(rec) >= {
        "ts",
        "model_version",
        "variant",
        "customer_key",
        "features",
        "churn_probability",
        "will_churn",
        "request_id",
    }
    assert rec["ts"] == "2026-05-01T23:59:59.000000Z" and parse_ts(rec["ts"]) == ts
    assert set(rec["features"]) == set(schema.feature_names)
    assert rec["features"]["tenure"] == 2 and rec["features"]["TotalCharges"] is None
    assert rec["features"]["gender"] is None  # absent column: null, never invented
    assert "7590-VHVEG" not in json.dumps(rec)
    assert rec["customer_key"] == key and rec["variant"] == "canary" and rec["will_churn"] is True


@pytest.mark.parametrize("kw", [{"variant": "blue"}, {"source": "stream"}])
def test_unknown_variant_or_source_is_refused(kw):
    args = dict(features={}, prediction=PRED, variant="champion", customer_key=None, request_id="r")
    with pytest.raises(ValueError):
        prediction_record(**{**args, **kw})


def test_naive_timestamps_are_refused():
    with pytest.raises(ValueError, match="timezone"):
        prediction_record(
            features={}, prediction=PRED, variant="champion", customer_key=None, request_id="r", ts=datetime(2026, 1, 1)
        )


def test_jsonl_batches_concatenate_into_valid_jsonl():
    recs = [
        prediction_record(features={"x": i}, prediction=PRED, variant="champion", customer_key=None, request_id=str(i))
        for i in range(3)
    ]
    blob = to_jsonl(recs[:2]) + to_jsonl(recs[2:])
    assert blob.endswith(b"\n") and blob.count(b"\n") == 3
    assert [r["request_id"] for r in parse_jsonl(blob)] == ["0", "1", "2"]
    with pytest.raises(ValueError, match="line 2"):
        parse_jsonl(b'{"a":1}\n{broken\n')


def test_partition_is_the_utc_day():
    assert partition_prefix(date(2026, 5, 1)) == "predictions/dt=2026-05-01/"
    late = datetime(2026, 5, 1, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    assert partition_prefix(late) == "predictions/dt=2026-05-02/"
    assert not math.isnan(
        prediction_record(features={}, prediction=PRED, variant="shadow", customer_key=None, request_id="r")[
            "churn_probability"
        ]
    )
