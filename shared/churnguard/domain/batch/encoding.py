"""Validation and encoding of a block of raw CSV strings, column by column.

Categoricals are looked up once per distinct value and numbers parsed as pandas does (faster); every problem is
recorded against its row, so a rejected row says exactly what is wrong with it.

    X, bad, problems = validate_encode(frame_of_strings, predictor.encoder, "customerID")
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from churnguard.domain.features import FeatureEncoder
from churnguard.domain.schema import MISSING_STRINGS, CategoricalFeature, NumericFeature, is_plain_number_text

if TYPE_CHECKING:
    import pandas as pd


def validate_encode(
    df: pd.DataFrame, encoder: FeatureEncoder, id_column: str | None
) -> tuple[np.ndarray, np.ndarray, dict[int, list[str]]]:
    """(X, bad row mask, {row: [problems]}) for a frame of raw strings, column by column."""
    import pandas as pd

    n = len(df)
    X = np.empty((n, encoder.n_features), dtype=np.float64)
    bad = np.zeros(n, dtype=bool)
    problems: dict[int, list[str]] = {}

    def note(rows: np.ndarray, texts: np.ndarray | str) -> None:
        if len(rows) == 0:
            return
        bad[rows] = True
        texts_arr = np.broadcast_to(np.asarray(texts, dtype=object), rows.shape)
        for r, t in zip(rows.tolist(), texts_arr.tolist(), strict=False):
            problems.setdefault(r, []).append(t)

    if id_column and not all_plain(df[id_column].to_numpy(dtype=object)):
        codes, uniques = pd.factorize(df[id_column].to_numpy(dtype=object))
        blank = np.array([str(u).strip() == "" for u in uniques], dtype=bool)
        # factorize gives code -1 to a missing cell (a short line): that is a missing id too,
        # and must not index blank[-1], the last distinct id's flag.
        missing = (codes < 0) | (blank[codes] if blank.size else False)
        if missing.any():
            note(np.flatnonzero(missing), f"{id_column}: missing customer id")

    for j, feat in enumerate(encoder.schema.features):
        values = df[feat.name].to_numpy(dtype=object)
        if isinstance(feat, CategoricalFeature):
            X[:, j], col_bad = _encode_categorical(values, feat)
            if col_bad is not None:
                rows, texts = col_bad
                note(rows, texts)
        else:
            X[:, j], rows, texts = _encode_numeric(values, feat)
            note(rows, texts)
    return X, bad, problems


def _encode_categorical(
    values: np.ndarray, feat: CategoricalFeature
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    import pandas as pd

    codes, uniques = pd.factorize(values)
    code_of = np.empty(len(uniques) + 1, dtype=np.float64)  # last slot: NaN from factorize (-1)
    problem_of = np.full(len(uniques) + 1, None, dtype=object)
    for u, raw in enumerate(list(uniques) + [None]):
        s = "" if raw is None else str(raw).strip()
        if s.lower() in MISSING_STRINGS:
            code_of[u] = math.nan
            if not feat.nullable:
                problem_of[u] = f"{feat.name}: missing value not allowed"
        elif (code := feat.code_of(s)) is not None:
            code_of[u] = code
        else:
            code_of[u] = math.nan
            problem_of[u] = f"{feat.name}: {_short(s)!r} is not one of {', '.join(feat.categories)}"
    encoded = code_of[codes]  # codes == -1 picks the last slot
    bad_u = np.array([p is not None for p in problem_of], dtype=bool)
    if not bad_u.any():
        return encoded, None
    rows = np.flatnonzero(bad_u[codes])
    return encoded, (rows, problem_of[codes[rows]])


def parse_numbers(values: np.ndarray) -> np.ndarray:
    """Floats of a column of raw strings, NaN where pandas' ``to_numeric(errors="coerce")`` gives NaN.

    A clean column (the usual case) is parsed by numpy's float conversion, about 5 times faster than
    pandas (numeric parsing was 60% of the batch CPU time on the all-numeric Iranian data). It gives
    pandas' values exactly on what it is allowed to parse: printable ASCII without ``_`` (Python's
    float accepts ``1_0`` and other scripts' digits, pandas does not), no negative zero (pandas reads
    ``-0`` as 0.0) or NaN (``-nan``'s sign), and every cell a number; anything else goes to pandas.
    Empty and single-space cells (a missing value, as Telco's ``TotalCharges`` has) are NaN in both,
    so they are set aside first rather than sending their whole column to pandas.
    """
    import pandas as pd

    nums = _numbers_if_clean(values)
    if nums is None:
        blank = (values == "") | (values == " ")  # only now: comparing object cells is not free
        if blank.any():
            clean = _numbers_if_clean(values[~blank])
            if clean is not None:
                nums = np.full(len(values), np.nan)
                nums[~blank] = clean
    if nums is None:
        nums = pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(
            dtype=np.float64, na_value=np.nan, copy=True
        )
    return nums


def _numbers_if_clean(cells: np.ndarray) -> np.ndarray | None:
    """numpy's floats of ``cells`` (a new array) when they are exactly pandas', else None."""
    try:
        text = "".join(cells)
        if is_plain_number_text(text) and text.isprintable():
            nums = np.asarray(cells, dtype=np.float64)
            if not np.isnan(nums).any() and not np.signbit(nums[nums == 0]).any():
                return nums
    except (TypeError, ValueError):  # a missing cell (None/NaN) or a cell that is not a number
        pass
    return None


def _encode_numeric(values: np.ndarray, feat: NumericFeature) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    nums = parse_numbers(values)
    rows: list[np.ndarray] = []
    texts: list[np.ndarray] = []
    unparsed = np.flatnonzero(np.isnan(nums))
    if len(unparsed):
        raw = [str(v).strip() if v is not None else "" for v in values[unparsed]]
        missing = np.array([r.lower() in MISSING_STRINGS for r in raw], dtype=bool)
        if not feat.nullable and missing.any():
            rows.append(unparsed[missing])
            texts.append(np.full(int(missing.sum()), f"{feat.name}: missing value not allowed", dtype=object))
        if (~missing).any():
            rows.append(unparsed[~missing])
            texts.append(
                np.array(
                    [
                        f"{feat.name}: {_short(r)!r} is not a number"
                        for r, m in zip(raw, missing, strict=False)
                        if not m
                    ],
                    dtype=object,
                )
            )
    present = ~np.isnan(nums)
    out_of_range = np.zeros(len(nums), dtype=bool)
    with np.errstate(invalid="ignore"):
        checks = [(~np.isfinite(nums) & present, "must be a finite number")]
        if feat.minimum is not None:
            checks.append((nums < feat.minimum, f"must be >= {feat.minimum:g}"))
        if feat.maximum is not None:
            checks.append((nums > feat.maximum, f"must be <= {feat.maximum:g}"))
        if feat.integer:
            checks.append((present & np.isfinite(nums) & (nums != np.round(nums)), "must be an integer"))
    for mask, text in checks:
        mask = mask & ~out_of_range  # one problem per value is enough
        if mask.any():
            idx = np.flatnonzero(mask)
            rows.append(idx)
            texts.append(
                np.array(
                    [f"{feat.name}: {_short(str(values[i]).strip())!r} {text}" for i in idx.tolist()], dtype=object
                )
            )
            out_of_range |= mask
    nums[out_of_range] = np.nan
    if rows:
        return nums, np.concatenate(rows), np.concatenate(texts)
    return nums, np.empty(0, dtype=np.int64), np.empty(0, dtype=object)


def _short(s: str, limit: int = 40) -> str:
    return s if len(s) <= limit else s[:limit] + "..."


_ASCII_SPACE = tuple(c for c in map(chr, range(128)) if c.isspace())


def all_plain(values: np.ndarray) -> bool:
    """True when every value is a non-empty ASCII str without whitespace at either end.

    A few substring scans of the cells joined by NUL, instead of a Python call per cell. False
    may be a false alarm (non-ASCII text, a NUL inside a cell): callers then take their exact path.
    """
    try:
        joined = "\x00" + "\x00".join(values.tolist()) + "\x00"
    except TypeError:  # a missing cell (NaN) from a short line
        return False
    if len(values) == 0 or not joined.isascii() or "\x00\x00" in joined:
        return False
    present = [c for c in _ASCII_SPACE if c in joined]  # one memchr each; ids rarely hold any
    return not any("\x00" + c in joined or c + "\x00" in joined for c in present)


def strip_ids(a: np.ndarray) -> np.ndarray:
    import pandas as pd

    if all_plain(a):
        return a
    codes, uniques = pd.factorize(a)
    if len(uniques) == 0:
        return a
    stripped = np.array([str(u).strip() for u in uniques], dtype=object)
    if all(s == u for s, u in zip(stripped.tolist(), list(uniques), strict=False)):
        return a
    return stripped[codes]
