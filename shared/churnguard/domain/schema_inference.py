"""Schema inference: a first data contract for a churn CSV, with each column's role and the reason.

A data scientist reads the table and signs the schema off (or passes ``--id``/``--positive``):

    inference = infer_schema(df, target="Churn")
    print(inference.table())               # column | role | kept as | reason
    Path("schema.yaml").write_text(inference.schema.dump_yaml())

The rules, in the order they are applied to each column:

- **empty or constant** columns are left out (nothing to learn from);
- **identifiers**: a name that says so (``id``, ``*_id``, ``customerID``, ``RowNumber``...) on a column
  unique in most rows, a text or integer column unique in nearly every row, or an integer run of row
  numbers. The best of them becomes ``id_column``, the others are left out. A float column is never
  an identifier for being unique: measurements such as a salary are unique too;
- **numbers**: a column whose values parse as numbers, allowing a few stray text cells (reported as
  invalid: training refuses those rows until they are fixed, and ``churn schema validate`` lists them);
  0/1 columns are ``binary`` (bounded to 0 and 1) and integers with a handful of distinct values
  ``coded`` (ordered integers: a count with few values looks the same), the rest ``numeric``;
- **categoricals**: text with up to ``max_categories`` distinct values; levels seen in fewer than
  ``rare_rows`` rows are pooled into one level that also takes values never seen, so the API and
  batch scoring accept new levels and encode them as training did;
- **the positive label**: ``1``, ``true``, ``yes``, ``churned``... when present, else the rarer class.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from churnguard.domain.errors import SchemaError
from churnguard.domain.schema import MISSING_STRINGS, CategoricalFeature, Feature, NumericFeature, Schema

if TYPE_CHECKING:
    import pandas as pd

# A column unique in at least this share of rows is identifier-like (if it is text or integers).
ID_UNIQUE_SHARE = 0.95
# A column whose name says "id" is an identifier when unique in at least this share of rows
# (a "PlanID" with five values is a categorical code, not an identifier).
NAMED_ID_UNIQUE_SHARE = 0.5
# A column stays numeric with a few stray text cells: at most this share of its values, or at most
# STRAY_TEXT_VALUES distinct texts in at most STRAY_TEXT_MAX_SHARE of them ("unknown", "?").
STRAY_TEXT_SHARE = 0.02
STRAY_TEXT_VALUES = 3
STRAY_TEXT_MAX_SHARE = 0.1
# Integers with at most this many distinct values are codes (age group, tariff plan, charge band).
MAX_CODES = 12
# Text columns with more distinct values are names or free text, not categories.
MAX_CATEGORIES = 500
# Labels that mean "churned", matched without case.
POSITIVE_LABELS = ("1", "1.0", "true", "yes", "y", "t", "churned", "churn", "exited", "left", "lost", "cancelled")
OTHER_LEVEL = "(other)"

_ID_WORDS = {"id", "uuid", "guid"}
_ID_NAMES = {"rownumber", "rownum", "rowid", "index", "unnamed0", "unnamed"}
_ID_SUFFIXES = ("customerid", "userid", "clientid", "accountid", "subscriberid", "memberid", "custid")


@dataclass(frozen=True)
class ColumnDecision:
    """What inference made of one column, and why."""

    column: str
    role: str  # "target", "id", "feature" or "left out"
    kind: str  # feature: numeric, binary, coded, categorical; else "" (or what the column looked like)
    reason: str
    invalid: list[dict[str, Any]] = field(default_factory=list)  # stray cells: {"value", "count"}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Inference:
    schema: Schema
    columns: list[ColumnDecision]
    warnings: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema.to_dict(),
            "columns": [c.to_dict() for c in self.columns],
            "warnings": self.warnings,
        }

    def table(self) -> str:
        """Every column's role and the reason, as an aligned text table."""
        rows = [("column", "role", "kept as", "reason")]
        rows += [(repr(c.column), c.role, c.kind or "-", c.reason) for c in self.columns]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        return "\n".join(
            f"{a:<{widths[0]}}  {b:<{widths[1]}}  {k:<{widths[2]}}  {reason}".rstrip() for a, b, k, reason in rows
        )


def id_like_name(name: str) -> bool:
    """``customerID``, ``customer_id``, ``Id``, ``RowNumber``, ``user-uuid`` yes; ``paid``, ``valid`` no."""
    words = _words(name)
    squashed = "".join(words)
    return bool(words) and (words[-1] in _ID_WORDS or squashed in _ID_NAMES or squashed.endswith(_ID_SUFFIXES))


def _words(name: str) -> list[str]:
    return [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", name)]


def _squash(name: str) -> str:
    return "".join(_words(name))


def rare_rows(n: int) -> int:
    """Levels seen in fewer rows than this are pooled: 10 in data of 1,000 rows or more, fewer below."""
    return max(2, min(10, n // 100))


def infer_schema(
    df: pd.DataFrame,
    target: str,
    positive_label: str | None = None,
    id_column: str | None = None,
    name: str = "churn",
    max_categories: int = MAX_CATEGORIES,
) -> Inference:
    """Infer a schema from a frame of raw strings (as ``read_csv`` gives); see the module for the rules."""
    if target not in df.columns:
        raise SchemaError(f"target column {target!r} is not in the data (columns: {list(df.columns)})")
    if id_column is not None and id_column not in df.columns:
        raise SchemaError(f"id column {id_column!r} is not in the data (columns: {list(df.columns)})")
    n = len(df)
    if n == 0:
        raise SchemaError("the data has no rows: nothing to infer a schema from")
    decisions: dict[str, ColumnDecision] = {}
    warnings: list[str] = []
    positive_label, target_reason = _positive(df[target], target, positive_label)
    decisions[target] = ColumnDecision(target, "target", "", target_reason)

    feats: dict[str, Feature] = {}
    id_candidates: list[tuple[int, str, str]] = []  # (preference, column, reason)
    for col in df.columns:
        if col == target:
            continue
        profile = _Column(df[col])
        if col == id_column:
            decisions[col] = ColumnDecision(col, "id", "", "given with --id")
            continue
        if profile.n_present == 0:
            decisions[col] = ColumnDecision(col, "left out", "", "empty: no value in any row")
            continue
        id_reason = _identifier(col, profile, n)
        if id_reason is not None:
            preference, reason = id_reason
            id_candidates.append((preference, col, reason))
            continue
        if profile.n_distinct == 1:
            only = profile.present.iloc[0]
            decisions[col] = ColumnDecision(col, "left out", "", f"constant: {only!r} in every row with a value")
            continue
        decision, feature = _feature(col, profile, n, max_categories)
        decisions[col] = decision
        if feature is not None:
            feats[col] = feature
        if decision.invalid:
            shown = ", ".join(f"{v['value']!r} ({v['count']})" for v in decision.invalid[:5])
            warnings.append(
                f"{col!r} is numeric but has {sum(v['count'] for v in decision.invalid)} cells that are not numbers: "
                f"{shown}; fix or blank them (training refuses rows with invalid cells; `churn schema validate` "
                "lists them)"
            )

    if id_candidates:
        id_candidates.sort(key=lambda c: c[0])
        if id_column is None:
            _, id_column, reason = id_candidates[0]
            decisions[id_column] = ColumnDecision(id_column, "id", "", reason)
            rest = id_candidates[1:]
        else:
            rest = id_candidates
        for _, col, reason in rest:
            decisions[col] = ColumnDecision(col, "left out", "identifier", f"{reason}; {id_column!r} is the id")
    if not feats:
        raise SchemaError(
            "no column can be a feature: " + "; ".join(f"{d.column!r}: {d.reason}" for d in decisions.values())
        )
    schema = Schema(
        name=name,
        id_column=id_column,
        target=target,
        positive_label=positive_label,
        features=tuple(feats[c] for c in df.columns if c in feats),
    )
    return Inference(schema, [decisions[c] for c in df.columns], warnings)


class _Column:
    """One column's present values, parsed once."""

    def __init__(self, raw: pd.Series) -> None:
        import pandas as pd

        s = raw.astype("string").str.strip()
        self.missing = s.isna() | s.str.lower().isin(list(MISSING_STRINGS))
        self.present = s[~self.missing]
        self.n_present = len(self.present)
        self.n_distinct = int(self.present.nunique())
        self.nums = pd.to_numeric(self.present, errors="coerce").astype(float)
        self.parsed = self.nums.notna()
        self.n_text = int((~self.parsed).sum())
        self.n_distinct_text = int(self.present[~self.parsed].nunique())
        ok = self.nums[self.parsed]
        finite = ok[ok.abs() != math.inf]
        self.integer = bool(len(ok) > 0 and len(finite) == len(ok) and (finite == finite.round()).all())

    @property
    def numeric(self) -> bool:
        """All present values are numbers, or all but a few stray text cells."""
        if self.n_present == 0 or self.n_text == self.n_present:
            return False
        return self.n_text <= STRAY_TEXT_SHARE * self.n_present or (
            self.n_distinct_text <= STRAY_TEXT_VALUES and self.n_text <= STRAY_TEXT_MAX_SHARE * self.n_present
        )

    @property
    def all_numbers(self) -> bool:
        return self.n_present > 0 and self.n_text == 0


def _identifier(col: str, c: _Column, n: int) -> tuple[int, str] | None:
    """(preference, reason) when the column identifies rows; the lowest preference becomes ``id_column``:
    a customer key named so (text, then integers), then unnamed keys, row numbers last."""
    unique = c.n_distinct
    share = unique / n
    seen = f"unique in {unique:,} of {n:,} rows"
    named = id_like_name(col)
    row_name = _squash(col) in _ID_NAMES
    if c.all_numbers and not c.integer:  # floats: only a name that says id, never uniqueness alone
        return (5, f"its name says identifier and it is {seen}") if named and share >= ID_UNIQUE_SHARE else None
    if n >= 20 and c.all_numbers and c.integer and unique == c.n_present:
        lo, hi = float(c.nums.min()), float(c.nums.max())
        if hi - lo + 1 == unique and (row_name or not named):
            return 4, f"a run of row numbers ({lo:g} to {hi:g}), {seen}"
    if named and share >= NAMED_ID_UNIQUE_SHARE:
        return (1 if c.all_numbers else 0) + 3 * row_name, f"its name says identifier and it is {seen}"
    if n >= 20 and share >= ID_UNIQUE_SHARE:
        if not c.all_numbers:
            return 2, f"text {seen}: a customer key, not a feature"
        if c.integer:
            return 3, f"integers {seen}: a customer number, not a feature (pass --id to choose another)"
    return None


def _feature(col: str, c: _Column, n: int, max_categories: int) -> tuple[ColumnDecision, Feature | None]:
    nullable = bool(c.missing.any())
    missing_note = f"; {int(c.missing.sum()):,} missing" if nullable else ""
    if c.numeric:
        nums = c.nums[c.parsed]
        invalid = []
        if c.n_text:
            counts = c.present[~c.parsed].value_counts()
            invalid = [{"value": str(v), "count": int(k)} for v, k in counts.items()]
            missing_note += f"; {c.n_text} stray text cells reported as invalid"
        distinct = sorted(nums.unique().tolist())
        lo, hi = float(distinct[0]), float(distinct[-1])
        if c.integer and distinct == [0.0, 1.0]:
            feature: Feature = NumericFeature(col, minimum=0.0, maximum=1.0, nullable=nullable, integer=True)
            return ColumnDecision(col, "feature", "binary", f"0/1 flag{missing_note}", invalid), feature
        if c.integer and len(distinct) <= MAX_CODES:
            # Kept as an ordered number: a tree splits between codes as it needs, and a count with few
            # values looks the same as a code, so a value beyond the codes seen stays valid.
            feature = NumericFeature(col, minimum=0.0 if lo >= 0 else None, nullable=nullable, integer=True)
            codes = ", ".join(f"{v:g}" for v in distinct)
            reason = f"{len(distinct)} integer codes or counts ({codes}): an ordered integer{missing_note}"
            return ColumnDecision(col, "feature", "coded", reason, invalid), feature
        feature = NumericFeature(col, minimum=0.0 if lo >= 0 else None, nullable=nullable, integer=c.integer)
        what = "integers" if c.integer else "numbers"
        near_unique = not c.integer and c.n_distinct >= ID_UNIQUE_SHARE * n
        unique = f", unique in {c.n_distinct:,} of {n:,} rows (normal for a measurement)" if near_unique else ""
        reason = f"{what} from {lo:g} to {hi:g}{unique}{missing_note}"
        return ColumnDecision(col, "feature", "numeric", reason, invalid), feature

    if c.n_distinct > max_categories:
        reason = (
            f"{c.n_distinct:,} distinct text values (more than {max_categories}): a name or free text, not a "
            "category; add it to the schema by hand if it is meaningful"
        )
        return ColumnDecision(col, "left out", "", reason), None
    counts = c.present.value_counts()
    floor = rare_rows(n)
    kept = sorted(str(v) for v, k in counts.items() if k >= floor)
    rare = [str(v) for v, k in counts.items() if k < floor]
    if rare and counts[counts >= floor].sum() < 0.5 * c.n_present:
        reason = (
            f"{c.n_distinct:,} distinct text values, most of them seen in fewer than {floor} rows: an identifier "
            "or free text, not a category"
        )
        return ColumnDecision(col, "left out", "", reason), None
    if not rare:
        feature = CategoricalFeature(col, tuple(kept), nullable=nullable)
        return ColumnDecision(
            col, "feature", "categorical", f"{len(kept)} levels: {_preview(kept)}{missing_note}"
        ), feature
    other = OTHER_LEVEL
    while other in counts.index:
        other = f"({other})"
    feature = CategoricalFeature(col, (*kept, other), nullable=nullable, other=other)
    reason = (
        f"{len(kept)} levels; {len(rare)} levels seen in fewer than {floor} rows pooled as {other!r}, which also "
        f"takes values never seen{missing_note}"
    )
    return ColumnDecision(col, "feature", "categorical", reason), feature


def _positive(labels_raw: pd.Series, target: str, given: str | None) -> tuple[str, str]:
    labels = labels_raw.astype("string").str.strip()
    labels = labels[labels.notna() & ~labels.str.lower().isin(list(MISSING_STRINGS))]
    counts = labels.value_counts()
    values = sorted(str(v) for v in counts.index)
    if given is not None:
        if given not in values:
            raise SchemaError(f"positive label {given!r} not found in {target!r} (values: {values[:10]})")
        return given, f"positive label {given!r} given with --positive ({_share(counts, given)} of rows)"
    if len(values) != 2:
        raise SchemaError(
            f"target {target!r} has {len(values)} labels ({', '.join(values[:10])}), not two: pass --target with "
            "a yes/no column, or --positive with the label that means churned"
        )
    for word in POSITIVE_LABELS:
        hit = [v for v in values if v.lower() == word]
        if hit:
            return hit[0], f"positive label {hit[0]!r}: it means churned ({_share(counts, hit[0])} of rows)"
    rarer = str(counts.idxmin()) if counts.iloc[0] != counts.iloc[-1] else values[-1]
    return rarer, f"positive label {rarer!r}: the rarer class ({_share(counts, rarer)} of rows); pass --positive if not"


def _preview(levels: list[str], k: int = 4) -> str:
    shown = ", ".join(levels[:k])
    return shown + (f", ... ({len(levels) - k} more)" if len(levels) > k else "")


def _share(counts: pd.Series, label: str) -> str:
    return f"{counts[label] / counts.sum():.1%}"
