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


def _post_json(url: str, payload: dict) -> dict:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(payload).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def run_demo(
    data: str | None,
    host: str,
    port: int,
    serve: bool,
    app_factory: Callable[..., Any],
    rows: int = 5000,
    console_factory: Callable[..., Any] | None = None,
) -> int:
    """``app_factory(services, provider)`` builds the API (entrypoints.api.build_app, handed in by the CLI);
    ``console_factory`` the console (entrypoints.api.build_console_app), served on ``port + 1`` when serving."""
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
        if console_factory is not None:  # the console (local/console_demo.py): its data, then its URL
            from churnguard.local.console_demo import console_app
            from churnguard.local.emulator import free_port

            app_console = console_app(services, console_factory, say=say)
            console_port = port + 1 if port + 1 != emu.port else free_port()  # the emulator took a free port too
            try:
                _start_server(app_console, host, console_port)
            except RuntimeError:
                console_port = free_port()
                _start_server(app_console, host, console_port)
            console_url = f"http://{host}:{console_port}/console"
            say(f"console: open {console_url} (call list, customers, models, drift, canary, retraining)")
        body = json.dumps(EXAMPLE)
        print(
            f"\nServing on {url}  (docs: {url}/docs; Ctrl-C stops)\n"
            f"  curl -s -X POST {url}/predict -H 'content-type: application/json' \\\n"
            f"       -d '{body}'\n",
            flush=True,
        )
        try:
            while server.started and not server.should_exit:
                time.sleep(0.5)
        except KeyboardInterrupt:
            server.should_exit = True
        return 0
    finally:
        emu.stop()
        say("emulator stopped")
