"""Batch scoring throughput of one function instance, end to end, against moto server S3.

Generates N Telco-schema customers (generate_customers, tiled with fresh ids), uploads them as one
CSV object to the embedded emulator, plans byte-range chunks and scores each chunk with the same
code the Lambda runs (read range from S3, parse, validate, score, reasons, write the output object).
LightGBM alone (all cores) and the leaf tables alone (one thread) on the same rows are measured in
the same run, because absolute times on a shared machine are noisy. Prints JSON (and writes it to --out).

    .venv/bin/python bench/batch_bench.py --rows 1000000 --out bench/batch_results.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import sys
import time
from datetime import date

import numpy as np

# AWS Lambda prices, us-east-1, x86, as published on https://aws.amazon.com/lambda/pricing/ (read 2026-11-21).
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
# Step Functions standard workflows: $0.025 per 1,000 state transitions (https://aws.amazon.com/step-functions/pricing/).
SFN_PER_TRANSITION = 0.025 / 1000
# DynamoDB on-demand writes: $0.625 per million write request units (https://aws.amazon.com/dynamodb/pricing/on-demand/).
DDB_PER_WRITE = 0.625 / 1_000_000
PRICES_READ_ON = "2026-11-21"


def make_csv(rows: int, seed: int = 1) -> bytes:
    from churnguard.local.synth import generate_customers

    base_n = min(rows, 100_000)
    base = generate_customers(base_n, seed=seed).drop(columns=["Churn"])
    reps = -(-rows // base_n)
    frame = base.loc[np.tile(np.arange(base_n), reps)[:rows]].reset_index(drop=True)
    frame["customerID"] = [f"{i:08d}-B" for i in range(rows)]
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def train_bundle():
    from churnguard.domain.schema import Schema
    from churnguard.domain.training import TrainingConfig, train
    from churnguard.local.synth import generate_customers
    from churnguard.services.lifecycle import build_bundle

    schema = Schema.default()
    result = train(generate_customers(5000, seed=3), schema, TrainingConfig())
    return build_bundle("v-bench", result, schema, data_sha256="0" * 64, source="synthetic")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-mb", type=int, default=64)
    ap.add_argument("--memory-mb", type=int, default=2048, help="the BatchScoreFunction's MemorySize")
    ap.add_argument("--reasons", default="high,none", help="comma-separated reason levels to measure")
    ap.add_argument("--store-sample", type=int, default=20_000, help="rows written to the score table (moto)")
    ap.add_argument("--out")
    a = ap.parse_args(argv)

    from churnguard.adapters.batch_io import S3BatchIO
    from churnguard.adapters.score_store import DynamoScoreStore
    from churnguard.domain.batch import BatchOptions, BatchScorer
    from churnguard.domain.predictor import Predictor
    from churnguard.local.emulator import Emulator
    from churnguard.services import batch_jobs

    t0 = time.perf_counter()
    bundle = train_bundle()
    data = make_csv(a.rows)
    prep_s = time.perf_counter() - t0
    print(f"prepared {a.rows} rows ({len(data) / 1e6:.0f} MB) and a model in {prep_s:.0f} s", file=sys.stderr)

    predictor = Predictor(bundle)
    scorer = BatchScorer(predictor, num_threads=int(os.environ.get("BATCH_THREADS", "0")))
    results: dict = {
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_1m_at_start": os.getloadavg()[0],
        },
        "rows": a.rows,
        "input_mb": round(len(data) / 1e6, 1),
        "chunk_mb": a.chunk_mb,
        "model": {"trees": scorer.booster.num_iterations, "features": scorer.encoder.n_features},
        "scoring_workers": scorer.workers,
        "scoring_engine": scorer.engine,
        "runs": [],
    }

    with Emulator() as emu:
        import boto3

        os.environ.update(emu.env)
        s3 = boto3.client("s3", endpoint_url=emu.endpoint)
        ddb = boto3.client("dynamodb", endpoint_url=emu.endpoint)
        bucket = emu.env["BATCH_BUCKET"]
        s3.put_object(Bucket=bucket, Key="in/customers.csv", Body=data)
        io_ = S3BatchIO(s3)
        version = bundle.version
        for level in [x for x in a.reasons.split(",") if x]:
            plan = batch_jobs.plan_job(
                f"bench-{level}",
                f"s3://{bucket}/in/customers.csv",
                f"s3://{bucket}/out/{level}",
                io_,
                None,
                lambda v: (version, scorer.schema),
                options={"reasons": level},
                chunk_bytes=a.chunk_mb << 20,
            )
            chunks = json.loads(s3.get_object(Bucket=bucket, Key=plan["manifest"]["key"])["Body"].read())
            wall0, cpu0 = time.perf_counter(), time.process_time()
            counts = [
                batch_jobs.score_chunk(
                    {
                        "job_id": plan["job_id"],
                        "chunk": c,
                        "output": plan["output"],
                        "model_version": version,
                        "options": plan["options"],
                    },
                    io_,
                    lambda v: scorer,
                    None,
                )
                for c in chunks
            ]
            wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
            total = batch_jobs.summarize(counts) if hasattr(batch_jobs, "summarize") else None
            from churnguard.domain.batch import summarize

            total = summarize(counts)
            assert total["rows_in"] == a.rows == total["scored"] + total["rejected"]
            per_million_s = wall * 1_000_000 / a.rows
            lambda_cost = per_million_s * (a.memory_mb / 1024) * LAMBDA_GB_SECOND
            chunks_per_million = len(chunks) * 1_000_000 / a.rows
            results["runs"].append(
                {
                    "reasons": level,
                    "reasons_computed": total["reasons_computed"],
                    "chunks": len(chunks),
                    "wall_s": round(wall, 2),
                    "cpu_s": round(cpu, 2),
                    "rows_per_s": round(a.rows / wall),
                    "rows_per_cpu_s": round(a.rows / cpu),
                    "cost_per_million_rows_usd": {
                        "lambda_compute": round(lambda_cost, 5),
                        "lambda_requests": round(chunks_per_million * LAMBDA_PER_REQUEST, 7),
                        "step_functions": round(chunks_per_million * 4 * SFN_PER_TRANSITION, 6),
                        "score_table_writes": round(1_000_000 * DDB_PER_WRITE, 4),
                    },
                }
            )
            print(json.dumps(results["runs"][-1]), file=sys.stderr)

        # LightGBM alone on the same rows, in the same run: the floor the end-to-end figure compares with.
        import pandas as pd

        from churnguard.domain.batch import BatchBooster

        X = scorer.encoder.encode_frame(pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, nrows=200_000))
        floor = BatchBooster(bundle.model_text, num_threads=0)  # one call on all cores
        floor.predict(X[:1000])
        t = time.perf_counter()
        floor.predict(X)
        results["lightgbm_alone_rows_per_s"] = round(len(X) / (time.perf_counter() - t))
        if scorer.tables is not None:  # the leaf tables alone, one thread, on the same rows
            t = time.perf_counter()
            scorer.tables.predict(X)
            results["leaf_tables_alone_one_thread_rows_per_s"] = round(len(X) / (time.perf_counter() - t))
        results["scoring_engine_at_end"] = scorer.engine  # "lightgbm" here: a spot check failed

        # The customer-score upsert, on a sample (moto server is no stand-in for DynamoDB's speed).
        store = DynamoScoreStore(emu.env["SCORES_TABLE"], ddb, hash_key=b"bench")
        sample = scorer.score_csv(b"".join(data.splitlines(keepends=True)[: a.store_sample + 1]), BatchOptions())
        t = time.perf_counter()
        n = store.put_many(
            sample.score_items(), job_id="bench", scored_at="2026-11-21T00:00:00Z", model_version=version
        )
        results["score_store_rows_per_s_moto"] = round(n / (time.perf_counter() - t))

    results["prices"] = {
        "read_on": PRICES_READ_ON,
        "region": "us-east-1",
        "lambda_gb_s": LAMBDA_GB_SECOND,
        "lambda_per_request": LAMBDA_PER_REQUEST,
        "sfn_per_transition": SFN_PER_TRANSITION,
        "dynamodb_per_write": DDB_PER_WRITE,
        "memory_mb": a.memory_mb,
    }
    results["loadavg_1m_at_end"] = os.getloadavg()[0]
    text = json.dumps(results, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
