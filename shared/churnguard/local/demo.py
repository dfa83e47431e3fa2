"""``make demo``: the whole platform on one machine, no external service.

Starts moto's server on 127.0.0.1 with the template's buckets and tables, trains on generated
Telco-like customers (or ``DATA=file.csv``), promotes the model and serves the same FastAPI app
the Lambda serves. Then it runs the loop around it as the deployed functions would:

1. a first prediction over HTTP, then a few hundred more from a newer cohort of customers, each
   logged to the prediction log in the layout Firehose writes (``predictions/dt=YYYY-MM-DD/``);
2. the drift check over that log, its JSON and HTML report written under ``--workdir``;
3. a batch scoring job over a CSV with the batch function's code, storing each customer's score,
   and ``GET /customers/{id}/score`` answering from the store;

and keeps serving, printing the commands to try and the environment for the CLI in another shell.

``make demo EVENTS=1`` (``run_events_demo``) starts from generated event logs instead: a training set
built at 12 monthly cutoffs, a model trained on it, the nightly refresh run now, a score by customer id.
"""

from __future__ import annotations

import io
import json
import os
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXAMPLE = {
    "customerID": "7590-VHVEG",
    "gender": "Female",
    "SeniorCitizen": 0,
    "Partner": "Yes",
    "Dependents": "No",
    "tenure": 1,
    "PhoneService": "No",
    "MultipleLines": "No phone service",
    "InternetService": "DSL",
    "OnlineSecurity": "No",
    "OnlineBackup": "Yes",
    "DeviceProtection": "No",
    "TechSupport": "No",
    "StreamingTV": "No",
    "StreamingMovies": "No",
    "Contract": "Month-to-month",
    "PaperlessBilling": "Yes",
    "PaymentMethod": "Electronic check",
    "MonthlyCharges": 29.85,
    "TotalCharges": 29.85,
}
# The newer cohort scored online (enough rows for a drift decision: DRIFT_MIN_ROWS is 500) and the
# customers of the batch job.
LOGGED_CUSTOMERS = 600
BATCH_CUSTOMERS = 1000


def say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _request(url: str, payload: Any = None) -> Any:
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _frame_to_csv(frame: Any) -> bytes:
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def run_demo(
    data: str | None,
    host: str,
    port: int,
    serve: bool,
    app_factory: Callable[..., Any],
    rows: int = 5000,
    console_factory: Callable[..., Any] | None = None,
    workdir: str = ".demo",
    progress: Callable[[str, int, int], None] | None = None,
) -> int:
    """``app_factory(services, provider, prediction_log)`` builds the API (entrypoints.api.build_app,
    handed in by the CLI); ``console_factory`` the console (entrypoints.api.build_console_app), served on
    ``port + 1`` when serving; ``progress`` shows training's progress."""
    started = time.perf_counter()
    from churnguard.local.emulator import Emulator

    emu = Emulator().start()
    os.environ.update(emu.env)
    say(
        f"AWS emulator (moto server) on {emu.endpoint}: bucket {emu.env['MODEL_BUCKET']}, table "
        f"{emu.env['REGISTRY_TABLE']}"
    )
    try:
        from churnguard.bootstrap import build_prediction_log, build_provider, build_services
        from churnguard.domain.schema import Schema
        from churnguard.local.server import ApiServer
        from churnguard.services.lifecycle import train_and_register
        from churnguard.settings import Settings

        services = build_services(Settings.from_env())  # the emulator's environment, just set
        if data:
            payload, source = Path(data).read_bytes(), data
            say(f"training on {data}")
        else:
            from churnguard.local.synth import generate_customers

            payload, source = _frame_to_csv(generate_customers(rows, seed=42)), f"generated:telco-like:{rows}:seed42"
            say(f"training on {rows} generated Telco-like customers (set DATA=file.csv for your own)")
        summary = train_and_register(
            payload, Schema.default(), None, services.store, services.registry, source=source, progress=progress
        )
        m = summary["metrics"]
        say(
            f"registered {summary['version']}: CV ROC-AUC {m['cv_roc_auc']:.3f}, Brier {m['brier']:.3f} "
            f"({summary['seconds']:.0f} s)"
        )
        services.registry.promote(summary["version"], reason="demo")
        say(f"promoted {summary['version']} to champion")

        provider = build_provider(services)
        log = build_prediction_log(services)
        server = ApiServer(app_factory(services, provider, log), host, port, prediction_log=log).start()
        url = server.url
        first = _request(f"{url}/predict", EXAMPLE)
        say(f"first prediction from {url}/predict after {time.perf_counter() - started:.1f} s:")
        print(json.dumps(first, indent=2), flush=True)

        tour = _tour(services, url, log, Path(workdir))
        if not serve:
            server.stop()
            return 0
        console_url = _serve_console(services, console_factory, host, port, emu.port) if console_factory else None
        _print_serving(url, tour, emu.export_lines())
        if console_url:
            say(f"console: open {console_url} (call list, customers, models, drift, canary, retraining)")
        server.serve_until_stopped()
        return 0
    finally:
        emu.stop()
        say("emulator stopped")


def _tour(services: Any, url: str, log: Any, workdir: Path) -> dict[str, Any]:
    """The loop around the API: logged predictions, a drift report, a batch job with stored scores."""
    from churnguard.bootstrap import build_batch, build_drift_check, build_prediction_log_reader
    from churnguard.local.synth import generate_customers

    # 1. A newer cohort (tenure halved: customers who joined more recently) scored online and logged.
    cohort = generate_customers(LOGGED_CUSTOMERS, seed=7)
    cohort["tenure"] = (cohort["tenure"].astype(int) // 2).astype(str)
    records = cohort.to_dict("records")
    for i in range(0, len(records), 200):
        _request(f"{url}/predict/batch?reasons=false", {"customers": records[i : i + 200]})
    # The API logs each answer in a task that runs after the answer is sent, so the last batch's records can
    # reach the buffer a moment after its answer (seen on a loaded machine): flush until all of them are in
    # the log, for at most 10 s, and print the count found either way.
    expected = 1 + len(records)  # the first prediction and the cohort
    today = datetime.now(UTC).date()
    reader = build_prediction_log_reader(services)
    deadline = time.monotonic() + 10
    while True:
        if log is not None:
            log.flush()
        logged = sum(1 for _ in reader.records(today, today))
        if logged >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    bucket = services.settings.prediction_log_bucket or services.store.bucket
    say(f"logged {logged} predictions to s3://{bucket}/predictions/dt={today.isoformat()}/")

    # 2. The drift check the daily schedule runs, with its report written here.
    drift = build_drift_check(services, reports_dir=str(workdir / "reports"))()
    drifted = ", ".join(drift.get("drifted_features") or []) or "none"
    say(f"drift check: {drift['decision']} (drifted: {drifted}); report {drift.get('html')}")
    if drift.get("retraining", {}).get("started") is False:
        say(f"  retraining not started here: {drift['retraining']['reason']} (deployed, the state machine runs)")

    # 3. A batch job with the batch function's code, storing each customer's latest score.
    batch_dir = workdir / "batch"
    batch_dir.mkdir(parents=True, exist_ok=True)
    customers = generate_customers(BATCH_CUSTOMERS, seed=21)
    source = batch_dir / "customers.csv"
    source.write_bytes(_frame_to_csv(customers))
    job = build_batch(services).score_local(
        str(source), str(batch_dir / "out"), options={"reasons": "all"}, store_scores=True
    )
    say(
        f"batch job: {job['scored']} of {job['rows_in']} scored, {job.get('scores_stored', 0)} scores stored; "
        f"files under {batch_dir / 'out'}"
    )
    customer_id = str(customers["customerID"].iloc[0])
    stored = _request(f"{url}/customers/{customer_id}/score")
    say(f"GET {url}/customers/{customer_id}/score answers from the score table:")
    print(json.dumps(stored, indent=2), flush=True)
    return {
        "logged": logged,
        "drift": drift,
        "batch": job,
        "customer_id": customer_id,
        "stored_score": stored,
    }


def _print_serving(url: str, tour: dict[str, Any], exports: str) -> None:
    body = json.dumps(EXAMPLE)
    cid = tour.get("customer_id")
    print(
        f"\nServing on {url}  (Swagger UI {url}/docs, ReDoc {url}/redoc; Ctrl-C stops)\n"
        f"  curl -s -X POST {url}/predict -H 'content-type: application/json' \\\n"
        f"       -d '{body}'\n"
        + f"  curl -s {url}/customers/{cid}/score\n"
        + f"  drift report   {tour['drift'].get('html')}\n"
        f"  batch scores   {tour['batch']['output']}/scores/\n"
        "\nThe CLI against this demo's backend, in another shell (churn models list, churn drift, ...):\n"
        f"{exports}\n",
        flush=True,
    )


def _serve_console(services: Any, console_factory: Callable[..., Any], host: str, port: int, emulator_port: int) -> str:
    """The console (local/console_demo.py: its data, then its app) on ``port + 1``, or a free port if taken."""
    from churnguard.local.console_demo import console_app
    from churnguard.local.emulator import free_port
    from churnguard.local.ports import port_problem
    from churnguard.local.server import ApiServer

    app = console_app(services, console_factory, say=say)
    console_port = port + 1
    if console_port == emulator_port or port_problem(host, console_port):
        console_port = free_port()
    return ApiServer(app, host, console_port).start().url + "/console"


# ----- `make demo EVENTS=1`: features from event logs --------------------------------------------
EVENT_CUSTOMERS = 2000
# Fast but real training for a demo (as the tests do); `churn train` defaults to 5x5 folds.
EVENT_TRAINING = {"n_folds": 3, "inner_folds": 3, "max_rounds": 600, "early_stopping_rounds": 50}


def run_events_demo(host: str, port: int, serve: bool, app_factory: Callable[..., Any]) -> int:
    """Generated customers and event logs in the emulator's S3 -> a training set at 12 monthly cutoffs ->
    a model (time-ordered CV) -> promoted -> the nightly refresh run now -> scores by customer id."""
    import tempfile
    from datetime import UTC, datetime

    started = time.perf_counter()
    from churnguard.local.emulator import Emulator

    emu = Emulator().start()
    os.environ.update(emu.env)
    say(f"AWS emulator (moto server) on {emu.endpoint}; feature table {emu.env.get('FEATURES_TABLE')}")
    try:
        import boto3

        from churnguard.bootstrap import build_feature_refresh, build_prediction_log, build_provider, build_services
        from churnguard.domain.event_features import report_text
        from churnguard.domain.schema import Schema
        from churnguard.domain.training import TrainingConfig
        from churnguard.local.event_synth import generate_events
        from churnguard.local.server import ApiServer
        from churnguard.services.lifecycle import train_and_register
        from churnguard.settings import Settings

        now = datetime.now(UTC)
        data = generate_events(EVENT_CUSTOMERS, seed=42, end=now)
        bucket = emu.env["MODEL_BUCKET"]
        prefix = f"s3://{bucket}/features/generated"
        s3 = boto3.client("s3")
        with tempfile.TemporaryDirectory() as tmp:
            data.write(tmp)
            for f in sorted(os.listdir(tmp)):
                s3.upload_file(os.path.join(tmp, f), bucket, f"features/generated/{f}")
        say(
            f"generated {EVENT_CUSTOMERS} customers and {data.events} events (usage, payments, tickets, "
            f"subscription) into {prefix}/; definition {prefix}/features.yaml"
        )
        os.environ["FEATURE_DEFINITION_URI"] = f"{prefix}/features.yaml"
        services = build_services(Settings.from_env())
        jobs = build_feature_refresh(services)
        cutoffs = data.labelled_cutoffs(12)
        built = jobs.build(cutoffs, f"s3://{bucket}/data/events-train.csv")
        print(report_text(built.pop("report_body")), flush=True)
        say(f"training set: {built['rows']} rows at {built['cutoffs']} cutoffs -> {built['training_csv']}")

        schema = Schema.from_yaml(services.objects.read(built["schema"]).decode())
        summary = train_and_register(
            services.objects.read(built["training_csv"]),
            schema,
            TrainingConfig.from_dict(EVENT_TRAINING),
            services.store,
            services.registry,
            source=built["training_csv"],
        )
        m = summary["metrics"]
        ceilings = [data.ceiling_auc(c) for c in cutoffs[-EVENT_TRAINING["n_folds"] :]]
        say(
            f"registered {summary['version']}: {m['cv_method']} CV ROC-AUC {m['cv_roc_auc']:.3f} on the latest "
            f"{len(ceilings)} cutoffs; the planted mechanism allows {sum(ceilings) / len(ceilings):.3f} there"
        )
        services.registry.promote(summary["version"], reason="demo --events")
        refreshed = jobs.refresh(now)
        say(
            f"refresh as of {refreshed['as_of']}: {refreshed['features_stored']} customers' features stored, "
            f"{refreshed['scored']} scored by {refreshed.get('model_version')}"
        )

        provider = build_provider(services)
        log = build_prediction_log(services)
        server = ApiServer(app_factory(services, provider, log), host, port, prediction_log=log).start()
        url = server.url
        customer = _an_active_customer(data, now)
        first = _request(f"{url}/customers/{customer}/predict", {})
        say(f"POST /customers/{customer}/predict after {time.perf_counter() - started:.1f} s:")
        print(json.dumps(first, indent=2), flush=True)
        if not serve:
            server.stop()
            return 0
        print(
            f"\nServing on {url}  (Swagger UI {url}/docs; Ctrl-C stops)\n"
            f"  curl -s -X POST {url}/customers/{customer}/predict\n  curl -s {url}/customers/{customer}/score\n"
            "\nThe CLI against this demo's backend, in another shell (churn features refresh, ...):\n"
            f"{emu.export_lines()}\n",
            flush=True,
        )
        server.serve_until_stopped()
        return 0
    finally:
        emu.stop()
        say("emulator stopped")


def _an_active_customer(data: Any, now: Any) -> str:
    """A customer who has not cancelled by now (the highest planted risk at the last period, for interest)."""
    last = data.truth[data.truth["cutoff"] == max(data.truth["cutoff"])]
    gone = set(data.subscription.loc[data.subscription["event_type"] == "cancel", "customer_id"].astype(str))
    active = last[~last["customer_id"].isin(gone)].sort_values("p", ascending=False)
    return str(active["customer_id"].iloc[0])
