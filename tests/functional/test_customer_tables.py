"""The score store and the feature store share one customer-keyed table (adapters/customer_table.py):
the same key, a clear id never stored, the same refusal of a missing hash key, errors naming what the
table holds. moto in process with the template's tables."""

from __future__ import annotations

import json

import boto3
import pytest

from churnguard.adapters.feature_store import DynamoFeatureStore
from churnguard.adapters.score_store import DynamoScoreStore
from churnguard.domain.errors import StorageError
from churnguard.domain.identity import customer_key

SECRET = b"k" * 32


@pytest.fixture
def stores(aws):
    ddb = boto3.client("dynamodb")
    scores = DynamoScoreStore(aws["SCORES_TABLE"], ddb, SECRET)
    return ddb, scores, DynamoFeatureStore(aws["FEATURES_TABLE"], ddb, SECRET)


def test_both_write_under_the_keyed_hash_and_read_back(stores):
    ddb, scores, features = stores
    assert scores.put_many([("C-1", 0.25, False, "low", "")], job_id="j1", scored_at="t", model_version="v1") == 1
    assert features.put_many([("C-1", {"sessions_30d": 4.0})], as_of="t", definition_sha256="ab") == 1
    key = customer_key("C-1", SECRET)
    assert scores.key_of("C-1") == features.key_of("C-1") == key
    for store in (scores, features):
        items = ddb.scan(TableName=store.table)["Items"]
        assert [i["customer_key"]["S"] for i in items] == [key]
        assert "C-1" not in json.dumps(items)  # the clear id is never stored
    assert scores.get("C-1")["churn_probability"] == 0.25 and scores.get("C-2") is None
    assert features.get("C-1")["features"] == {"sessions_30d": 4.0} and features.get("C-2") is None


@pytest.mark.parametrize("store", [DynamoScoreStore, DynamoFeatureStore])
def test_a_missing_hash_key_is_refused(store):
    with pytest.raises(ValueError, match="hash key is required"):
        store("table", boto3.client("dynamodb", region_name="us-east-1"), b"")


def test_a_table_that_does_not_answer_is_a_storage_error_naming_what_it_holds(aws):
    ddb = boto3.client("dynamodb")
    with pytest.raises(StorageError, match="cannot read customer scores from no-such-table"):
        DynamoScoreStore("no-such-table", ddb, SECRET).get("C-1")
    with pytest.raises(StorageError, match="cannot read customer features from no-such-table"):
        DynamoFeatureStore("no-such-table", ddb, SECRET).get("C-1")
