"""`make demo`'s console step: give the console something to show, then serve it on 127.0.0.1.

Everything goes through the platform's own use cases against the emulator, as the deployed loop
would run them, only compressed in time:

1. a challenger trained on other customers, evaluated against the champion on fresh held-out
   rows (the gate's report), then given a canary share of traffic;
2. a batch scoring job over generated customers, through the state machine's steps (plan, every
   chunk, finish): score files in the batch bucket, the job in the jobs table, stored scores;
3. four weeks of prediction log (the canary's customers answered by the challenger; in the last
   week new customers come with half the usual tenure, a drift) and the outcomes observed a few
   days after each prediction; then the drift check.

    app = console_app(services, build_console_app)      # seeds the data, builds the console
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from churnguard.bootstrap import Services

CANARY_SHARE = 0.2
LOG_DAYS = 28
# Training settings of the challenger: quick, real (as tests/conftest.py FAST).
CHALLENGER_TRAINING = {"n_folds": 3, "inner_folds": 3, "max_rounds": 400, "early_stopping_rounds": 40}


def _csv(frame: Any) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def seed_console_data(
    services: Services, rows: int = 2000, say: Callable[[str], None] = print, now: datetime | None = None
) -> dict[str, Any]:
    """Run a challenger's training and evaluation, a canary, a batch job, a logged month and a drift check."""
    from churnguard.bootstrap import build_batch, build_drift_check, build_evaluation, build_outcome_store
    from churnguard.domain.canary import routes_to_canary
    from churnguard.domain.identity import customer_key
    from churnguard.domain.outcomes import Outcome
    from churnguard.domain.prediction_log import partition_prefix, prediction_record, to_jsonl
    from churnguard.domain.schema import Schema
    from churnguard.domain.training import TrainingConfig
    from churnguard.local.synth import generate_customers
    from churnguard.services.champion import load_predictor
    from churnguard.services.lifecycle import train_and_register

    now = now or datetime.now(UTC)
    bucket = services.store.bucket
    batch_bucket = services.settings.batch.bucket or bucket
    registry = services.registry
    champion = registry.champion().version

    # 1. challenger, evaluation, canary
    challenger = train_and_register(
        _csv(generate_customers(3000, seed=11)),
        Schema.default(),
        TrainingConfig.from_dict(CHALLENGER_TRAINING),
        services.store,
        registry,
        source="generated:telco-like:3000:seed11",
        lineage={"reason": "manual"},
    )["version"]
    holdout = f"s3://{bucket}/data/holdout.csv"
    services.objects.write(holdout, _csv(generate_customers(1000, seed=12)), "text/csv")
    verdict = build_evaluation(services)(challenger, holdout)
    registry.set_canary(challenger, share=CANARY_SHARE, reason="demo: challenger on a share of customers")
    say(
        f"challenger {challenger} evaluated against {champion} (gate {'passed' if verdict['passed'] else 'failed'}), "
        f"answering {CANARY_SHARE:.0%} of customers as a canary"
    )

    # 2. a batch job through the state machine's steps
    customers = generate_customers(rows, seed=7)
    labels = dict(zip(customers["customerID"], customers["Churn"] == "Yes", strict=False))
    features = customers.drop(columns=["Churn"])
    job_id = now.strftime("demo-%Y%m%d-%H%M%S")
    source, output = f"s3://{batch_bucket}/customers/demo.csv", f"s3://{batch_bucket}/scores/{job_id}"
    services.objects.write(source, _csv(features), "text/csv")
    batch = build_batch(services)
    plan = batch.plan(job_id, {"input": source, "output": output, "options": {"reasons": "medium"}})
    chunks = json.loads(services.objects.read(f"{output}/_job/manifest.json"))
    counts = [
        batch.score_chunk(
            {
                "job_id": job_id,
                "chunk": c,
                "output": output,
                "model_version": plan["model_version"],
                "options": plan["options"],
            }
        )
        for c in chunks
    ]
    summary = batch.finish(job_id, plan, counts)
    say(f"batch job {job_id}: {summary['scored']:,} customers scored into {output}/scores/")

    # 3. a month of prediction log, outcomes, the drift check
    predictors = {"champion": load_predictor(registry, services.store, champion)}
    predictors["canary"] = load_predictor(registry, services.store, challenger)
    rng = random.Random(5)
    records, outcomes = [], []
    names = predictors["champion"].schema.feature_names
    recent = int(len(features) * 0.35)  # enough for the drift check's 500-row minimum in its 7-day window
    rows_out: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in features.to_dict("records")]
    for i, row in enumerate(rows_out):
        # recent rows stay inside the window's dates whatever the time of day: up to 5 days and 10 hours back
        # is at most 6 dates back (the window is today and the 6 dates before it)
        days_ago = rng.randrange(0, 6) if i < recent else rng.randrange(7, LOG_DAYS)
        if i < recent:  # the drift: recent customers arrive with half the usual tenure
            row["tenure"] = str(int(row["tenure"]) // 2)
        key = customer_key(row["customerID"], services.hash_key)
        variant = "canary" if routes_to_canary(key, CANARY_SHARE) else "champion"
        pred = predictors[variant].predict_records([row], reasons=False)[0]
        ts = now - timedelta(days=days_ago, minutes=rng.randrange(1, 600))
        records.append(
            prediction_record(
                features=row,
                prediction=pred,
                variant=variant,
                customer_key=key,
                request_id=f"demo-{i}",
                feature_names=names,
                ts=ts,
            )
        )
        observed = (ts + timedelta(days=rng.randrange(2, 8))).date()
        if observed <= now.date() and i >= recent:
            outcomes.append(Outcome(key, bool(labels[row["customerID"]]), observed))
    by_day: dict[str, list[dict[str, Any]]] = {}
    for r in records:
        by_day.setdefault(partition_prefix(datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))), []).append(r)
    for prefix, day_records in by_day.items():
        services.objects.write(f"s3://{bucket}/{prefix}console-demo.jsonl", to_jsonl(day_records), "application/json")
    store = build_outcome_store(services)
    if store is not None:
        store.record_many(outcomes, source="demo")
    drift = build_drift_check(services)(now=now)
    say(
        f"{len(records):,} predictions logged over {LOG_DAYS} days, {len(outcomes):,} outcomes observed; "
        f"drift check: {drift['decision']} ({', '.join(drift.get('drifted_features') or []) or 'no feature drifted'})"
    )
    return {"challenger": challenger, "job_id": job_id, "drift": drift["decision"], "evaluation": verdict}


def console_app(
    services: Services, console_factory: Callable[..., Any], say: Callable[[str], None] = print, rows: int = 2000
) -> Any:
    """Seed the console's data and build the console (served by the demo on 127.0.0.1).

    ``console_factory(services, allow_anonymous=True)`` builds the app (entrypoints.api.build_console_app,
    handed in by the CLI: local/ does not import the entry points)."""
    seed_console_data(services, rows=rows, say=say)
    return console_factory(services, allow_anonymous=True)
