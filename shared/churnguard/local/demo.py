"""``make demo``: everything on one machine, no external service.

Starts moto's server on 127.0.0.1 with the template's bucket and table, trains on generated
Telco-like customers (or ``DATA=file.csv``), promotes the model, answers one prediction
through the same FastAPI app the Lambda serves, then keeps serving with uvicorn.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
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


def say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def _start_server(app: Any, host: str, port: int) -> Any:
    """uvicorn in a thread of this process, so the demo can call it and keep serving."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the API server could not start on {host}:{port} (port in use?)")
        time.sleep(0.05)
    return server


def _keep_serving(server: Any, url: str, examples: str) -> int:
    """Print how to call the API, then serve until Ctrl-C."""
    print(f"\nServing on {url}  (docs: {url}/docs; Ctrl-C stops)\n{examples}", flush=True)
    try:
        while server.started and not server.should_exit:
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.should_exit = True
    return 0


def _post_json(url: str, payload: dict) -> dict:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def run_demo(
    data: str | None, host: str, port: int, serve: bool, app_factory: Callable[..., Any], rows: int = 5000
) -> int:
    """``app_factory(services, provider)`` builds the API (entrypoints.api.build_app, handed in by the CLI)."""
    started = time.perf_counter()
    from churnguard.local.emulator import Emulator

    emu = Emulator().start()
    os.environ.update(emu.env)
    say(
        f"AWS emulator (moto server) on {emu.endpoint}: bucket {emu.env['MODEL_BUCKET']}, table "
        f"{emu.env['REGISTRY_TABLE']}"
    )
    try:
        from churnguard.bootstrap import build_provider, build_services
        from churnguard.domain.schema import Schema
        from churnguard.services.lifecycle import train_and_register
        from churnguard.settings import Settings

        services = build_services(Settings.from_env())  # the emulator's environment, just set
        if data:
            payload, source = Path(data).read_bytes(), data
            say(f"training on {data}")
        else:
            from churnguard.local.synth import generate_customers

            buf = io.StringIO()
            generate_customers(rows, seed=42).to_csv(buf, index=False)
            payload, source = buf.getvalue().encode(), f"generated:telco-like:{rows}:seed42"
            say(f"training on {rows} generated Telco-like customers (set DATA=file.csv for your own)")
        summary = train_and_register(payload, Schema.default(), None, services.store, services.registry, source=source)
        m = summary["metrics"]
        say(
            f"registered {summary['version']}: CV ROC-AUC {m['cv_roc_auc']:.3f}, Brier {m['brier']:.3f} "
            f"({summary['seconds']:.0f} s)"
        )
        services.registry.promote(summary["version"], reason="demo")
        say(f"promoted {summary['version']} to champion")

        provider = build_provider(services)
        app = app_factory(services, provider)
        server = _start_server(app, host, port)
        url = f"http://{host}:{port}"
        first = _post_json(f"{url}/predict", EXAMPLE)
        say(f"first prediction from {url}/predict after {time.perf_counter() - started:.1f} s:")
        print(json.dumps(first, indent=2), flush=True)
        if not serve:
            server.should_exit = True
            return 0
        body = json.dumps(EXAMPLE)
        return _keep_serving(
            server,
            url,
            f"  curl -s -X POST {url}/predict -H 'content-type: application/json' \\\n       -d '{body}'\n",
        )
    finally:
        emu.stop()
        say("emulator stopped")


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

        from churnguard.bootstrap import build_feature_refresh, build_provider, build_services
        from churnguard.domain.event_features import report_text
        from churnguard.domain.schema import Schema
        from churnguard.domain.training import TrainingConfig
        from churnguard.local.event_synth import generate_events
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
        server = _start_server(app_factory(services, provider), host, port)
        url = f"http://{host}:{port}"
        customer = _an_active_customer(data, now)
        first = _post_json(f"{url}/customers/{customer}/predict", {})
        say(f"POST /customers/{customer}/predict after {time.perf_counter() - started:.1f} s:")
        print(json.dumps(first, indent=2), flush=True)
        if not serve:
            server.should_exit = True
            return 0
        return _keep_serving(
            server,
            url,
            f"  curl -s -X POST {url}/customers/{customer}/predict\n  curl -s {url}/customers/{customer}/score\n",
        )
    finally:
        emu.stop()
        say("emulator stopped")


def _an_active_customer(data: Any, now: Any) -> str:
    """A customer who has not cancelled by now (the highest planted risk at the last period, for interest)."""
    last = data.truth[data.truth["cutoff"] == max(data.truth["cutoff"])]
    gone = set(data.subscription.loc[data.subscription["event_type"] == "cancel", "customer_id"].astype(str))
    active = last[~last["customer_id"].isin(gone)].sort_values("p", ascending=False)
    return str(active["customer_id"].iloc[0])
