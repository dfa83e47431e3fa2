"""`churn emulator` on its own, and the CLI in "another shell" against it: the printed export lines are
all it takes to register a model, `churn serve` it (banner, logged predictions) and run `churn drift`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from churnguard.local.ports import free_port
from tests.conftest import ROOT, load_event
from tests.functional.test_security_degradation import register

CHURN = [sys.executable, "-m", "churnguard"]


def start(args, env=None):
    return subprocess.Popen(
        CHURN + args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def read_until(proc, predicate, timeout_s=120):
    lines, deadline = [], time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            raise AssertionError(f"exited {proc.returncode}: {''.join(lines)} {proc.stderr.read()}")
        lines.append(line)
        if predicate(line):
            return "".join(lines)
    raise AssertionError(f"timed out: {''.join(lines)}")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out, err


def exports(text: str) -> dict[str, str]:
    return dict(line[len("export ") :].split("=", 1) for line in text.splitlines() if line.startswith("export "))


@pytest.fixture
def emulator(tmp_path):
    env_file = tmp_path / "emulator.env"
    proc = start(["emulator", "--port", str(free_port()), "--env-file", str(env_file)])
    printed = read_until(proc, lambda line: line.startswith("export PREDICTION_LOG_BUCKET="))
    yield proc, printed, env_file
    if proc.poll() is None:
        stop(proc)


def test_the_emulator_prints_every_resource_and_the_cli_works_from_its_exports(
    emulator, trained, monkeypatch, tmp_path
):
    proc, printed, env_file = emulator
    env = exports(printed)
    assert env == exports(env_file.read_text())
    # Endpoint, region, dummy credentials and every bucket and table template.yaml declares.
    assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") and env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
    for name in (
        "MODEL_BUCKET",
        "REGISTRY_TABLE",
        "OUTCOMES_TABLE",
        "SCORES_TABLE",
        "BATCH_JOBS_TABLE",
        "BATCH_BUCKET",
    ):
        assert env[name].startswith("churnguard-"), name
    assert env["PREDICTION_LOG_BUCKET"] == env["MODEL_BUCKET"]

    # Another shell: a model registered and promoted through the exported endpoint.
    from churnguard.bootstrap import build_services
    from churnguard.settings import Settings

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    register(build_services(Settings.from_env()), trained, "v1", promote=True)

    port = free_port()
    serve = start(["serve", "--port", str(port)], env)
    banner = read_until(serve, lambda line: "stored scores" in line)
    try:
        assert f"churn serve 0.1.0: http://127.0.0.1:{port}" in banner
        assert "champion        v1 (loaded)" in banner
        assert f"backend         {env['AWS_ENDPOINT_URL']} (region us-east-1)" in banner
        assert f"prediction log  s3://{env['MODEL_BUCKET']}/predictions/dt=YYYY-MM-DD/" in banner
        body = load_event("predict")["body"].encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict", data=body, headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            assert json.loads(r.read())["model_version"] == "v1"
    finally:
        code, _, err = stop(serve)  # stopping writes what the log still buffers
    assert code == 0 and "stopped" in err

    drift = subprocess.run(
        CHURN + ["drift", "--out", str(tmp_path / "reports"), "--json"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert drift.returncode == 0, drift.stderr
    summary = json.loads(drift.stdout)
    assert summary["rows"] == 1 and summary["decision"] == "insufficient_data"  # the one logged prediction
    assert summary["html"].startswith(str(tmp_path / "reports" / "drift")) and os.path.exists(summary["html"])

    code, _, err = stop(proc)
    assert code == 0 and "emulator stopped" in err
