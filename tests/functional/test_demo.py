"""`make demo`'s command on a free port: emulator, training, promotion, then the loop around the API
(logged predictions, a local drift report, a batch job with stored scores), all over real HTTP."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

from churnguard.local.demo import EXAMPLE
from churnguard.local.emulator import free_port
from tests.conftest import ROOT

DEMO = [sys.executable, "-m", "churnguard", "demo", "--rows", "1500"]


def first_json_after(text: str, marker: str) -> dict:
    start = text.index(marker)
    return json.loads(re.search(r"^\{.*?^\}", text[start:], re.S | re.M).group(0))


def test_demo_shows_a_prediction_logged_predictions_a_drift_report_and_a_stored_score(tmp_path):
    port = free_port()
    p = subprocess.run(
        [*DEMO, "--no-serve", "--port", str(port), "--workdir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert f"first prediction from http://127.0.0.1:{port}/predict" in out
    first = first_json_after(out, "first prediction from")
    assert 0 < first["churn_probability"] < 1 and first["reasons"] and first["model_version"].startswith("v")

    # 1. every answered prediction is in the log the drift check reads: the first one plus the cohort
    assert re.search(r"logged 601 predictions to s3://churnguard-modelbucket/predictions/dt=\d{4}-\d\d-\d\d/", out)
    # 2. the drift check judged them (the cohort's tenure is halved) and wrote its report here
    drift = re.search(r"drift check: (\w+) \(drifted: ([^)]*)\); report (\S+\.html)", out)
    assert drift and drift.group(1) == "retrain" and "tenure" in drift.group(2)
    html = open(drift.group(3)).read()
    assert html.startswith("<!DOCTYPE html>") and "tenure" in html
    assert os.path.exists(drift.group(3).removesuffix(".html") + ".json")
    # 3. a batch job stored every score, and the API answers one from the store
    assert "batch job: 1000 of 1000 scored, 1000 scores stored" in out
    stored = first_json_after(out, "answers from the score table")
    assert (
        stored["job_id"] == "local" and stored["reasons_computed"] and stored["model_version"] == first["model_version"]
    )
    assert (tmp_path / "batch" / "out" / "_job" / "summary.json").exists()
    assert "emulator stopped" in out


def get(url, payload=None):
    data = None if payload is None else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status, r.headers.get("content-type"), r.read()


def test_the_serving_demo_answers_what_it_prints_and_stops_cleanly(tmp_path):
    port = free_port()
    demo = subprocess.Popen(
        [*DEMO, "--port", str(port), "--workdir", str(tmp_path)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines, deadline = [], time.monotonic() + 600
        while time.monotonic() < deadline:
            line = demo.stdout.readline()
            assert line or demo.poll() is None, demo.stderr.read()
            lines.append(line)
            if line.startswith("export PREDICTION_LOG_BUCKET="):  # the last line it prints before serving
                break
        printed = "".join(lines)
        url = f"http://127.0.0.1:{port}"
        assert f"Serving on {url}" in printed
        # The commands it prints work, as a user would run them.
        customer = re.search(rf"curl -s {url}/customers/(\S+)/score", printed).group(1)
        status, _, body = get(f"{url}/customers/{customer}/score")
        assert status == 200 and json.loads(body)["reasons"]
        status, _, body = get(f"{url}/predict", EXAMPLE)
        assert status == 200 and json.loads(body)["fallback"] is False
        status, kind, body = get(f"{url}/docs")
        assert status == 200 and "/docs/assets/swagger-ui-bundle.js" in body.decode()
        assert get(f"{url}/docs/assets/swagger-ui-bundle.js")[0] == 200
        assert re.search(r"export AWS_ENDPOINT_URL=http://127\.0\.0\.1:\d+", printed)
    finally:
        demo.send_signal(signal.SIGTERM)
        out, err = demo.communicate(timeout=60)
    assert demo.returncode == 0, err
    assert "emulator stopped" in out and "Traceback" not in err


def test_make_demo_refuses_a_busy_port_before_building_anything():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        started = time.monotonic()
        p = subprocess.run(
            ["make", "--no-print-directory", "demo", f"PORT={port}"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert p.returncode == 2 and time.monotonic() - started < 10  # no venv, no emulator, no training
    assert p.stderr.startswith(
        f"error: port {port} on 127.0.0.1 is already in use: choose another (make demo PORT=8123)"
    )
    assert p.stdout == ""
