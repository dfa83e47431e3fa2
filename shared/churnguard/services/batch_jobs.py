"""Batch scoring use cases, one per step of the state machine; each takes its adapters.

    plan = plan_job("job-1", "s3://in/customers/", "s3://out/job-1", io, jobs, resolve_version)
    counts = score_chunk(chunk_event, io, scorer_for, scores)     # once per chunk (idempotent)
    summary = finish_job("job-1", plan, [counts, ...], io, jobs)

Every chunk is written to a key derived from its id, and customer scores are upserts, so a
chunk that runs twice overwrites its own output instead of duplicating it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from churnguard.domain.batch import (
    DEFAULT_CHUNK_BYTES,
    BatchOptions,
    BatchScorer,
    check_columns,
    header_columns,
    plan_chunks,
    summarize,
)
from churnguard.domain.csv_files import csv_problem
from churnguard.domain.errors import DataValidationError
from churnguard.domain.schema import Schema
from churnguard.services.ports import BatchIO, JobStore, ScoreStore


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def output_prefix(output: str) -> str:
    if not isinstance(output, str) or not output.strip():
        raise DataValidationError("name an output location (s3://bucket/prefix)")
    return output.rstrip("/")


def plan_job(
    job_id: str,
    input_uri: str,
    output_uri: str,
    io: BatchIO,
    jobs: JobStore | None,
    resolve: Callable[[str | None], tuple[str, Schema]],
    model_version: str | None = None,
    options: dict[str, Any] | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> dict[str, Any]:
    """Check every input's header against the model's schema, split inputs into chunks, write the manifest.

    ``resolve(version or None)`` names the model version (the champion now, if None) and its
    schema: the whole job uses that one version even if a promotion happens meanwhile.
    """
    plan, _ = _plan(job_id, input_uri, output_uri, io, resolve, model_version, options, chunk_bytes)
    if jobs is not None:
        jobs.put(job_id, {**plan, "status": "RUNNING"})
    return plan


def _plan(
    job_id: str,
    input_uri: str,
    output_uri: str,
    io: BatchIO,
    resolve: Callable[[str | None], tuple[str, Schema]],
    model_version: str | None,
    options: dict[str, Any] | None,
    chunk_bytes: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    opts = BatchOptions.from_dict(options)
    out = output_prefix(output_uri)
    manifest = f"{out}/_job/manifest.json"
    location = io.locate(manifest)  # a malformed output location fails here, before any work
    version, schema = resolve(model_version)
    objects = io.list_inputs(input_uri)
    for uri, _size in objects:
        header = io.header(uri)
        problem = csv_problem(header)  # JSON, a spreadsheet, binary...: said as such, not as missing columns
        if problem:
            raise DataValidationError(f"{uri} {problem}")
        check_columns(header_columns(header), schema, source=uri)
    chunks = plan_chunks(objects, chunk_bytes)
    io.put(manifest, json.dumps(chunks).encode(), content_type="application/json")
    plan = {
        "job_id": job_id,
        "input": input_uri,
        "output": out,
        "model_version": version,
        "options": opts.to_dict(),
        "chunks": len(chunks),
        "input_objects": len(objects),
        "input_bytes": sum(s for _, s in objects),
        "manifest": location,
        "started_at": _now(),
        "started_epoch": time.time(),
    }
    return plan, chunks


def score_chunk(
    job: dict[str, Any],
    io: BatchIO,
    scorer_for: Callable[[str], BatchScorer],
    scores: ScoreStore | None,
) -> dict[str, Any]:
    """Score one chunk.

    ``job`` = {job_id, chunk: {chunk_id, input, start, end, size}, output, model_version, options}.
    """
    try:
        chunk, out, version = job["chunk"], output_prefix(job["output"]), job["model_version"]
        cid = str(chunk["chunk_id"])
        start, end, size = int(chunk["start"]), int(chunk["end"]), int(chunk["size"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataValidationError(f"malformed chunk description: {e}") from e
    options = BatchOptions.from_dict(job.get("options"))
    started = time.perf_counter()
    data = io.read_lines(chunk["input"], start, end, size)
    result = scorer_for(version).score_csv(data, options, source=f"{chunk['input']} bytes {start}-{end}")
    io.put(f"{out}/scores/part-{cid}.csv", result.scores_csv())
    if result.rejected:
        io.put(f"{out}/errors/part-{cid}.csv", result.errors_csv())
    stored = 0
    if scores is not None and result.scored:
        stored = scores.put_many(result.score_items(), job_id=job["job_id"], scored_at=_now(), model_version=version)
    counts = result.counts()
    counts.update(
        chunk_id=cid,
        input=chunk["input"],
        bytes=len(data),
        scores_stored=stored,
        seconds=round(time.perf_counter() - started, 3),
        output=f"{out}/scores/part-{cid}.csv",
    )
    return counts


def finish_job(
    job_id: str, plan: dict[str, Any], chunk_counts: list[dict[str, Any]], io: BatchIO, jobs: JobStore | None
) -> dict[str, Any]:
    """Add up the chunks, check the counts reconcile, and record the job's summary (S3 and table)."""
    total = summarize(chunk_counts)
    if total["chunks"] != plan["chunks"]:
        raise DataValidationError(f"{plan['chunks']} chunks were planned but {total['chunks']} reported")
    started = float(plan.get("started_epoch") or time.time())
    summary = {
        "job_id": job_id,
        "status": "SUCCEEDED",
        "input": plan["input"],
        "output": plan["output"],
        "errors": f"{plan['output']}/errors/" if total["rejected"] else None,
        "model_version": plan["model_version"],
        "options": plan.get("options"),
        "reasons": {
            "computed_for": plan.get("options", {}).get("reasons", "high"),
            "method": plan.get("options", {}).get("reason_method", "path"),
            "rows": total["reasons_computed"],
        },
        **{k: total[k] for k in ("chunks", "rows_in", "scored", "rejected", "risk_levels")},
        "scoring_engines": total["engines"],
        "started_at": plan.get("started_at"),
        "finished_at": _now(),
        "duration_seconds": round(time.time() - started, 3),
    }
    io.put(
        f"{plan['output']}/_job/summary.json", json.dumps(summary, indent=2).encode(), content_type="application/json"
    )
    if jobs is not None:
        jobs.put(job_id, summary)
    return summary


def fail_job(job_id: str, error: dict[str, Any] | None, jobs: JobStore | None) -> dict[str, Any]:
    """Record why a job failed; the reason is the failing step's error message."""
    error = error or {}
    cause = error.get("Cause") or ""
    try:  # a Lambda error arrives as JSON with errorType and errorMessage
        parsed = json.loads(cause)
        reason = f"{parsed.get('errorType', error.get('Error', 'Error'))}: {parsed.get('errorMessage', cause)}"
    except (ValueError, TypeError, AttributeError):
        reason = f"{error.get('Error', 'Error')}: {cause}".strip()
    record = {"status": "FAILED", "reason": reason, "finished_at": _now()}
    if jobs is not None:
        jobs.update(job_id, record)
    return {"job_id": job_id, **record}


def score_local(
    io: BatchIO,
    input_path: str,
    output_dir: str,
    scorer: BatchScorer,
    options: dict[str, Any] | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
    progress: Callable[[str, int, int], None] | None = None,
    scores: ScoreStore | None = None,
) -> dict[str, Any]:
    """Score local CSV files through the state machine's own steps (plan, each chunk, finish);
    ``scores/part-*.csv``, ``errors/part-*.csv`` and ``_job/summary.json`` land under ``output_dir``,
    and each customer's score in ``scores`` when given (``scores_stored`` in the result)."""
    version = scorer.predictor.version
    plan, chunks = _plan(
        "local", input_path, output_dir, io, lambda _v: (version, scorer.schema), None, options, chunk_bytes
    )
    counts = []
    if progress:
        progress("scoring", 0, len(chunks))
    for i, chunk in enumerate(chunks):
        job = {
            "job_id": "local",
            "chunk": chunk,
            "output": plan["output"],
            "model_version": version,
            "options": plan["options"],
        }
        counts.append(score_chunk(job, io, lambda _v: scorer, scores))
        if progress:
            progress("scoring", i + 1, len(chunks))
    summary = finish_job("local", plan, counts, io, None)
    if scores is not None:
        summary["scores_stored"] = sum(int(c.get("scores_stored", 0)) for c in counts)
    return summary
