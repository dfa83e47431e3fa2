"""Features from event logs at scale: ~10M generated events -> a training set for 100k customers at 12 cutoffs,
and the retraining loop's fresh set from the same logs (BuildTrainingSet's event-feature source).

    python bench/feature_bench.py --customers 100000 --out bench/feature_results.json

The logs are generated first (not timed) as Parquet, as an event pipeline would land them. Then one
child process, sized like the FeatureRefresh function (DuckDB limited to 2 threads and 2,048 MB, the
function's 3,008 MB holding the rest), runs the real use case (services.event_features.build_training_set:
read, check, deduplicate, compute, label, write the training CSV, schema and report) and, in a second child,
the nightly refresh's computation (every active customer's features at one cutoff, now). Each child
reports its wall time and peak resident memory. A third child runs the retraining loop's BuildTrainingSet
step on the same logs (services.training_set.build_training_set with EventFeatureRows: the cutoffs of a
180-day window 30 days apart, the rows checked against the champion's schema, the CSVs and report written),
sized like that function (the same DuckDB limits, 3,008 MB). Target: the build in <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
END = datetime(2026, 11, 1, tzinfo=UTC)
TARGET_S = 60.0
THREADS = 2
MEMORY_MB = 2048

CHILD = r"""
import json, resource, sys, time
from datetime import datetime
from churnguard.adapters.duckdb_engine import DuckDBFeatureEngine
from churnguard.adapters.local_files import LocalObjectStore
from churnguard.domain.event_features import FeatureDefinition
from churnguard.services.event_features import build_training_set

args = json.loads(sys.argv[1])
definition = FeatureDefinition.load(args["definition"])
engine = DuckDBFeatureEngine(threads=args["threads"], memory_limit_mb=args["memory_mb"], staging_dir=args["staging"])
cutoffs = [datetime.fromisoformat(c) for c in args["cutoffs"]]
as_of = datetime.fromisoformat(args["as_of"])
started = time.perf_counter()
if args["mode"] == "build":
    summary = build_training_set(definition, cutoffs, args["out"], engine, LocalObjectStore(), now=as_of)
    keys = ("rows", "cutoffs", "label_rate", "rejected", "engine_seconds", "engine_timings")
    keys += ("leak_warnings", "no_signal")
    out = {k: summary[k] for k in keys}
elif args["mode"] == "loop":
    from churnguard.domain.schema import Schema
    from churnguard.domain.training_set import TrainingSetPlan
    from churnguard.services.training_set import EventFeatureRows, build_training_set as loop_set
    plan = TrainingSetPlan()
    schema = Schema.load(args["schema"])
    source = EventFeatureRows(definition, engine, plan.period_days)
    summary = loop_set(source, LocalObjectStore(), schema, plan, args["out"], as_of)
    out = {"status": summary["status"], "rows": summary["rows"]["train"] + summary["rows"]["holdout"]}
    out["cutoffs"] = summary["period"]["train"]["periods"] + 1 if summary["period"]["train"] else None
else:
    frame = engine.compute(definition, cutoffs, as_of=as_of)
    vectors = list(frame.vectors())
    out = {"rows": len(vectors), "engine_seconds": round(frame.seconds, 2), "engine_timings": frame.timings}
out["seconds"] = round(time.perf_counter() - started, 2)
out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
print(json.dumps(out))
"""


def child(
    mode: str, definition: Path, cutoffs: list[datetime], as_of: datetime, out: Path, staging: str, schema: str = ""
) -> dict:
    args = {
        "schema": schema,
        "mode": mode,
        "definition": str(definition),
        "cutoffs": [c.isoformat() for c in cutoffs],
        "as_of": as_of.isoformat(),
        "out": str(out),
        "threads": THREADS,
        "memory_mb": MEMORY_MB,
        "staging": staging,
    }
    env = {**os.environ, "PYTHONPATH": str(ROOT / "shared")}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(args)], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"the {mode} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--customers", type=int, default=100_000)
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--out", default=str(ROOT / "bench" / "feature_results.json"))
    a = p.parse_args()
    sys.path.insert(0, str(ROOT / "shared"))
    from churnguard.local.event_synth import generate_events

    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="feature-bench-") as tmp:
        t = time.perf_counter()
        data = generate_events(a.customers, seed=0, end=END)
        definition = data.write(Path(tmp) / "logs", fmt=a.format)
        generated_s = time.perf_counter() - t
        size_mb = sum(f.stat().st_size for f in (Path(tmp) / "logs").iterdir()) / 1e6
        cutoffs = data.labelled_cutoffs(12)
        as_of = END + timedelta(days=1)
        events, ceiling = data.events, data.ceiling_auc()
        del data  # the children measure their own memory; the generated frames need not sit beside them
        print(f"generated {events:,} events for {a.customers:,} customers in {generated_s:.0f} s ({size_mb:.0f} MB)")
        build = child("build", definition, cutoffs, as_of, Path(tmp) / "out" / "train.csv", tmp)
        print(f"build: {build['rows']:,} rows at {build['cutoffs']} cutoffs in {build['seconds']} s, ", end="")
        print(f"peak {build['peak_rss_mb']} MB")
        refresh = child("refresh", definition, [END], as_of, Path(tmp) / "unused.csv", tmp)
        print(f"refresh: {refresh['rows']:,} vectors in {refresh['seconds']} s, peak {refresh['peak_rss_mb']} MB")
        # The loop's set: the champion was trained on the build above (its schema), run on the day the logs end.
        schema = str(Path(tmp) / "out" / "train.schema.yaml")
        loop = child("loop", definition, [], END, Path(tmp) / "loop", tmp, schema=schema)
        print(f"loop: {loop['rows']:,} rows at {loop['cutoffs']} cutoffs in {loop['seconds']} s, ", end="")
        print(f"peak {loop['peak_rss_mb']} MB")
    result = {
        "measured_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "load_average_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "customers": a.customers,
        "events": events,
        "input": {"format": a.format, "mb": round(size_mb, 1)},
        "engine": {"threads": THREADS, "memory_limit_mb": MEMORY_MB},
        "generate_seconds": round(generated_s, 1),
        "build": build,
        "refresh": refresh,
        "loop_training_set": loop,
        "planted_ceiling_auc_latest_cutoff": round(ceiling, 4),
        "target_build_seconds": TARGET_S,
        "target_met": build["seconds"] <= TARGET_S,
    }
    Path(a.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"target (build <= {TARGET_S:.0f} s): {'met' if result['target_met'] else 'NOT met'}; wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
