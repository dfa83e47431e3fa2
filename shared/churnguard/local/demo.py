"""``make demo``: everything on one machine, no external service.

Starts moto's server on 127.0.0.1 with the template's bucket and table, trains on generated
Telco-like customers (or ``DATA=file.csv``), promotes the model, answers one prediction
through the same FastAPI app the Lambda serves, then keeps serving with uvicorn.
"""
from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

EXAMPLE = {
    "customerID": "7590-VHVEG", "gender": "Female", "SeniorCitizen": 0, "Partner": "Yes", "Dependents": "No",
    "tenure": 1, "PhoneService": "No", "MultipleLines": "No phone service", "InternetService": "DSL",
    "OnlineSecurity": "No", "OnlineBackup": "Yes", "DeviceProtection": "No", "TechSupport": "No",
    "StreamingTV": "No", "StreamingMovies": "No", "Contract": "Month-to-month", "PaperlessBilling": "Yes",
    "PaymentMethod": "Electronic check", "MonthlyCharges": 29.85, "TotalCharges": 29.85,
}


def say(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_demo(data: str | None, host: str, port: int, serve: bool, rows: int = 5000) -> int:
    started = time.perf_counter()
    from .emulator import Emulator

    emu = Emulator().start()
    os.environ.update(emu.env)
    say(f"AWS emulator (moto server) on {emu.endpoint}: bucket {emu.env['MODEL_BUCKET']}, table {emu.env['REGISTRY_TABLE']}")
    try:
        from ..bootstrap import build_api, build_provider, build_services
        from ..schema import Schema
        from ..service import train_and_register
        from ..settings import Settings

        services = build_services(Settings.from_env())
        if data:
            payload, source = Path(data).read_bytes(), data
            say(f"training on {data}")
        else:
            from .synth import generate_customers

            buf = io.StringIO()
            generate_customers(rows, seed=42).to_csv(buf, index=False)
            payload, source = buf.getvalue().encode(), f"generated:telco-like:{rows}:seed42"
            say(f"training on {rows} generated Telco-like customers (set DATA=file.csv for your own)")
        summary = train_and_register(payload, Schema.default(), None, services.store, services.registry, source=source)
        m = summary["metrics"]
        say(f"registered {summary['version']}: CV ROC-AUC {m['cv_roc_auc']:.3f}, Brier {m['brier']:.3f} ({summary['seconds']:.0f} s)")
        services.registry.promote(summary["version"], reason="demo")
        say(f"promoted {summary['version']} to champion")

        provider = build_provider(services)
        app = build_api(services, provider)
        from fastapi.testclient import TestClient

        first = TestClient(app).post("/predict", json=EXAMPLE).json()
        say(f"first prediction after {time.perf_counter() - started:.1f} s:")
        print(json.dumps(first, indent=2))
        if not serve:
            return 0
        import uvicorn

        body = json.dumps(EXAMPLE)
        print(
            f"\nServing on http://{host}:{port}  (docs: http://{host}:{port}/docs; Ctrl-C stops)\n"
            f"  curl -s -X POST http://{host}:{port}/predict -H 'content-type: application/json' \\\n"
            f"       -d '{body}'\n",
            flush=True,
        )
        uvicorn.run(app, host=host, port=port, log_level="warning")
        return 0
    finally:
        emu.stop()
        say("emulator stopped")
