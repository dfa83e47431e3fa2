"""CSV chunks: byte ranges of input objects, the records in each, and the counts that must add up.

A job's inputs are cut into byte ranges of about ``chunk_bytes``; each range owns the CSV records
that *start* in it, so adjacent ranges share no record and miss none. A record is a row as a CSV
reader sees it: a quoted field may hold commas and line breaks, so a record boundary is a line
break outside quotes, not any line break. ``record_start`` finds the first one at or after a byte
offset by reading around that offset only (see there); both neighbours of a boundary call it with
the same arguments, so they agree on it byte for byte. A chunk's result counts its rows, and
``summarize`` adds every chunk up and refuses totals that do not reconcile.

    chunks = plan_chunks([("s3://b/a.csv", 10_000_000)], chunk_bytes=4 << 20)
    body = chunk_records(read_range, chunk["start"], chunk["end"], chunk["size"])   # header + its records
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from churnguard.domain.errors import DataValidationError
from churnguard.domain.schema import Schema

# The longest record (one CSV row, line breaks inside quoted fields included) a job accepts: a
# record boundary is located from the bytes around a chunk's edge, at most this far on each side
# (the Telco rows are ~250 bytes). A longer record near a chunk's edge is refused by name.
MAX_RECORD_BYTES = 64 * 1024
DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"

# Reads bytes first..last inclusive of one input object (an adapter's byte-range read); at the end
# of the object it returns fewer bytes than asked for.
ReadRange = Callable[[int, int], bytes]


def record_start(read: ReadRange, at: int, size: int | None = None, limit: int = MAX_RECORD_BYTES) -> int:
    """The offset of the first CSV record starting at or after byte ``at`` (the object's end if none).

    The quoting state at ``at`` cannot be known without reading from the object's start, so the
    bytes around it are read under both hypotheses, "at a record's start" and "inside a quoted
    field", each run through the reader's own rules (RFC 4180 as pandas and the csv module read it:
    a quote opens a field only at the field's start, ``""`` is a quote inside one, any other quote
    is text). A hypothesis is false when it needs a record longer than ``limit``, or ends the object
    inside quotes. When the surviving hypotheses agree, that is the answer; when they disagree
    (rare: quoted fields that themselves look like CSV for a whole window), the window grows
    backwards, up to the object's start, where the state is known. Exact for every object whose
    records are at most ``limit`` bytes; DataValidationError for a longer record near ``at``.
    """
    if at <= 0:
        return 0
    if size is not None and at >= size:
        return size
    back = limit
    while True:
        first = max(0, at - back)
        want = at + limit + 2 - first  # the record around ``at`` ends within ``limit``, plus a lookahead byte
        if size is not None:
            want = min(want, size - first)
        buf = read(first, first + want - 1) if want > 0 else b""
        at_eof = len(buf) < at + limit + 2 - first
        found = _decide(buf, at - first, at_eof, limit, known=first == 0)
        if found is not None:
            return first + found
        back *= 4  # undecided: read further back (at the object's start one hypothesis always decides)


def _decide(buf: bytes, at: int, at_eof: bool, limit: int, known: bool) -> int | None:
    """The record start >= ``at`` (an offset in ``buf``), or None when this window cannot tell."""
    if at >= len(buf):
        if at_eof:
            return len(buf)
        raise _too_long(at, limit)  # pragma: no cover - the window always reaches past ``at``
    if known:  # the window starts at the object's start: a record starts there, outside quotes
        start = 3 if buf.startswith(_BOM) else 0
        runs = [_first_record_start(buf, start, False, at, at_eof, limit, field_start=start)]
    else:
        nl = buf.find(b"\n", 0, at)
        if nl < 0:  # no line break in ``limit`` bytes before ``at``: the record around it is too long
            raise _too_long(at, limit)
        # Just after a line break the reader is at a record's start, or inside a quoted field.
        if nl + 1 >= at:  # the line break just before ``at`` ends a record, or is inside a quoted field
            runs = [at, _first_record_start(buf, at, True, at, at_eof, limit)]
        else:
            runs = [_first_record_start(buf, nl + 1, inside, at, at_eof, limit) for inside in (False, True)]
    alive = {r for r in runs if r is not None}
    if not alive:
        raise _too_long(at, limit)
    return alive.pop() if len(alive) == 1 else None


def _too_long(at: int, limit: int) -> DataValidationError:
    return DataValidationError(
        f"a CSV record near byte {at} is longer than {limit} bytes, or a quote is never closed: "
        f"records may be at most {limit} bytes, line breaks inside quoted fields included"
    )


def _first_record_start(
    buf: bytes, pos: int, inside: bool, at: int, at_eof: bool, limit: int, field_start: int = -1
) -> int | None:
    """Run the reader from ``pos`` in the given state: the first record start >= ``at``, or None when
    this run needs a record longer than ``limit`` or ends the object inside quotes."""
    n = len(buf)
    last_end = pos
    quote = buf.find(b'"', pos)
    while True:
        if inside:
            if quote < 0 or (quote + 1 >= n and not at_eof):
                return None  # no closing quote within the window: a record longer than the limit
            if buf[quote + 1 : quote + 2] == b'"':  # "" inside a quoted field
                quote = buf.find(b'"', quote + 2)
                continue
            inside = False  # the field ends here; what follows is read outside quotes
            pos = quote + 1
            quote = buf.find(b'"', pos)
            continue
        nl = buf.find(b"\n", pos)
        if quote >= 0 and (nl < 0 or quote < nl):
            # A quote opens a field only at the field's start; elsewhere it is text.
            inside = quote == field_start or (quote > 0 and buf[quote - 1 : quote] in (b",", b"\n", b"\r"))
            pos = quote + 1
            quote = buf.find(b'"', pos)
            continue
        if nl < 0 and not at_eof:
            return None  # no record end within the window
        end = n if nl < 0 else nl + 1
        if end - last_end > limit:
            return None
        if end >= at:
            return end
        last_end = pos = end


def header_record(read: ReadRange, size: int | None = None) -> bytes:
    """The header record of an object: its first CSV record, line break included."""
    end = record_start(read, 1, size)
    return read(0, end - 1) if end > 0 else b""


def chunk_records(read_range: ReadRange, start: int, end: int, size: int) -> bytes:
    """The header record plus the records that start in [start, end) of an object of ``size`` bytes."""
    if size <= 0:
        return b""
    # One read covers the chunk and the windows around both of its edges; anything else is read on demand.
    first, last = max(0, start - MAX_RECORD_BYTES), min(size - 1, end + MAX_RECORD_BYTES + 1)
    buf = read_range(first, last)

    def read(a: int, b: int) -> bytes:
        b = min(b, size - 1)
        if a >= first and b < first + len(buf):
            return buf[a - first : b - first + 1]
        return read_range(a, b)

    lo = record_start(read, start, size)
    hi = record_start(read, end, size) if end < size else size
    body = read(lo, hi - 1) if hi > lo else b""
    return body if start == 0 else header_record(read, size) + body  # the first range starts with the header


def header_columns(data: bytes) -> list[str]:
    """The column names in the header record of a CSV chunk (or of an object's header record)."""
    head = header_record(lambda a, b: data[a : b + 1], len(data))
    try:
        text = head.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataValidationError(f"the header line is not UTF-8 text: {e}") from e
    return [c.strip() for c in next(csv.reader(io.StringIO(text, newline="")), [])]


def check_columns(columns: Sequence[str], schema: Schema, source: str = "input") -> None:
    """Raise DataValidationError naming every column the model needs and the input lacks, and every
    column named twice (which value would count is anybody's guess)."""
    twice = sorted(c for c, n in Counter(columns).items() if n > 1)
    if twice:
        raise DataValidationError(
            f"{source} names these columns more than once: {', '.join(repr(c) for c in twice)} "
            f"(names are compared without surrounding spaces): rename or remove the extra ones"
        )
    needed = schema.feature_names + ([schema.id_column] if schema.id_column else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataValidationError(
            f"{source} does not match schema {schema.name!r}: missing columns {', '.join(missing)} "
            f"(found: {', '.join(columns[:30]) or 'no header'})"
        )


_SKIPPED = re.compile(r"Skipping line (\d+): (.*)")


def malformed_lines(caught: list[Any]) -> list[tuple[int, str]]:
    """(line number, pandas' complaint) for each line pandas skipped as malformed."""
    out: list[tuple[int, str]] = []
    for w in caught:
        for line in str(w.message).splitlines():
            m = _SKIPPED.match(line.strip())
            if m:
                out.append((int(m.group(1)), m.group(2)))
    return out


def place_unreadable_lines(
    data: bytes, rejected: list[dict[str, Any]], malformed: Sequence[tuple[int, str]]
) -> list[dict[str, Any]]:
    """Rejected rows numbered as in the input, unreadable lines included, in row order.

    pandas numbers the rows it reads (``row`` = its index + 1) and reports each line it skips by
    its line number (records counted from the header, blank lines included). Here every row gets
    its place back: ``row`` is the record's number after the header, blank lines not counted and
    unreadable lines counted, so a row after a skipped line keeps its true number; an unreadable
    line is reported with its original fields (the header's names, extra ones as
    ``(extra field N)``), read again with the csv module.
    """
    if not malformed:
        return rejected
    wanted = dict(malformed)
    records: dict[int, list[str]] = {}
    blanks: dict[int, int] = {}
    header: list[str] = []
    blank = 0
    try:
        reader = csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""))
        for line, record in enumerate(reader, start=1):
            if line == 1:
                header = [c.strip() for c in record]
            elif line in wanted:
                records[line], blanks[line] = record, blank
            elif not record:
                blank += 1
            if line >= max(wanted):
                break
    except (UnicodeDecodeError, csv.Error):  # pragma: no cover - pandas read it, so csv reads it too
        pass
    placed = sorted(line - 1 - blanks[line] for line in wanted if line in records)
    shift = np.array(placed) - np.arange(len(placed))  # malformed rows before each read row
    out = []
    for r in rejected:
        row = r["row"]
        if isinstance(row, int):
            r = {**r, "row": row + int(np.searchsorted(shift, row, side="right"))}
        out.append(r)
    for line, problem in sorted(wanted.items()):
        if line not in records:  # the csv module disagrees with pandas: say where pandas saw it
            out.append({"row": f"line {line}", "reason": f"unreadable line: {problem}", "values": {}})
            continue
        fields = records[line]
        names = header + [f"(extra field {i})" for i in range(1, len(fields) - len(header) + 1)]
        values = dict(zip(names, fields, strict=False))
        out.append({"row": line - 1 - blanks[line], "reason": f"unreadable line: {problem}", "values": values})
    return sorted(out, key=lambda r: (0, r["row"]) if isinstance(r["row"], int) else (1, 0))


def plan_chunks(objects: Iterable[tuple[str, int]], chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[dict[str, Any]]:
    """Split input objects ``(uri, size)`` into byte ranges of about ``chunk_bytes``.

    >>> plan_chunks([("s3://b/a.csv", 10)], chunk_bytes=4)[1]
    {'chunk_id': '00001', 'input': 's3://b/a.csv', 'start': 4, 'end': 8, 'size': 10}
    """
    if chunk_bytes < MAX_RECORD_BYTES:
        raise DataValidationError(f"chunk_bytes must be at least {MAX_RECORD_BYTES}")
    chunks: list[dict[str, Any]] = []
    for uri, size in objects:
        for start in range(0, max(size, 1), chunk_bytes):
            chunks.append(
                {
                    "chunk_id": f"{len(chunks):05d}",
                    "input": uri,
                    "start": start,
                    "end": min(start + chunk_bytes, size),
                    "size": size,
                }
            )
    return chunks


def summarize(chunks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add up chunk counts; raise if they do not reconcile (a lost row is a bug, not a statistic)."""
    total: dict[str, Any] = {"chunks": len(chunks), "rows_in": 0, "scored": 0, "rejected": 0, "reasons_computed": 0}
    levels: dict[str, int] = {}
    versions, engines = set(), set()
    for c in chunks:
        for k in ("rows_in", "scored", "rejected", "reasons_computed"):
            total[k] += int(c.get(k, 0))
        for k, v in (c.get("risk_levels") or {}).items():
            levels[k] = levels.get(k, 0) + int(v)
        if c.get("model_version"):
            versions.add(c["model_version"])
        if c.get("engine"):
            engines.add(c["engine"])
    if total["rows_in"] != total["scored"] + total["rejected"]:
        raise DataValidationError(
            f"counts do not reconcile: {total['rows_in']} rows in, {total['scored']} scored, "
            f"{total['rejected']} rejected"
        )
    total["risk_levels"] = levels
    total["model_versions"] = sorted(versions)
    total["engines"] = sorted(engines)  # "lightgbm" beside "leaf-tables": a spot check failed (see the logs)
    return total
