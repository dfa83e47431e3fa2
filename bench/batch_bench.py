"""Batch scoring throughput of one function instance, end to end, against moto server S3.

For each model measured: N rows of its schema (Telco: generate_customers, tiled with fresh ids;
Iranian: the CSV's rows, tiled), uploaded as one CSV object to the embedded emulator, planned into
byte-range chunks and scored chunk by chunk with the same code the Lambda runs (read range from
S3, parse, validate, score, reasons, write the output object). LightGBM alone (all cores) and the
exact engine alone (leaf tables or leaf masks, one thread) on the same rows, and the calibration
loop (bench/calibration.py), are measured in the same run, because absolute times on a shared
machine are noisy. Prints JSON (and writes it to --out).

The models are the training recipe's picks: for the Telco CSV (its first, primary model: the
top-level figures) and the Iranian CSV (deeper trees), trained here (generated customers stand in
for a missing Telco CSV), or given as bundle files by ``make bench`` (bench/run.py trains them once).

    .venv/bin/python bench/batch_bench.py --rows 1000000 --out bench/batch_results.json
    .venv/bin/python bench/batch_bench.py --bundle telco=build/bench/telco.json --bundle iranian=...
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
from pathlib import Path
from typing import Any

import numpy as np

from churnguard.domain.batch import BatchOptions, BatchScorer
from churnguard.domain.predictor import Predictor

# AWS Lambda prices, us-east-1, x86, as published on https://aws.amazon.com/lambda/pricing/ (read 2026-11-21).
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
# Step Functions standard workflows: $0.025 per 1,000 state transitions (https://aws.amazon.com/step-functions/pricing/).
SFN_PER_TRANSITION = 0.025 / 1000
# DynamoDB on-demand writes: $0.625 per million write request units (https://aws.amazon.com/dynamodb/pricing/on-demand/).
DDB_PER_WRITE = 0.625 / 1_000_000
PRICES_READ_ON = "2026-11-21"


DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SOURCES = {"telco": DATA / "telco-customer-churn.csv", "iranian": DATA / "iranian-churn.csv"}


def make_rows(name: str, schema: Any, rows: int, seed: int = 1) -> bytes:
    """``rows`` rows of the model's schema, without the target: generated Telco customers, or the CSV tiled."""
    import pandas as pd

    if name == "telco":
        from churnguard.local.synth import generate_customers

        base_n = min(rows, 100_000)
        base = generate_customers(base_n, seed=seed).drop(columns=["Churn"])
    else:
        base = pd.read_csv(SOURCES[name], dtype=str, keep_default_na=False).drop(columns=[schema.target])
        base_n = len(base)
    reps = -(-rows // base_n)
    frame = base.loc[np.tile(np.arange(base_n), reps)[:rows]].reset_index(drop=True)
    if schema.id_column:
        frame[schema.id_column] = [f"{i:08d}-B" for i in range(rows)]
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def train_bundle(name: str) -> tuple[Any, dict[str, Any]]:
    """The recipe's model for a data set (schema inferred, default TrainingConfig), and how training went."""
    from churnguard.domain.schema_inference import infer_schema
    from churnguard.domain.training import TrainingConfig, read_csv, train
    from churnguard.local.synth import generate_customers
    from churnguard.services.lifecycle import build_bundle

    source = SOURCES[name]
    df = read_csv(source) if source.exists() else generate_customers(5000, seed=3)
    schema = infer_schema(df, "Churn").schema
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(df, schema, TrainingConfig())
    info = {
        "data": source.name if source.exists() else "generate_customers(5000)",
        "seconds": round(time.perf_counter() - wall, 1),
        "cpu_seconds": round(time.process_time() - cpu, 1),
        "loadavg_1m_at_end": round(os.getloadavg()[0], 2),
        "cv_roc_auc": round(result.metrics["cv_roc_auc"], 4),
        "brier": round(result.metrics["brier"], 4),
        "chosen": result.model_selection["chosen"],
        "chosen_in_outer_folds": result.model_selection["chosen_in_outer_folds"],
    }
    return build_bundle(f"v-bench-{name}", result, schema, data_sha256="0" * 64, source=info["data"]), info


def load_bundle(path: str) -> Any:
    from churnguard.domain.bundle import ModelBundle

    b = json.loads(Path(path).read_text())
    return ModelBundle(b["version"], b["model_text"], b["metadata"])


def measure_model(name: str, bundle: Any, a: argparse.Namespace, emu: Any, levels: list[str]) -> dict[str, Any]:
    """End-to-end runs (one per reasons level), then LightGBM and the exact engine alone, on one model."""
    import boto3
    import pandas as pd

    from churnguard.adapters.batch_io import S3BatchIO
    from churnguard.domain.batch import BatchBooster, summarize
    from churnguard.domain.predictor import Predictor
    from churnguard.services import batch_jobs

    predictor = Predictor(bundle)
    built = time.perf_counter()
    scorer = BatchScorer(predictor, num_threads=int(os.environ.get("BATCH_THREADS", "0")))
    data = make_rows(name, scorer.schema, a.rows)
    model_text = bundle.model_text
    out: dict[str, Any] = {
        "model": {
            "trees": scorer.booster.num_iterations,
            "features": scorer.encoder.n_features,
            "max_leaves": max(int(x.split("=")[1]) for x in model_text.splitlines() if x.startswith("num_leaves=")),
            "chosen": bundle.metadata["training"].get("model_selection", {}).get("chosen"),
        },
        "engine_build_s": round(time.perf_counter() - built, 2),
        "input_mb": round(len(data) / 1e6, 1),
        "scoring_workers": scorer.workers,
        "scoring_engine": scorer.engine,
        "runs": [],
    }
    s3 = boto3.client("s3", endpoint_url=emu.endpoint)
    bucket = emu.env["BATCH_BUCKET"]
    s3.put_object(Bucket=bucket, Key=f"in/{name}.csv", Body=data)
    io_ = S3BatchIO(s3)
    version = bundle.version
    for level in levels:
        plan = batch_jobs.plan_job(
            f"bench-{name}-{level}",
            f"s3://{bucket}/in/{name}.csv",
            f"s3://{bucket}/out/{name}/{level}",
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
        total = summarize(counts)
        assert total["rows_in"] == a.rows == total["scored"] + total["rejected"], total
        per_million_s = wall * 1_000_000 / a.rows
        lambda_cost = per_million_s * (a.memory_mb / 1024) * LAMBDA_GB_SECOND
        chunks_per_million = len(chunks) * 1_000_000 / a.rows
        out["runs"].append(
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
        print(json.dumps({"model": name, **out["runs"][-1]}), file=sys.stderr)

    # LightGBM alone on the same rows, in the same run: the floor the end-to-end figure compares with.
    X = scorer.encoder.encode_frame(pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, nrows=200_000))
    floor = BatchBooster(model_text, num_threads=0)  # one call on all cores
    floor.predict(X[:1000])
    t = time.perf_counter()
    floor.predict(X)
    out["lightgbm_alone_rows_per_s"] = round(len(X) / (time.perf_counter() - t))
    if scorer.tables is not None:  # the exact engine alone, one thread, on the same rows
        scorer.tables.predict(X[:1000])
        t = time.perf_counter()
        scorer.tables.predict(X)
        out["exact_engine_alone_one_thread_rows_per_s"] = round(len(X) / (time.perf_counter() - t))
    out["scoring_engine_at_end"] = scorer.engine  # "lightgbm" here: a spot check failed
    scorer.close()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--chunk-mb", type=int, default=64)
    ap.add_argument("--memory-mb", type=int, default=2048, help="the BatchScoreFunction's MemorySize")
    ap.add_argument("--reasons", default="high,none", help="comma-separated reason levels to measure (primary model)")
    ap.add_argument(
        "--models", default="telco,iranian", help="data sets whose recipe models to measure; first is primary"
    )
    ap.add_argument(
        "--bundle", action="append", default=[], help="NAME=bundle.json: use this model instead of training"
    )
    ap.add_argument("--store-sample", type=int, default=20_000, help="rows written to the score table (moto)")
    ap.add_argument("--out")
    a = ap.parse_args(argv)

    from bench import calibration
    from churnguard.adapters.score_store import DynamoScoreStore
    from churnguard.local.emulator import Emulator

    given = dict(b.split("=", 1) for b in a.bundle)
    names = [n for n in a.models.split(",") if n and (n == "telco" or n in given or SOURCES[n].exists())]
    unit_start = calibration.measure()
    bundles: dict[str, Any] = {}
    training: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name in names:
        if name in given:
            bundles[name] = load_bundle(given[name])
        else:
            print(f"training the recipe on {name} ...", file=sys.stderr)
            bundles[name], training[name] = train_bundle(name)
    print(f"prepared {len(bundles)} models in {time.perf_counter() - t0:.0f} s", file=sys.stderr)

    results: dict = {
        "date": date.today().isoformat(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "loadavg_1m_at_start": os.getloadavg()[0],
        },
        "rows": a.rows,
        "chunk_mb": a.chunk_mb,
        "models": {},
    }
    if training:
        results["training"] = training
    with Emulator() as emu:
        import boto3

        os.environ.update(emu.env)
        units = [unit_start]
        for k, name in enumerate(names):
            levels = [x for x in a.reasons.split(",") if x] if k == 0 else ["high"]
            results["models"][name] = measure_model(name, bundles[name], a, emu, levels)
            # The unit of this model's figures: the loop timed just before and just after them.
            units.append(calibration.measure())
            unit = calibration.combine(units[-2], units[-1])
            results["models"][name]["calibration_loop_s"] = unit["loop_s"]
            results["models"][name]["rows_per_s_at_reference"] = calibration.at_reference_rate(
                results["models"][name]["runs"][0]["rows_per_s"], unit
            )
        primary = results["models"][names[0]]
        # The primary model's figures at the top level, as before (bench/run.py reads them).
        results.update({k: v for k, v in primary.items() if k != "exact_engine_alone_one_thread_rows_per_s"})
        results["primary_model"] = names[0]
        if primary["scoring_engine"] == "leaf-tables":
            results["leaf_tables_alone_one_thread_rows_per_s"] = primary.get("exact_engine_alone_one_thread_rows_per_s")

        # The customer-score upsert, on a sample (moto server is no stand-in for DynamoDB's speed).
        ddb = boto3.client("dynamodb", endpoint_url=emu.endpoint)
        scorer = BatchScorer(Predictor(bundles[names[0]]), num_threads=1)
        store = DynamoScoreStore(emu.env["SCORES_TABLE"], ddb, hash_key=b"bench")
        sample = scorer.score_csv(make_rows(names[0], scorer.schema, a.store_sample), BatchOptions())
        scorer.close()
        t = time.perf_counter()
        n = store.put_many(
            sample.score_items(),
            job_id="bench",
            scored_at="2026-11-21T00:00:00Z",
            model_version=bundles[names[0]].version,
        )
        results["score_store_rows_per_s_moto"] = round(n / (time.perf_counter() - t))

    results["calibration"] = calibration.combine(*units)
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
