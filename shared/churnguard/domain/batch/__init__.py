"""Batch scoring, split by what each part does.

- ``chunks``: byte ranges of CSV inputs, the records that start in each (cut at record boundaries,
  quoted line breaks included), header checks, and the counts every job must reconcile (``summarize``);
- ``encoding``: validating and encoding a block of raw strings column by column;
- ``explanation``: path attributions and the reasons' JSON;
- ``scorer``: ``BatchScorer``, the pipeline that parses, scores and formats blocks of rows.

    scorer = BatchScorer(predictor)
    result = scorer.score_csv(csv_bytes, BatchOptions(reasons="medium"))
"""

from churnguard.domain.batch.chunks import (
    DEFAULT_CHUNK_BYTES,
    MAX_RECORD_BYTES,
    check_columns,
    chunk_records,
    header_columns,
    plan_chunks,
    record_start,
    summarize,
)
from churnguard.domain.batch.encoding import validate_encode
from churnguard.domain.batch.explanation import PathExplainer, reasons_json
from churnguard.domain.batch.scorer import (
    OUTPUT_COLUMNS,
    REASON_LEVELS,
    REASON_METHODS,
    RISK_LEVELS,
    BatchOptions,
    BatchScorer,
    ChunkResult,
)
from churnguard.domain.booster import BatchBooster

__all__ = [
    "DEFAULT_CHUNK_BYTES",
    "MAX_RECORD_BYTES",
    "OUTPUT_COLUMNS",
    "REASON_LEVELS",
    "REASON_METHODS",
    "RISK_LEVELS",
    "BatchBooster",
    "BatchOptions",
    "BatchScorer",
    "ChunkResult",
    "PathExplainer",
    "check_columns",
    "chunk_records",
    "header_columns",
    "plan_chunks",
    "reasons_json",
    "record_start",
    "summarize",
    "validate_encode",
]
