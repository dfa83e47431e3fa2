"""DynamoDB item conversion shared by the adapters that store JSON-like records (registry, jobs).

item = to_item({"pk": "JOB#1", "rows": 10, "auc": 0.85})   # {"pk": {"S": ...}, "rows": {"N": "10"}, ...}
record = from_item(item)                                    # numbers back as int or float
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_ser = TypeSerializer()
_de = TypeDeserializer()


def to_item(d: dict[str, Any]) -> dict[str, Any]:
    """A record as a DynamoDB item: numbers become Decimals; NaN is not storable, so it becomes null."""
    clean = json.loads(json.dumps(d, default=str).replace("NaN", "null"), parse_float=Decimal)
    return {k: _ser.serialize(v) for k, v in clean.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as a plain record (whole numbers as int, others as float, sets as sorted lists)."""
    return json.loads(json.dumps({k: _de.deserialize(v) for k, v in item.items()}, default=_plain))


def _plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, set):
        return sorted(v)
    raise TypeError(type(v))
