"""Batch numeric parsing: the fast path gives exactly what pandas' to_numeric(errors="coerce") gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from churnguard.domain.batch.encoding import parse_numbers


def pandas_numbers(values: np.ndarray) -> np.ndarray:
    return pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def assert_same(values: list) -> None:
    arr = np.array(values, dtype=object)
    got, want = parse_numbers(arr), pandas_numbers(arr)
    # Bit for bit: the same NaNs, the same infinities, the same sign of zero.
    assert got.tobytes() == want.tobytes() or (
        np.array_equal(got, want, equal_nan=True) and np.array_equal(np.signbit(got), np.signbit(want))
    ), list(zip(values, got.tolist(), want.tolist(), strict=True))


ADVERSARIAL = [
    "8",
    " 8",
    "8 ",
    "\t8\n",
    "1e5",
    "1E5",
    "+3",
    ".5",
    "5.",
    "00012",
    "9007199254740993",
    "inf",
    "-inf",
    "+inf",
    "Infinity",
    "-infinity",
    "INF",
    "nan",
    "NaN",
    "-nan",
    "1e400",
    "-1e400",
    "-0",
    "-0.0",
    "0",
    "0.0",
    "0x10",
    "1,000",
    "",
    "  ",
    "12.5.1",
    "\u0663",
    "1_0",
    "1d5",
    "None",
    "null",
    "true",
    "\x1c8",
    "8\u00a0",
    "twelve",
]


def test_every_awkward_cell_parses_as_pandas_parses_it():
    for cell in ADVERSARIAL:
        assert_same([cell])  # alone (a column of one) ...
        assert_same(["1.5", cell, "42"])  # ... and among clean numbers


def test_a_clean_column_and_missing_cells_parse_as_pandas():
    assert_same([str(v) for v in np.random.default_rng(0).normal(size=1000)])
    assert_same(["1", None, "2"])
    assert_same(["1", float("nan"), "2"])
    assert_same([])
    assert_same(["29.85", " ", "1889.5", "", "  ", "108.15"])  # blanks among numbers (Telco's TotalCharges)
    assert_same([" ", ""])


cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.text(alphabet="0123456789.-+eE_ nainfINF\t", max_size=8),
    st.text(max_size=4),
    st.sampled_from(["", " ", "  ", "-0", "nan"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(cells, max_size=6))
def test_any_column_parses_as_pandas_parses_it(values):
    assert_same(values)
