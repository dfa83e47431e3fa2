"""Batch scoring: many customers at once, column by column, with nothing lost.

One chunk of CSV (raw bytes) goes in; scored rows, rejected rows with the reason, and counts
that reconcile (``rows_in == scored + rejected``) come out. Every step works on whole columns:
categoricals are looked up per distinct value, numbers are parsed by pandas, the model scores
the matrix in one call, and reasons are assembled as strings by numpy. Python loops run only
over distinct values, over features, or over rejected rows (and once over output lines, to join them).

``score_csv`` runs as a pipeline of row blocks (``BLOCK_ROWS``): while the main thread parses and
validates one block and formats another, worker threads score the blocks in between (numpy and
LightGBM's C calls release the GIL); blocks finish in order, so the output is byte-identical to
the one-pass ``score_frame(parse_csv(...))`` (tests/unit/test_batch_pipeline.py).

Scores come from exact leaf tables when the model is a forest of small trees, as ours is
(leaf_tables.py: LightGBM's numbers bit for bit, about 7 times faster than walking 467 trees per
row), spot-checked against LightGBM on every block; otherwise from LightGBM itself.

Reasons in batch come from *path attributions* by default (each split on a customer's path
credits its change in expected log-odds to the split feature, as in ``treeinterpreter``): they
are a table lookup per leaf, gathered tree by tree for the rows that get reasons. Exact TreeSHAP
(what the online API returns) costs about 350 µs a row and can be chosen per job with
``reason_method="treeshap"``. Reasons are computed for rows at or above a risk level
(``reasons="high"`` by default); the chunk summary says how many rows carry them.
The ``lightgbm`` package, scipy and scikit-learn are not needed: LightGBM is called through lib_lightgbm.

    scorer = BatchScorer(predictor, bundle.model_text)
    result = scorer.score_csv(csv_bytes, BatchOptions(reasons="medium"))
    assert result.rows_in == result.scored + result.rejected
    body, errors = result.scores_csv(), result.errors_csv()
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import os
import re
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from churnguard.domain.booster import NativeBooster
from churnguard.domain.errors import ArtifactIntegrityError, DataValidationError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.leaf_tables import LeafTables, parse_model_text
from churnguard.domain.schema import MISSING_STRINGS, CategoricalFeature, NumericFeature, Schema

if TYPE_CHECKING:
    import pandas as pd

    from churnguard.domain.predictor import Predictor

log = logging.getLogger(__name__)
RISK_LEVELS = ("low", "medium", "high")
REASON_LEVELS = ("all", "medium", "high", "none")
REASON_METHODS = ("path", "treeshap")
OUTPUT_COLUMNS = ("churn_probability", "will_churn", "risk_level", "reasons", "model_version")
# A line longer than this cannot be located from a byte range (the Telco rows are ~250 bytes).
MAX_LINE_BYTES = 64 * 1024
DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024
# Rows per pipeline block in BatchScorer.score_csv (~9 MB of Telco CSV): big enough that a LightGBM
# call amortises its setup, small enough that parsing, scoring and formatting overlap.
BLOCK_ROWS = 65536


@dataclass(frozen=True)
class BatchOptions:
    """Per-job choices. ``reasons``: lowest risk level that gets reasons (all|medium|high|none)."""

    reasons: str = "high"
    reason_method: str = "path"
    top: int = 3

    def __post_init__(self) -> None:
        if self.reasons not in REASON_LEVELS:
            raise DataValidationError(f"reasons must be one of {', '.join(REASON_LEVELS)}, not {self.reasons!r}")
        if self.reason_method not in REASON_METHODS:
            raise DataValidationError(
                f"reason_method must be one of {', '.join(REASON_METHODS)}, not {self.reason_method!r}"
            )
        if not isinstance(self.top, int) or not 1 <= self.top <= 10:
            raise DataValidationError(f"top must be an integer in [1, 10], not {self.top!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> BatchOptions:
        data = dict(data or {})
        known = {"reasons", "reason_method", "top"}
        unknown = set(data) - known
        if unknown:
            raise DataValidationError(f"unknown batch options {sorted(unknown)} (known: {sorted(known)})")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ----- reading ----------------------------------------------------------------------------
def header_columns(data: bytes) -> list[str]:
    """The column names on the first line of a CSV chunk."""
    first = data.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataValidationError(f"the header line is not UTF-8 text: {e}") from e
    return [c.strip() for c in next(csv.reader([text]), [])]


def check_columns(columns: Sequence[str], schema: Schema, source: str = "input") -> None:
    """Raise DataValidationError naming every column the model needs and the input lacks."""
    needed = schema.feature_names + ([schema.id_column] if schema.id_column else [])
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataValidationError(
            f"{source} does not match schema {schema.name!r}: missing columns {', '.join(missing)} "
            f"(found: {', '.join(columns[:30]) or 'no header'})"
        )


_SKIPPED = re.compile(r"Skipping line (\d+): (.*)")


def parse_csv(data: bytes, schema: Schema, source: str = "input") -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Read a CSV chunk as raw strings; returns (frame, [(line, problem)] of unreadable lines)."""
    import pandas as pd

    columns = header_columns(data)
    check_columns(columns, schema, source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = pd.read_csv(
                io.BytesIO(data),
                dtype=str,
                keep_default_na=False,
                on_bad_lines="warn",
                encoding="utf-8",
            )
        except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError is a ValueError
            raise DataValidationError(f"{source} is not a readable CSV: {e}") from e
    # All columns are read (``usecols`` would hide lines with too many fields); the header may be padded.
    df.columns = [c.strip() for c in df.columns]
    return df, _malformed_lines(caught)


def _malformed_lines(caught: list[Any]) -> list[tuple[int, str]]:
    """(line number, pandas' complaint) for each line pandas skipped as malformed."""
    out: list[tuple[int, str]] = []
    for w in caught:
        for line in str(w.message).splitlines():
            m = _SKIPPED.match(line.strip())
            if m:
                out.append((int(m.group(1)), m.group(2)))
    return out


def slice_lines(buf: bytes, buf_start: int, start: int, end: int, at_eof: bool) -> bytes:
    """The lines of one byte range: those *starting* in [start, end).

    ``buf`` holds the object's bytes from ``buf_start`` (``start - 1`` or 0) to at least
    ``end - 1 + MAX_LINE_BYTES`` or the end of the object; adjacent ranges therefore share
    no line and miss none.
    """
    rel = start - buf_start
    if start == 0:
        first = 0
    elif buf[rel - 1 : rel] == b"\n":
        first = rel
    else:
        nl = buf.find(b"\n", rel)
        first = len(buf) if nl < 0 else nl + 1
    last_nl = buf.find(b"\n", max(end - 1 - buf_start, first))
    if last_nl < 0:
        if not at_eof:
            raise DataValidationError(f"a line near byte {end} is longer than {MAX_LINE_BYTES} bytes")
        stop = len(buf)
    else:
        stop = last_nl + 1
    return buf[first:stop] if first < stop else b""


def plan_chunks(objects: Iterable[tuple[str, int]], chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> list[dict[str, Any]]:
    """Split input objects ``(uri, size)`` into byte ranges of about ``chunk_bytes``.

    >>> plan_chunks([("s3://b/a.csv", 10)], chunk_bytes=4)[1]
    {'chunk_id': '00001', 'input': 's3://b/a.csv', 'start': 4, 'end': 8, 'size': 10}
    """
    if chunk_bytes < MAX_LINE_BYTES:
        raise DataValidationError(f"chunk_bytes must be at least {MAX_LINE_BYTES}")
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


# ----- validation and encoding --------------------------------------------------------------
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

    if id_column and not _all_plain(df[id_column].to_numpy(dtype=object)):
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
    table = {c: i for i, c in enumerate(feat.categories)}
    code_of = np.empty(len(uniques) + 1, dtype=np.float64)  # last slot: NaN from factorize (-1)
    problem_of = np.full(len(uniques) + 1, None, dtype=object)
    for u, raw in enumerate(list(uniques) + [None]):
        s = "" if raw is None else str(raw).strip()
        if s.lower() in MISSING_STRINGS:
            code_of[u] = math.nan
            if not feat.nullable:
                problem_of[u] = f"{feat.name}: missing value not allowed"
        elif s in table:
            code_of[u] = table[s]
        else:
            code_of[u] = math.nan
            problem_of[u] = f"{feat.name}: {_short(s)!r} is not one of {', '.join(feat.categories)}"
    encoded = code_of[codes]  # codes == -1 picks the last slot
    bad_u = np.array([p is not None for p in problem_of], dtype=bool)
    if not bad_u.any():
        return encoded, None
    rows = np.flatnonzero(bad_u[codes])
    return encoded, (rows, problem_of[codes[rows]])


def _encode_numeric(values: np.ndarray, feat: NumericFeature) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    import pandas as pd

    nums = pd.to_numeric(pd.Series(values, copy=False), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan, copy=True
    )
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


# ----- explanations ---------------------------------------------------------------------------
class BatchBooster(NativeBooster):
    """A NativeBooster for whole chunks: all cores by default."""

    def __init__(self, model_text: str, num_threads: int = 0) -> None:
        # 0 = the cores this process may run on (Lambda at 2048 MB gets ~1.15 vCPU, exposed as 2 cores),
        # said explicitly: LightGBM's "default" is whatever OpenMP count the process last set.
        super().__init__(model_text, num_threads=num_threads if num_threads > 0 else _available_cores())
        self.model_text = model_text


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class PathExplainer:
    """Path attributions for a LightGBM model, as a (leaf -> per-feature change) table.

    For every leaf, the changes in node value along its path are credited to the split
    features; a row's attribution is the sum over trees of its leaves' rows of the table.
    Columns: one per feature plus the bias (the sum of root values), so each row sums to
    the raw score, as TreeSHAP's do. The table is read from the model text.
    """

    def __init__(self, booster: BatchBooster) -> None:
        self.booster = booster
        trees = _parse_trees(booster.model_text)
        self.n_features = booster.num_feature()
        tables: list[np.ndarray] = []
        offsets = [0]
        for tree in trees:
            tables.append(self._table(tree))
            offsets.append(offsets[-1] + len(tables[-1]))
        self.table = np.vstack(tables)
        self.offsets = np.asarray(offsets[:-1], dtype=np.int64)

    def _table(self, tree: dict[str, list[float]]) -> np.ndarray:
        F = self.n_features
        n_leaves = int(tree["num_leaves"][0])
        table = np.zeros((n_leaves, F + 1), dtype=np.float64)
        if n_leaves == 1:
            table[0, F] = tree["leaf_value"][0]
            return table
        internal, leaf = tree["internal_value"], tree["leaf_value"]
        table[:, F] = internal[0]
        stack: list[tuple[int, np.ndarray]] = [(0, np.zeros(F))]
        while stack:
            node, acc = stack.pop()
            f = int(tree["split_feature"][node])
            for child in (int(tree["left_child"][node]), int(tree["right_child"][node])):
                nxt = acc.copy()
                if child < 0:
                    nxt[f] += leaf[~child] - internal[node]
                    table[~child, :F] = nxt
                else:
                    nxt[f] += internal[child] - internal[node]
                    stack.append((child, nxt))
        return table

    def contributions(self, X: np.ndarray) -> np.ndarray:
        return self.from_leaves(self.booster.predict_leaves(X))

    def from_leaves(self, leaves: np.ndarray, block: int = 8192) -> np.ndarray:
        """Attributions (n, features + 1) from each row's leaf in each tree, an (n, trees) array."""
        n = len(leaves)
        idx = np.ascontiguousarray((leaves + self.offsets[None, :]).T)  # (trees, rows)
        out = np.empty((n, self.n_features + 1), dtype=np.float64)
        if n == 0:
            return out
        tmp = np.empty((min(block, n), self.n_features + 1), dtype=np.float64)
        for b in range(0, n, block):
            # Tree by tree, in tree order (the sums are the same, bit for bit, as adding each row's
            # (trees, features) gather): one (rows, features) gather per tree, no 3-D temporary.
            o, rows = out[b : b + block], idx[:, b : b + block]
            t_ = tmp[: o.shape[0]]
            np.take(self.table, rows[0], axis=0, out=o)
            for t in range(1, rows.shape[0]):
                np.take(self.table, rows[t], axis=0, out=t_)
                o += t_
        return out


def _parse_trees(model_text: str) -> list[dict[str, list[float]]]:
    keys = ("num_leaves", "split_feature", "left_child", "right_child", "leaf_value", "internal_value")
    trees = [{k: [float(x) for x in t[k]] for k in keys if k in t} for t in parse_model_text(model_text)[1]]
    if not trees:
        raise ArtifactIntegrityError("the model text holds no trees")
    return trees


def reasons_json(contrib: np.ndarray, X: np.ndarray, encoder: FeatureEncoder, top: int) -> np.ndarray:
    """JSON arrays of the top reasons per row, in the API's shape, built column-wise.

    ``contrib`` has one column per feature (a trailing bias column is ignored).
    """
    m = len(X)
    if m == 0:
        return np.empty(0, dtype=object)
    c = contrib[:, : encoder.n_features]
    mag = np.where(np.isnan(c), 0.0, np.abs(c))
    order = np.argsort(-mag, axis=1, kind="stable")[:, :top]
    rows = np.arange(m)
    S = np.dtypes.StringDType()
    names = np.array([json.dumps(n) for n in encoder.names], dtype=S)
    out = np.full(m, "[", dtype=S)
    for k in range(order.shape[1]):
        j = order[:, k]
        ck = c[rows, j]
        present = mag[rows, j] > 0
        values = np.empty(m, dtype=S)
        for f in np.unique(j).tolist():
            sel = j == f
            uniq, inv = np.unique(X[sel, f], return_inverse=True)
            decoded = np.array([json.dumps(encoder.decode(f, float(u))) for u in uniq], dtype=S)
            values[sel] = decoded[inv]
        effect = np.where(
            ck > 0, ',"effect":"increases risk","contribution":', ',"effect":"decreases risk","contribution":'
        )
        item = np.strings.add(
            np.strings.add(np.strings.add('{"feature":', names[j]), np.strings.add(',"value":', values)),
            np.strings.add(np.strings.add(effect.astype(S), np.round(ck, 4).astype(S)), "}"),
        )
        sep = "" if k == 0 else ","
        out = np.where(present, np.strings.add(np.strings.add(out, sep), item), out)
    return np.strings.add(out, "]").astype(object)


# ----- scoring ----------------------------------------------------------------------------------
@dataclass
class ChunkResult:
    """Scores and rejections of one chunk. ``rows_in == scored + rejected`` always holds."""

    model_version: str
    rows_in: int
    ids: np.ndarray
    probability: np.ndarray
    will_churn: np.ndarray
    risk_level: np.ndarray
    reasons: np.ndarray  # JSON text per scored row, "" where not computed
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    options: BatchOptions = field(default_factory=BatchOptions)
    id_column: str = "customerID"
    body: bytes | None = None  # the scores CSV without its header, when already formatted
    engine: str = "lightgbm"  # what computed the scores: "leaf-tables" or "lightgbm" (BatchScorer.engine)

    @property
    def scored(self) -> int:
        return len(self.ids)

    @property
    def rejected(self) -> int:
        return len(self.rejected_rows)

    @property
    def reasons_computed(self) -> int:
        return int(np.count_nonzero(self.reasons != "")) if len(self.reasons) else 0

    def counts(self) -> dict[str, Any]:
        levels, n = np.unique(self.risk_level, return_counts=True)
        return {
            "rows_in": self.rows_in,
            "scored": self.scored,
            "rejected": self.rejected,
            "reasons_computed": self.reasons_computed,
            "risk_levels": {str(k): int(v) for k, v in zip(levels.tolist(), n.tolist(), strict=False)},
            "model_version": self.model_version,
            "engine": self.engine,
        }

    def scores_csv(self) -> bytes:
        """``id,churn_probability,will_churn,risk_level,reasons,model_version``, one row per scored customer."""
        header = ",".join((self.id_column, *OUTPUT_COLUMNS)) + "\n"
        if self.body is not None:  # formatted block by block while the chunk was scored
            return header.encode() + self.body
        if self.scored == 0:
            return header.encode()
        return header.encode() + _score_lines(
            self.ids, self.probability, self.will_churn, self.risk_level, self.reasons, self.model_version
        )

    def errors_csv(self) -> bytes:
        """One row per rejected input row: where it was, why, and its original values."""
        buf = io.StringIO()
        cols: list[str] = ["row", "reason"]
        for r in self.rejected_rows:
            for k in r.get("values", {}):
                if k not in cols:
                    cols.append(k)
        w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for r in self.rejected_rows:
            w.writerow({"row": r["row"], "reason": r["reason"], **r.get("values", {})})
        return buf.getvalue().encode()

    def score_items(self) -> Iterable[tuple[str, float, bool, str, str]]:
        """(customer id, probability, will_churn, risk level, reasons JSON) per scored row."""
        return zip(
            self.ids.tolist(),
            np.round(self.probability, 4).tolist(),
            self.will_churn.tolist(),
            self.risk_level.tolist(),
            self.reasons.tolist(),
            strict=False,
        )


def _score_lines(
    ids: np.ndarray,
    probability: np.ndarray,
    will_churn: np.ndarray,
    risk_level: np.ndarray,
    reasons: np.ndarray,
    model_version: str,
) -> bytes:
    """The output lines (each ending in a newline) of scored rows, built column-wise.

    ``churn_probability,will_churn,risk_level`` takes few distinct values (probabilities are rounded
    to 4 places), so that middle part is formatted once per distinct value and gathered.
    """
    n = len(ids)
    if n == 0:
        return b""
    S = np.dtypes.StringDType()
    churn = np.asarray(will_churn, dtype=bool)
    level = (risk_level == "medium").astype(np.int64) + 2 * (risk_level == "high")
    known = (risk_level == "low") | (level > 0)
    with np.errstate(invalid="ignore"):
        k = np.rint(probability * 1e4)
    if known.all() and np.isfinite(k).all() and k.min() >= 0 and k.max() <= 10_000:
        code = k.astype(np.int64) * 6 + churn * 3 + level
        _, first, inv = np.unique(code, return_index=True, return_inverse=True)
        which = inv.tolist()
    else:  # not a probability, or an unknown level: format every row
        first, which = np.arange(n), range(n)
    mid = np.strings.add(
        np.round(probability[first], 4).astype(S), np.where(churn[first], ",true,", ",false,").astype(S)
    )
    mids = np.strings.add(np.strings.add(mid, np.asarray(risk_level[first]).astype(S)), ",").tolist()
    cells = np.asarray(reasons, dtype=object)
    texts = cells.tolist()
    has = np.flatnonzero(cells != "")
    if len(has):
        for i, text in zip(has.tolist(), _csv_field(cells[has].astype(S)).tolist(), strict=False):
            texts[i] = text
    version = "," + _csv_field(np.array([model_version], dtype=S))[0] + "\n"
    try:
        ids_l = _csv_field(np.asarray(ids, dtype=object)).tolist()
    except TypeError:  # not all text (row numbers when the schema has no id column)
        ids_l = _csv_field(np.asarray(ids).astype(S)).tolist()
    return "".join([f"{i}," + mids[c] + r + version for i, c, r in zip(ids_l, which, texts, strict=False)]).encode()


def _csv_field(a: np.ndarray) -> np.ndarray:
    """Quote the cells that need it (RFC 4180)."""
    cells = a.tolist()
    joined = "".join(cells)  # one fast scan when (as usual) no cell needs quotes
    if "," not in joined and '"' not in joined and "\n" not in joined:
        return a
    return np.array(
        ['"' + c.replace('"', '""') + '"' if ("," in c or '"' in c or "\n" in c) else c for c in cells], dtype=a.dtype
    )


@dataclass
class _Block:
    """One block of rows on its way through ``BatchScorer.score_csv``."""

    X: np.ndarray
    ids: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    rejected: list[dict[str, Any]] = field(default_factory=list)
    p: np.ndarray = field(default_factory=lambda: np.empty(0))
    level_idx: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    want: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    contrib: np.ndarray | None = None
    risk: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    will_churn: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=bool))
    reasons: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))
    body: bytes = b""


class BatchScorer:
    """Scores CSV chunks with one model version; build once per version and reuse."""

    def __init__(self, predictor: Predictor, model_text: str, num_threads: int = 0, use_tables: bool = True) -> None:
        """``num_threads``: scoring threads, 0 = the cores this process may run on.

        They run as that many single-threaded workers, each scoring whole blocks: measured on 2
        cores, about 8% more rows/s than one two-thread OpenMP call per block, whose static split
        waits for whichever thread the parsing thread has pre-empted.
        """
        self.predictor = predictor
        self.workers = num_threads if num_threads > 0 else _available_cores()
        self.booster = BatchBooster(model_text, num_threads=1)
        # Exact leaf tables when the model is a forest of small trees (leaf_tables.py); else LightGBM.
        self.tables = LeafTables.build(self.booster, model_text) if use_tables else None
        self.schema = predictor.schema
        self.encoder = predictor.encoder
        self._explainer: PathExplainer | None = None
        self._band_edges = np.array([predictor.bands.medium, predictor.bands.high])
        self._executor: ThreadPoolExecutor | None = None

    @property
    def explainer(self) -> PathExplainer:
        if self._explainer is None:
            self._explainer = PathExplainer(self.booster)
        return self._explainer

    @property
    def engine(self) -> str:
        """What computes the scores: ``leaf-tables`` or ``lightgbm``."""
        return "leaf-tables" if self.tables is not None else "lightgbm"

    def _probabilities(self, X: np.ndarray) -> np.ndarray:
        """The model's (uncalibrated) probabilities, as LightGBM's; a table result is spot-checked."""
        tables = self.tables
        if tables is None or len(X) == 0:
            return self.booster.predict(X)
        p = tables.predict(X)
        rows = _sample_rows(len(X))
        if not np.array_equal(p[rows], self.booster.predict(X[rows]), equal_nan=True):
            return self._give_up_tables("probabilities", X, self.booster.predict)
        return p

    def _path_contributions(self, X: np.ndarray) -> np.ndarray:
        """Path attributions; from the leaf tables (spot-checked against LightGBM's leaves) when in use."""
        tables, explainer = self.tables, self.explainer
        if tables is None or len(X) == 0:
            return explainer.contributions(X)
        contrib = tables.leaf_sums(X, explainer.table, explainer.offsets)
        rows = _sample_rows(len(X))
        if not np.array_equal(contrib[rows], explainer.contributions(X[rows])):
            return self._give_up_tables("path attributions", X, explainer.contributions)
        return contrib

    def _give_up_tables(self, what: str, X: np.ndarray, exact: Any) -> np.ndarray:
        """A table result differed from LightGBM's: never use the tables again for this model."""
        log.error(
            "leaf tables disagree with LightGBM on %s for model %s; scoring with LightGBM from now on",
            what,
            self.predictor.version,
        )
        self.tables = None
        return exact(X)

    def score_csv(
        self, data: bytes, options: BatchOptions | None = None, source: str = "input", block_rows: int = BLOCK_ROWS
    ) -> ChunkResult:
        """Score a CSV chunk as a pipeline of row blocks, with the same result as ``score_frame(parse_csv(...))``.

        The main thread parses and validates block k+1 and formats block k-1 while a worker thread
        runs LightGBM (whose C call releases the GIL) on block k: scores, risk levels and the leaf
        attributions of the rows that get reasons.
        """
        import pandas as pd

        options = options or BatchOptions()
        columns = header_columns(data)
        check_columns(columns, self.schema, source)
        id_column = self.schema.id_column or "row"
        floor = {"all": 0, "medium": 1, "high": 2, "none": 3}[options.reasons]
        blocks: list[_Block] = []
        rows_in = 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                reader = pd.read_csv(
                    io.BytesIO(data),
                    dtype=str,
                    keep_default_na=False,
                    on_bad_lines="warn",
                    encoding="utf-8",
                    chunksize=block_rows,
                )
            except (ValueError, UnicodeDecodeError) as e:
                raise DataValidationError(f"{source} is not a readable CSV: {e}") from e
            pending: deque[tuple[_Block, Any]] = deque()
            try:
                while True:
                    try:
                        df = next(reader, None)
                    except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError is a ValueError
                        raise DataValidationError(f"{source} is not a readable CSV: {e}") from e
                    if df is None:
                        break
                    df.columns = [c.strip() for c in df.columns]
                    block = self._prepare_block(df, rows_in)
                    rows_in += len(df)
                    pending.append((block, self._pool().submit(self._score_block, block, floor, options)))
                    if len(pending) > self.workers:  # keep every worker busy, finish blocks in order
                        self._finish_block(*pending[0], options)
                        blocks.append(pending.popleft()[0])
                while pending:
                    self._finish_block(*pending[0], options)
                    blocks.append(pending.popleft()[0])
            finally:
                for _, future in pending:  # an error above: let the workers finish before leaving
                    future.cancel() or future.exception()
        malformed = _malformed_lines(caught)
        rejected = [r for b in blocks for r in b.rejected]
        for line, problem in malformed:
            rejected.append({"row": f"line {line}", "reason": f"unreadable line: {problem}", "values": {}})

        def cat(name: str, dtype: Any) -> np.ndarray:
            parts = [getattr(b, name) for b in blocks]
            return np.concatenate(parts) if parts else np.empty(0, dtype=dtype)

        return ChunkResult(
            model_version=self.predictor.version,
            rows_in=rows_in + len(malformed),
            ids=cat("ids", object),
            probability=cat("p", np.float64),
            will_churn=cat("will_churn", bool),
            risk_level=cat("risk", object),
            reasons=cat("reasons", object),
            rejected_rows=rejected,
            options=options,
            id_column=id_column,
            body=b"".join(b.body for b in blocks),
            engine=self.engine,  # after the spot checks: "lightgbm" if one failed
        )

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="lightgbm")
        return self._executor

    def _prepare_block(self, df: pd.DataFrame, offset: int) -> _Block:
        """Validate and encode one block of rows (main thread); ``offset`` = rows before it in the chunk."""
        X, bad, problems = validate_encode(df, self.encoder, self.schema.id_column)
        good = ~bad
        block = _Block(X=X[good] if bad.any() else X)
        if self.schema.id_column:
            block.ids = _strip(df[self.schema.id_column].to_numpy(dtype=object)[good])
        else:
            block.ids = np.flatnonzero(good) + 1 + offset
        if bad.any():
            rows = np.flatnonzero(bad)
            raw = df.iloc[rows].to_dict(orient="records")
            block.rejected = [
                {"row": offset + r + 1, "reason": "; ".join(problems.get(r, ["invalid row"])), "values": v}
                for r, v in zip(rows.tolist(), raw, strict=False)
            ]
        return block

    def _score_block(self, block: _Block, floor: int, options: BatchOptions) -> None:
        """Scores, risk levels and attributions of one block (worker thread: mostly C code without the GIL)."""
        Xg = block.X
        block.p = self.predictor.calibration.apply(self._probabilities(Xg)) if len(Xg) else np.empty(0)
        block.level_idx = np.searchsorted(self._band_edges, block.p, side="right")  # 0 low, 1 medium, 2 high
        block.want = np.flatnonzero(block.level_idx >= floor) if len(Xg) else np.empty(0, dtype=np.int64)
        if len(block.want):
            Xw = Xg[block.want]
            block.contrib = (
                self._path_contributions(Xw)
                if options.reason_method == "path"
                else self.booster.predict(Xw, pred_contrib=True)
            )

    def _finish_block(self, block: _Block, future: Any, options: BatchOptions) -> None:
        """Wait for the block's scores, then build its reasons and output lines (main thread)."""
        future.result()
        n = len(block.X)
        block.risk = np.array(RISK_LEVELS, dtype=object)[block.level_idx]
        block.will_churn = block.p >= self.predictor.threshold
        block.reasons = np.full(n, "", dtype=object)
        if len(block.want):
            block.reasons[block.want] = reasons_json(block.contrib, block.X[block.want], self.encoder, options.top)
        block.body = _score_lines(
            block.ids, block.p, block.will_churn, block.risk, block.reasons, self.predictor.version
        )
        block.X = block.contrib = None  # type: ignore[assignment]

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def score_frame(
        self, df: pd.DataFrame, options: BatchOptions | None = None, malformed: Sequence[tuple[int, str]] = ()
    ) -> ChunkResult:
        options = options or BatchOptions()
        id_column = self.schema.id_column or "row"
        X, bad, problems = validate_encode(df, self.encoder, self.schema.id_column)
        good = ~bad
        Xg = X[good] if bad.any() else X
        if self.schema.id_column:
            ids = _strip(df[id_column].to_numpy(dtype=object)[good])
        else:
            ids = np.flatnonzero(good) + 1
        p = self.predictor.calibration.apply(self._probabilities(Xg)) if len(Xg) else np.empty(0)
        level_idx = np.searchsorted(self._band_edges, p, side="right")  # 0 low, 1 medium, 2 high
        risk = np.array(RISK_LEVELS, dtype=object)[level_idx]
        reasons = np.full(len(Xg), "", dtype=object)
        if options.reasons != "none" and len(Xg):
            floor = {"all": 0, "medium": 1, "high": 2}[options.reasons]
            want = np.flatnonzero(level_idx >= floor)
            if len(want):
                Xw = Xg[want]
                contrib = (
                    self._path_contributions(Xw)
                    if options.reason_method == "path"
                    else self.booster.predict(Xw, pred_contrib=True)
                )
                reasons[want] = reasons_json(contrib, Xw, self.encoder, options.top)
        rejected: list[dict[str, Any]] = []
        if bad.any():
            raw = df.to_dict(orient="records")
            for r in np.flatnonzero(bad).tolist():
                rejected.append({"row": r + 1, "reason": "; ".join(problems.get(r, ["invalid row"])), "values": raw[r]})
        for line, problem in malformed:
            rejected.append({"row": f"line {line}", "reason": f"unreadable line: {problem}", "values": {}})
        return ChunkResult(
            model_version=self.predictor.version,
            rows_in=len(df) + len(malformed),
            ids=ids,
            probability=p,
            will_churn=p >= self.predictor.threshold,
            risk_level=risk,
            reasons=reasons,
            rejected_rows=rejected,
            options=options,
            id_column=id_column,
            engine=self.engine,
        )


def _sample_rows(n: int, k: int = 32) -> np.ndarray:
    """Up to ``k`` rows spread over ``n``, first and last included: the spot check of table results."""
    return np.unique(np.linspace(0, n - 1, min(n, k)).astype(np.intp))


_ASCII_SPACE = tuple(c for c in map(chr, range(128)) if c.isspace())


def _all_plain(values: np.ndarray) -> bool:
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


def _strip(a: np.ndarray) -> np.ndarray:
    import pandas as pd

    if _all_plain(a):
        return a
    codes, uniques = pd.factorize(a)
    if len(uniques) == 0:
        return a
    stripped = np.array([str(u).strip() for u in uniques], dtype=object)
    if all(s == u for s, u in zip(stripped.tolist(), list(uniques), strict=False)):
        return a
    return stripped[codes]


# ----- jobs ---------------------------------------------------------------------------------------
def summarize(chunks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add up chunk counts; raise if they do not reconcile (a lost row is a bug, not a statistic)."""
    total = {"chunks": len(chunks), "rows_in": 0, "scored": 0, "rejected": 0, "reasons_computed": 0}
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
