"""Turn schema-valid records into the numeric matrix LightGBM reads.

Categoricals become their index in the schema's list of values (LightGBM's native
categorical handling reads those codes); numerics stay floats; missing is NaN.
The lookup tables are built once per encoder, so encoding a request is a handful of
dict look-ups with no pandas involved.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from churnguard.domain.errors import DataValidationError, RecordValidationError
from churnguard.domain.schema import MISSING_STRINGS, CategoricalFeature, NumericFeature, Schema, is_plain_number_text

if TYPE_CHECKING:
    import pandas as pd


class FeatureEncoder:
    """Encodes records of one schema. ``encoder.encode_record({"tenure": 3, ...})``."""

    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.names: list[str] = schema.feature_names
        self.n_features = len(self.names)
        self.categorical_indices: list[int] = [
            i for i, f in enumerate(schema.features) if isinstance(f, CategoricalFeature)
        ]
        # (name, feature, code table or None) per column, in model order.
        self._plan: list[tuple[str, Any, dict[str, int] | None]] = [
            (f.name, f, f.codes if isinstance(f, CategoricalFeature) else None) for f in schema.features
        ]

    # ----- one record (API, CLI) ------------------------------------------------------
    def encode_record(self, record: Mapping[str, Any], out: np.ndarray | None = None) -> np.ndarray:
        """Validate and encode one record; raises RecordValidationError naming every bad field."""
        row = out if out is not None else np.empty(self.n_features, dtype=np.float64)
        problems: list[dict[str, Any]] = []
        for j, (name, feat, codes) in enumerate(self._plan):
            value = record.get(name)
            if _is_missing(value):
                if not feat.nullable:
                    problems.append(_problem(name, value, "is required", feat))
                row[j] = math.nan
                continue
            if codes is not None:
                code = feat.code_of(value.strip() if isinstance(value, str) else str(value))
                if code is None:
                    problems.append(_problem(name, value, "is not an allowed value", feat))
                    row[j] = math.nan
                else:
                    row[j] = code
            else:
                number = _to_float(value)
                problem = "is not a number" if number is None else feat.check(number)
                if problem:
                    problems.append(_problem(name, value, problem, feat))
                    row[j] = math.nan
                else:
                    row[j] = number
        if problems:
            raise RecordValidationError(problems)
        return row

    def encode_valid_record(self, record: Mapping[str, Any], out: np.ndarray) -> np.ndarray:
        """Encode a record that has already been validated (the API's request model did it)."""
        for j, (name, feat, codes) in enumerate(self._plan):
            value = record.get(name)
            if value is None:
                out[j] = math.nan
            elif codes is not None:
                out[j] = feat.code_of(value.strip())
            else:
                out[j] = value
        return out

    # ----- many records (training, batch) ---------------------------------------------
    def encode_frame(self, df: pd.DataFrame) -> np.ndarray:
        """Encode a frame of raw strings that passed ``Schema.validate_frame``."""
        import pandas as pd

        X = np.empty((len(df), self.n_features), dtype=np.float64)
        for j, (name, feat, codes) in enumerate(self._plan):
            s = df[name].astype("string").str.strip()
            s = s.mask(s.str.lower().isin(list(MISSING_STRINGS)))
            if codes is None:
                X[:, j] = pd.to_numeric(s, errors="coerce").astype(float).to_numpy(na_value=np.nan)
            else:
                codes_j = s.map(codes).astype(float)
                if feat.other_code is not None:  # rare and unseen levels: the pooled level
                    codes_j = codes_j.mask(s.notna() & codes_j.isna(), float(feat.other_code))
                X[:, j] = codes_j.to_numpy(na_value=np.nan)
        return X

    def decode(self, j: int, x: float) -> str:
        """The original value of encoded column j, for explanations."""
        if math.isnan(x):
            return "missing"
        codes = self._plan[j][2]
        if codes is not None:
            return self.schema.features[j].categories[int(x)]  # type: ignore[union-attr]
        return f"{x:g}"


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().lower() in MISSING_STRINGS


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        if not is_plain_number_text(value):
            return None  # refused as batch refuses it
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _problem(name: str, value: Any, problem: str, feat: NumericFeature | CategoricalFeature) -> dict[str, Any]:
    shown = value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)
    return {"field": name, "value": shown, "problem": problem, "allowed": feat.describe_allowed()}


def encode_labelled_csv(data: bytes, schema: Schema, encoder: FeatureEncoder) -> tuple[np.ndarray, np.ndarray]:
    """Encode a labelled CSV (raw strings, as training reads it) without pandas; bad rows are named."""
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataValidationError(f"held-out data is not a readable CSV: {e}") from e
    if not rows:
        raise DataValidationError("held-out data has no rows")
    missing = [c for c in [schema.target, *schema.feature_names] if c not in rows[0]]
    if missing:
        raise DataValidationError(f"held-out data lacks columns: {', '.join(missing)}")
    X = np.empty((len(rows), encoder.n_features))
    problems: list[str] = []
    for i, r in enumerate(rows):
        try:
            encoder.encode_record(r, out=X[i])
        except RecordValidationError as e:
            problems.append(f"row {i + 2}: {e}")
    if problems:
        raise DataValidationError(f"held-out data breaks the schema in {len(problems)} rows; first: {problems[0]}")
    y = np.array([(r[schema.target] or "").strip() == schema.positive_label for r in rows])
    return X, y
