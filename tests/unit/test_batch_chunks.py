"""Chunks are cut at CSV records, not at raw line breaks: a quoted field may hold commas, quotes and
line breaks, and a chunk edge inside it must neither split the record nor invent one from its tail."""

from __future__ import annotations

import csv
import io

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, given, settings

from churnguard.adapters.local_files import LocalBatchIO
from churnguard.domain.batch import MAX_RECORD_BYTES, record_start
from churnguard.domain.errors import DataValidationError
from tests.conftest import synth_frame


def _records(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline="")))


def _parts(tmp_path, data: bytes, bounds: list[int]) -> list[bytes]:
    """The chunks' bodies as the batch function reads them (LocalBatchIO, as `churn score --local`)."""
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    edges = [0, *bounds, len(data)]
    io_ = LocalBatchIO()
    return [io_.read_lines(str(path), lo, hi, len(data)) for lo, hi in zip(edges, edges[1:], strict=False)]


def _telco_with_notes(rows: int, note_at: int, note: str, pad: int = 0) -> tuple[bytes, set[str]]:
    """Generated customers with a free-text ``notes`` column; row ``note_at`` holds ``note``."""
    frame = synth_frame(rows, seed=5).drop(columns=["Churn"])
    frame["customerID"] = [f"C{i:05d}" for i in range(rows)]
    frame["notes"] = ["x" * pad if i == 0 else "" for i in range(rows)]
    frame.loc[note_at, "notes"] = note
    buf = io.StringIO()
    frame.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue().encode(), set(frame["customerID"])


def _forged_note() -> str:
    """A note whose lines look like CSV rows, one of them a complete, valid customer."""
    header = synth_frame(2, seed=1).drop(columns=["Churn"])
    fake = header.iloc[0].astype(str).tolist()
    fake[0] = "FAKE-0001"
    return 'called twice, "angry"\nsaid: ' + ",".join(fake) + ",\nwill call back,\n"


def test_a_multi_line_field_moved_across_every_byte_of_a_chunk_edge(tmp_path):
    """The chunk edge sweeps every byte of a record whose quoted field holds line breaks, commas,
    quotes and a line that is a whole valid customer: both chunks together always hold exactly the
    file's records, and no chunk starts inside the field."""
    data, _ = _telco_with_notes(40, note_at=20, note=_forged_note())
    whole = _records(data)
    start = data.index(b"C00020")
    stop = data.index(b"\n", data.index(b"will call back")) + 2  # the record's end, and a little past it
    assert stop - start > 200
    for edge in range(start - 3, stop + 3):
        first, second = _parts(tmp_path, data, [edge])
        got = _records(first) + _records(second)[1:]  # the second chunk repeats the header
        assert got == whole, f"chunk edge at byte {edge}"
        assert second.startswith(first.split(b"\n", 1)[0])


# Fields that are hard on a boundary search: quotes, delimiters and line breaks at either end, and
# quoted fields whose text is itself CSV.
_FIELD = st.text(alphabet='a,"\n\r x', max_size=12) | st.sampled_from(['",a,"', ",\n,", '""', "\n", '"', 'a"b'])


@st.composite
def _csv_file(draw):
    """A CSV as a writer makes it (quotes where needed), with some rows ending in irregular quoting that
    readers accept (a stray quote is text, text after a closing quote joins the field), and the byte
    offset where each record starts."""
    rows = draw(st.lists(st.lists(_FIELD, min_size=1, max_size=4), min_size=1, max_size=30))
    out, starts = io.StringIO(), []
    writer = csv.writer(out, lineterminator="\n")
    for row in rows:
        starts.append(len(out.getvalue().encode()))
        if draw(st.booleans()) and all(f and f[0] != '"' and not set(f) & set(',\n\r"') for f in row[:-1]):
            # A quote inside an unquoted field is text; text after a closing quote joins the field.
            out.write(",".join(row[:-1] + [draw(st.sampled_from(['q"uote', '"x"y', '"x""y"z']))]) + "\n")
        else:
            writer.writerow(row)
    return out.getvalue().encode(), starts


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_csv_file(), st.data())
def test_record_start_finds_the_next_record_whatever_the_quoting(made, data):
    body, starts = made
    size = len(body)
    longest = max(b - a for a, b in zip(starts, [*starts[1:], size], strict=False))
    limit = max(longest, 8)
    for at in data.draw(st.lists(st.integers(0, size), min_size=1, max_size=8)):
        want = min([s for s in starts if s >= at] + [size])
        assert record_start(lambda a, b: body[a : b + 1], at, size, limit=limit) == want


def test_a_record_longer_than_the_limit_at_an_edge_is_refused_by_name(tmp_path):
    data = b"id,notes\n" + b'1,"' + b"y\n" * (MAX_RECORD_BYTES // 2 + 10) + b'"\n2,ok\n'
    with pytest.raises(DataValidationError, match="longer than 65536 bytes"):
        _parts(tmp_path, data, [MAX_RECORD_BYTES])


def test_header_with_a_quoted_line_break_is_one_record(tmp_path):
    data = b'id,"two\nlines",x\n1,2,3\n4,5,6\n'
    first, second = _parts(tmp_path, data, [len(data) - 4])
    assert _records(second)[0] == ["id", "two\nlines", "x"]
    assert _records(first) + _records(second)[1:] == _records(data)
