"""The one-pass pandas reference of batch scoring, kept with the tests that compare against it.

``BatchScorer.score_csv`` is a pipeline of row blocks with worker threads; this is the same job done
the simple way, on one whole frame, through the scorer's public pieces. The pipeline must match it
byte for byte (tests/unit/test_batch_pipeline.py).

    frame, malformed = parse_csv(data, scorer.schema)
    reference = score_frame(scorer, frame, options, malformed)
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from churnguard.domain.batch import RISK_LEVELS, BatchOptions, BatchScorer, ChunkResult, reasons_json, validate_encode
from churnguard.domain.batch.chunks import check_columns, header_columns, malformed_lines, place_unreadable_lines
from churnguard.domain.batch.encoding import strip_ids
from churnguard.domain.errors import DataValidationError
from churnguard.domain.schema import Schema


def parse_csv(data: bytes, schema: Schema, source: str = "input") -> tuple[pd.DataFrame, list[tuple[int, str]]]:
    """Read a CSV chunk as raw strings; returns (frame, [(line, problem)] of unreadable lines)."""
    check_columns(header_columns(data), schema, source)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, on_bad_lines="warn", encoding="utf-8")
        except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError is a ValueError
            raise DataValidationError(f"{source} is not a readable CSV: {e}") from e
    df.columns = [c.strip() for c in df.columns]
    return df, malformed_lines(caught)


def score_frame(
    scorer: BatchScorer,
    df: pd.DataFrame,
    options: BatchOptions | None = None,
    malformed: Sequence[tuple[int, str]] = (),
    data: bytes = b"",
) -> ChunkResult:
    """``data``: the chunk's bytes, where unreadable lines (``malformed``) are read again for their values."""
    options = options or BatchOptions()
    schema, encoder, predictor = scorer.schema, scorer.encoder, scorer.predictor
    id_column = schema.id_column or "row"
    X, bad, problems = validate_encode(df, encoder, schema.id_column)
    good = ~bad
    Xg = X[good] if bad.any() else X
    ids = strip_ids(df[id_column].to_numpy(dtype=object)[good]) if schema.id_column else np.flatnonzero(good) + 1
    p = predictor.calibration.apply(scorer.probabilities(Xg)) if len(Xg) else np.empty(0)
    level_idx = np.searchsorted(scorer.band_edges, p, side="right")  # 0 low, 1 medium, 2 high
    risk = np.array(RISK_LEVELS, dtype=object)[level_idx]
    reasons = np.full(len(Xg), "", dtype=object)
    if options.reasons != "none" and len(Xg):
        floor = {"all": 0, "medium": 1, "high": 2}[options.reasons]
        want = np.flatnonzero(level_idx >= floor)
        if len(want):
            Xw = Xg[want]
            contrib = (
                scorer.path_contributions(Xw)
                if options.reason_method == "path"
                else scorer.booster.predict(Xw, pred_contrib=True)
            )
            reasons[want] = reasons_json(contrib, Xw, encoder, options.top)
    rejected: list[dict[str, Any]] = []
    if bad.any():
        raw = df.to_dict(orient="records")
        for r in np.flatnonzero(bad).tolist():
            rejected.append({"row": r + 1, "reason": "; ".join(problems.get(r, ["invalid row"])), "values": raw[r]})
    rejected = place_unreadable_lines(data, rejected, malformed)
    return ChunkResult(
        model_version=predictor.version,
        rows_in=len(df) + len(malformed),
        ids=ids,
        probability=p,
        will_churn=p >= predictor.threshold,
        risk_level=risk,
        reasons=reasons,
        rejected_rows=rejected,
        options=options,
        id_column=id_column,
        engine=scorer.engine,
    )
