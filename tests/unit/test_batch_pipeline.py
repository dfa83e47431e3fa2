"""The pipelined BatchScorer.score_csv (row blocks, LightGBM on a worker thread) against the one-pass
pandas reference (tests/unit/batch_reference.py): byte-identical outputs and reconciling counts, bad rows included."""

from __future__ import annotations

import io

import numpy as np
import pytest

from churnguard.domain.batch import BatchOptions, BatchScorer
from tests.conftest import synth_frame
from tests.unit.batch_reference import parse_csv, score_frame


@pytest.fixture(scope="module")
def scorer(trained):
    from churnguard.domain.predictor import Predictor

    bundle = trained[0]
    s = BatchScorer(Predictor(bundle), num_threads=1)
    yield s
    s.close()


def _dirty_csv(n: int, seed: int) -> bytes:
    """``n`` generated rows with bad values sprinkled over every block, plus unreadable lines."""
    frame = synth_frame(n, seed=seed).astype(str)
    rng = np.random.default_rng(seed)
    for i in rng.choice(n, size=n // 40, replace=False).tolist():
        col, value = [
            ("tenure", "abc"),
            ("Contract", "Weekly"),
            ("MonthlyCharges", "-5"),
            ("gender", " "),
            ("customerID", ""),
            ("TotalCharges", " "),
            ("customerID", "  padded-id "),
            ("PaymentMethod", 'Cheque, "posted"'),
        ][i % 8]
        frame.loc[i, col] = value
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    lines = buf.getvalue().splitlines()
    for i in (5, n // 2, n - 3):  # too many fields: pandas skips these lines and we count them
        lines[i] += ",extra,fields"
    return ("\n".join(lines) + "\n").encode()


def _reference_scores_csv(result) -> bytes:
    """The scores CSV formatted the simple way: every column for every row, with numpy's string functions."""
    S = np.dtypes.StringDType()

    def field(a):
        # OWASP's formula triggers (and a leading quote, so that one can always be removed) get a "'"...
        formula = np.zeros(len(a), dtype=bool)
        for t in "=+-@\t\r'":
            formula |= np.strings.startswith(a, t) | np.strings.startswith(np.strings.lstrip(a), t)
        a = np.where(formula, np.strings.add("'", a), a)
        # ... then RFC 4180 quoting, CR included.
        needs = np.zeros(len(a), dtype=bool)
        for c in (",", '"', "\n", "\r"):
            needs |= np.strings.find(a, c) >= 0
        return np.where(needs, np.strings.add(np.strings.add('"', np.strings.replace(a, '"', '""')), '"'), a)

    header = (
        ",".join(
            field(
                np.array(
                    [result.id_column, "churn_probability", "will_churn", "risk_level", "reasons", "model_version"],
                    dtype=S,
                )
            ).tolist()
        )
        + "\n"
    )
    if result.scored == 0:
        return header.encode()
    line = np.strings.add(np.strings.add(field(result.ids.astype(S)), ","), np.round(result.probability, 4).astype(S))
    line = np.strings.add(
        np.strings.add(line, np.where(result.will_churn, ",true,", ",false,").astype(S)), result.risk_level.astype(S)
    )
    line = np.strings.add(np.strings.add(line, ","), field(result.reasons.astype(S)))
    line = np.strings.add(line, "," + field(np.array([result.model_version], dtype=S))[0])
    return (header + "\n".join(line.tolist()) + "\n").encode()


@pytest.mark.parametrize(
    "options",
    [
        BatchOptions(reasons="high"),
        BatchOptions(reasons="all", top=5),
        BatchOptions(reasons="none"),
        BatchOptions(reasons="medium", reason_method="treeshap"),
    ],
)
def test_pipelined_output_is_byte_identical_to_the_one_pass_reference(scorer, options):
    n = 3000 if options.reason_method == "path" else 600
    data = _dirty_csv(n, seed=21)
    frame, malformed = parse_csv(data, scorer.schema)
    ref = score_frame(scorer, frame, options, malformed, data=data)
    assert ref.scores_csv() == _reference_scores_csv(ref)
    for block_rows, workers in ((97, 1), (97, 2), (1024, 1), (1024, 3), (65536, 2)):  # many blocks, a few, one
        scorer.workers = workers
        scorer.close()  # a pool of the new size on the next call
        got = scorer.score_csv(data, options, block_rows=block_rows)
        assert got.scores_csv() == ref.scores_csv() == _reference_scores_csv(got)
        assert got.errors_csv() == ref.errors_csv()
        assert got.counts() == ref.counts()
        assert got.rows_in == got.scored + got.rejected == n
        assert got.rejected > n // 80  # the injected problems are there (a blank TotalCharges or padded id is fine)
        unreadable = [r for r in got.rejected_rows if r["reason"].startswith("unreadable line")]
        assert [r["row"] for r in unreadable] == [5, n // 2, n - 3]  # their places in the input
        assert all(r["values"]["(extra field 2)"] == "fields" for r in unreadable)
        assert list(got.score_items()) == list(ref.score_items())


def test_formatting_matches_the_reference_for_row_numbers_odd_ids_and_odd_values(scorer):
    from churnguard.domain.batch import ChunkResult

    n = 50
    rng = np.random.default_rng(3)
    p = np.concatenate([[0.0, 1.0, 0.00005, 0.99995, 0.12345, 0.5], rng.random(n - 6)])
    risk = np.array(["low", "medium", "high"], dtype=object)[rng.integers(0, 3, n)]
    reasons = np.array(['[{"feature":"tenure","value":3}]', "", "[]"] * 16 + ["", ""], dtype=object)
    for ids in (
        np.arange(1, n + 1),
        np.array([f"id,{i}" if i % 7 == 0 else f'q"{i}' if i % 5 == 0 else f"c{i}" for i in range(n)], dtype=object),
        np.array(
            [
                ["=1+1", "-123", "+4", "@SUM(A1)", " =x", "'quoted", "\r=x", "\tx", "a\rb", "ok"][i % 10]
                for i in range(n)
            ],
            dtype=object,
        ),
    ):
        r = ChunkResult("v,1", n, ids, p, p >= 0.3, risk, reasons, id_column="row")
        assert r.scores_csv() == _reference_scores_csv(r)
    odd = ChunkResult(
        "v1",
        2,
        np.array(["a", "b"], dtype=object),
        np.array([np.nan, 2.5]),
        np.array([False, True]),
        np.array(["low", "extreme"], dtype=object),
        np.array(["", ""], dtype=object),
    )
    assert odd.scores_csv() == _reference_scores_csv(odd)


def test_pipeline_handles_a_header_only_chunk(scorer):
    header = _dirty_csv(10, seed=1).split(b"\n", 1)[0] + b"\n"
    got = scorer.score_csv(header, BatchOptions())
    assert (got.rows_in, got.scored, got.rejected) == (0, 0, 0)
    assert got.scores_csv() == score_frame(scorer, *parse_csv(header, scorer.schema)).scores_csv()


@pytest.mark.parametrize("tail", [b'x,"unterminated\n', b"\xff\xfe not utf-8\n"])
def test_an_unreadable_chunk_fails_with_a_clear_error_even_after_blocks_were_scored(scorer, tail):
    from churnguard.domain.errors import DataValidationError

    data = _dirty_csv(400, seed=2) + tail
    scorer.workers = 2
    with pytest.raises(DataValidationError, match="chunk-7 is not a readable CSV"):
        scorer.score_csv(data, BatchOptions(), source="chunk-7", block_rows=50)
    assert scorer.score_csv(_dirty_csv(100, seed=2), BatchOptions(), block_rows=30).rows_in == 100  # still usable
