"""The data contract: which columns a churn data set has, and what each may hold.

A schema is a small YAML file. The same object validates training data, validates and
encodes API requests, and generates the API's request model, so the three cannot drift.

Example::

    schema = Schema.load(DEFAULT_SCHEMA_PATH)
    report = schema.validate_frame(df)
    if not report.ok:
        print(report.to_text())
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from churnguard.domain.errors import SchemaError

if TYPE_CHECKING:  # pandas is a training-time dependency only
    import pandas as pd

DEFAULT_SCHEMA_PATH = Path(str(resources.files("churnguard") / "schemas" / "telco.yaml"))

# Strings that mean "no value" in a CSV cell (the Telco file writes blanks as " ").
MISSING_STRINGS = frozenset({"", "na", "nan", "null", "none"})


def is_plain_number_text(text: str) -> bool:
    """Whether a number written as text may be read as one: ASCII, without ``_``, as batch scoring reads
    numbers (pandas). Python's float() also reads ``1_0`` and other scripts' digits (``١٠``) as 10, and
    pydantic reads ``1_0``; the API and encode_record ask this first, so a value scores the same way (or
    is refused the same way) online and in batch. ``is_plain_number_text("1_0")`` is False."""
    return text.isascii() and "_" not in text


@dataclass(frozen=True)
class NumericFeature:
    name: str
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    integer: bool = False
    kind: str = field(default="numeric", init=False)

    def describe_allowed(self) -> str:
        lo = "-inf" if self.minimum is None else f"{self.minimum:g}"
        hi = "inf" if self.maximum is None else f"{self.maximum:g}"
        what = "an integer" if self.integer else "a number"
        return f"{what} in [{lo}, {hi}]" + (" or null" if self.nullable else "")

    def check(self, value: float) -> str | None:
        """Return a problem description for a parsed, non-missing value, or None."""
        if not math.isfinite(value):
            return "must be a finite number"
        if self.minimum is not None and value < self.minimum:
            return f"must be >= {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be <= {self.maximum:g}"
        if self.integer and value != int(value):
            return "must be an integer"
        return None

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "type": "numeric"}
        if self.minimum is not None:
            d["min"] = self.minimum
        if self.maximum is not None:
            d["max"] = self.maximum
        if self.integer:
            d["integer"] = True
        if self.nullable:
            d["nullable"] = True
        return d


@dataclass(frozen=True)
class CategoricalFeature:
    """A column of named levels. With ``other`` set, the last of ``categories`` is that pooled level:
    rare levels of the training data and values never seen in it are all encoded as it, in training,
    the API and batch alike (the YAML lists the named levels under ``values`` and the pooled one
    under ``other``). Without it, a value outside ``categories`` is invalid."""

    name: str
    categories: tuple[str, ...]
    nullable: bool = False
    other: str | None = None
    kind: str = field(default="categorical", init=False)

    def __post_init__(self) -> None:
        if self.other is not None and (not self.categories or self.categories[-1] != self.other):
            raise SchemaError(f"categorical feature {self.name!r}: the pooled level {self.other!r} must come last")
        if len(set(self.categories)) != len(self.categories):
            raise SchemaError(f"categorical feature {self.name!r} lists a value twice")

    @functools.cached_property
    def codes(self) -> dict[str, int]:
        """Level -> code (its position); the model reads these codes."""
        return {c: i for i, c in enumerate(self.categories)}

    @property
    def other_code(self) -> int | None:
        """The code every value outside ``categories`` gets, or None when such values are invalid."""
        return len(self.categories) - 1 if self.other is not None else None

    def code_of(self, value: str) -> int | None:
        """The code of a (stripped) text value, or None if the schema does not allow it."""
        return self.codes.get(value, self.other_code)

    def describe_allowed(self) -> str:
        named = self.categories[:-1] if self.other is not None else self.categories
        allowed = ", ".join(repr(c) for c in named)
        pooled = f" (any other value is encoded as {self.other!r})" if self.other is not None else ""
        return f"one of {allowed}{pooled}" + (" or null" if self.nullable else "")

    def to_dict(self) -> dict[str, Any]:
        named = self.categories[:-1] if self.other is not None else self.categories
        d: dict[str, Any] = {"name": self.name, "type": "categorical", "values": list(named)}
        if self.other is not None:
            d["other"] = self.other
        if self.nullable:
            d["nullable"] = True
        return d


Feature = NumericFeature | CategoricalFeature


@dataclass(frozen=True)
class Problem:
    """One kind of bad value in one column, with how often it occurs."""

    column: str
    problem: str
    value: str
    count: int

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "problem": self.problem, "value": self.value, "count": self.count}


@dataclass
class ValidationReport:
    rows: int
    problems: list[Problem]
    bad_rows: int = 0
    missing_columns: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.missing_columns

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "bad_rows": self.bad_rows,
            "missing_columns": self.missing_columns,
            "problems": [p.to_dict() for p in self.problems],
        }

    def to_text(self, limit: int = 20) -> str:
        lines = [f"{self.rows} rows checked, {self.bad_rows} bad"]
        if self.missing_columns:
            lines.append("missing columns: " + ", ".join(self.missing_columns))
        for p in self.problems[:limit]:
            lines.append(f"  {p.column}: {p.problem} (value {p.value!r}, {p.count} rows)")
        if len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more kinds of problem")
        return "\n".join(lines)


@dataclass(frozen=True)
class Schema:
    name: str
    id_column: str | None
    target: str
    positive_label: str
    features: tuple[Feature, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        dupes = {n for n in names if names.count(n) > 1}
        if dupes:
            raise SchemaError(f"schema declares features more than once: {sorted(dupes)}")
        if self.target in names or (self.id_column and self.id_column in names):
            raise SchemaError("the target and id columns must not also be features")
        if not self.features:
            raise SchemaError("schema declares no features")
        for f in self.features:
            if isinstance(f, CategoricalFeature) and not f.categories:
                raise SchemaError(f"categorical feature {f.name!r} declares no values")

    # ----- construction and serialisation -------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id_column": self.id_column,
            "target": {"column": self.target, "positive": self.positive_label},
            "features": [f.to_dict() for f in self.features],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        try:
            target = data["target"]
            feats: list[Feature] = []
            for raw in data["features"]:
                kind = raw.get("type")
                if kind == "numeric":
                    feats.append(
                        NumericFeature(
                            name=str(raw["name"]),
                            minimum=_opt_float(raw.get("min")),
                            maximum=_opt_float(raw.get("max")),
                            nullable=bool(raw.get("nullable", False)),
                            integer=bool(raw.get("integer", False)),
                        )
                    )
                elif kind == "categorical":
                    other = None if raw.get("other") is None else str(raw["other"])
                    feats.append(
                        CategoricalFeature(
                            name=str(raw["name"]),
                            categories=tuple(str(v) for v in raw["values"]) + ((other,) if other else ()),
                            nullable=bool(raw.get("nullable", False)),
                            other=other,
                        )
                    )
                else:
                    raise SchemaError(f"feature {raw.get('name')!r}: type must be numeric or categorical, not {kind!r}")
            return cls(
                name=str(data.get("name", "churn")),
                id_column=data.get("id_column"),
                target=str(target["column"]),
                positive_label=str(target["positive"]),
                features=tuple(feats),
            )
        except (KeyError, TypeError) as e:
            raise SchemaError(f"schema is missing or mistypes a required key: {e}") from e

    def dump_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_yaml(cls, text: str, source: str = "schema") -> Schema:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise SchemaError(f"{source} is not valid YAML: {' '.join(str(e).split())}") from e
        if not isinstance(data, dict):
            raise SchemaError(
                f"{source} is not a schema: expected a YAML mapping (name, target, features, ...); "
                "`churn schema infer --data FILE.csv --target COLUMN` writes one"
            )
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> Schema:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise SchemaError(f"cannot read schema {path}: {e}") from e
        return cls.from_yaml(text, source=str(path))

    @classmethod
    def default(cls) -> Schema:
        return cls.load(DEFAULT_SCHEMA_PATH)

    @functools.cached_property  # a schema is immutable; the API compares hashes on every request
    def sha256(self) -> str:
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # ----- validation ---------------------------------------------------------------
    def validate_frame(self, df: pd.DataFrame, require_target: bool = True) -> ValidationReport:
        """Check every declared column of a frame of raw strings (as read from CSV)."""
        import numpy as np

        required = self.feature_names + ([self.target] if require_target else [])
        missing = [c for c in required if c not in df.columns]
        report = ValidationReport(rows=len(df), problems=[], missing_columns=missing)
        if missing:
            return report
        bad = np.zeros(len(df), dtype=bool)
        for f in self.features:
            col_bad, problems = _check_column(f, df[f.name])
            bad |= col_bad
            report.problems.extend(problems)
        if require_target:
            labels = df[self.target].astype("string").str.strip()
            known = labels.notna() & (labels != "")
            if not (labels[known] == self.positive_label).any():
                report.problems.append(
                    Problem(self.target, f"no row has the positive label {self.positive_label!r}", "", 0)
                )
            empty = ~known.to_numpy()
            if empty.any():
                report.problems.append(Problem(self.target, "target is missing", "", int(empty.sum())))
                bad |= empty
            if labels[known].nunique() > 2:
                values = sorted(labels[known].unique().tolist())
                report.problems.append(
                    Problem(self.target, "target has more than two labels", ", ".join(values[:5]), len(values))
                )
        report.bad_rows = int(bad.sum())
        return report


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _check_column(f: Feature, raw: pd.Series) -> tuple[Any, list[Problem]]:
    import numpy as np
    import pandas as pd

    s = raw.astype("string").str.strip()
    missing = (s.isna() | s.str.lower().isin(list(MISSING_STRINGS))).to_numpy()
    problems: list[Problem] = []
    bad = missing.copy() if not f.nullable else np.zeros(len(s), dtype=bool)
    if missing.any() and not f.nullable:
        problems.append(Problem(f.name, "missing value not allowed", "", int(missing.sum())))
    present = s[~missing]
    if isinstance(f, NumericFeature):
        nums = pd.to_numeric(present, errors="coerce")
        unparseable = nums.isna()
        _collect(problems, f.name, "not a number", present[unparseable])
        ok_nums = nums[~unparseable].astype(float)
        checks = ok_nums.map(f.check)
        for problem, group in ok_nums[checks.notna()].groupby(checks[checks.notna()]):
            _collect(problems, f.name, problem, present.loc[group.index])
        bad_idx = present.index[unparseable.to_numpy()].union(checks.index[checks.notna().to_numpy()])
    else:
        unknown = ~present.isin(list(f.categories)) if f.other is None else present.isna()  # pooled: all allowed
        _collect(problems, f.name, f"unknown category (allowed: {', '.join(f.categories)})", present[unknown])
        bad_idx = present.index[unknown.to_numpy()]
    positions = raw.index.get_indexer(bad_idx)
    bad[positions] = True
    return bad, problems


def _collect(problems: list[Problem], column: str, problem: str, values: Iterable[Any]) -> None:
    import collections

    counts = collections.Counter(str(v) for v in values)
    for value, count in counts.most_common():
        problems.append(Problem(column, problem, value, count))
