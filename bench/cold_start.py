"""Cold start of the PACKAGED predict function, as Lambda would run it without SnapStart.

A fresh CPython 3.12 process, which may not write bytecode (Lambda's code folders are read-only), gets
only what the function ships (build/lambda/functions/PredictFunction,
then its layers' python/ folders, then boto3 as the Lambda runtime provides it), imports the handler,
loads the champion from the S3/DynamoDB emulator (moto server on 127.0.0.1), verifies its checksums and
answers the first API Gateway event. The clock runs from before the process is spawned until the
answer is read back. Build the packages first: `python infra/packaging/package.py build`.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.emulated import ROOT, publish

sys.path.insert(0, str(ROOT / "infra" / "packaging"))
import package as packaging  # noqa: E402

FIRST_REQUEST = r"""
import json, sys
import app
event = json.loads(open(sys.argv[1]).read())
class Context:
    function_name = "PredictFunction"; memory_limit_in_mb = 1024; aws_request_id = "cold-start"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:PredictFunction"
    @staticmethod
    def get_remaining_time_in_millis(): return 10000
response = app.handler(event, Context())
heavy = sorted(m for m in ("lightgbm", "scipy", "pandas", "sklearn") if m in sys.modules)
sys.stderr.write(json.dumps({"status": response["statusCode"], "body": response["body"][:200], "heavy": heavy}) + "\n")
sys.stderr.flush()
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, timeout: float = 20.0) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def measure(bundle: Any, runs: int = 5, out: Path = packaging.OUT) -> dict[str, Any]:
    import boto3

    from churnguard.local.template import create_resources, load_template

    fn_dir = out / "functions" / "PredictFunction"
    layers = packaging.units(packaging.load_template())[1]["PredictFunction"]["layers"]
    if not fn_dir.exists():
        raise SystemExit("build the packages first: python infra/packaging/package.py build")
    py = packaging.python312()
    if py is None:
        raise SystemExit("no python3.12 to run the packaged function with")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **creds},
    )
    try:
        _wait_for(endpoint + "/moto-api/")
        kw = dict(
            endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
        )
        s3, ddb = boto3.client("s3", **kw), boto3.client("dynamodb", **kw)
        env_vars = create_resources(load_template(ROOT / "template.yaml"), s3, ddb)
        publish(bundle, s3, ddb, env_vars)
        event_file = ROOT / "events" / "predict.json"
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": os.environ.get("HOME", "/tmp"),
            "LANG": "C.UTF-8",
            "PYENV_VERSION": "3.12.1",
            "PYTHONNOUSERSITE": "1",
            # /var/task and /opt are read-only on Lambda: no run may leave bytecode for the next one, so each
            # run pays what a real cold start pays (the packages ship CPython 3.12 bytecode; see their Makefiles).
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONPATH": packaging.lambda_path(fn_dir, [out / "layers" / lid for lid in layers], out),
            "AWS_ENDPOINT_URL": endpoint,
            "POWERTOOLS_SERVICE_NAME": "churnguard",
            "POWERTOOLS_METRICS_NAMESPACE": "ChurnGuard",
            "AWS_LAMBDA_FUNCTION_NAME": "PredictFunction",
            **creds,
            **env_vars,
        }
        times, last = [], {}
        for _ in range(runs):
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [py, "-s", "-c", FIRST_REQUEST, str(event_file)],
                env=env,
                cwd=str(fn_dir),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            line = ""
            for line in proc.stderr:  # Powertools may log to stderr too: the answer is the last JSON line
                if line.startswith('{"status"'):
                    break
            elapsed = time.perf_counter() - t0
            rest = proc.stderr.read()
            proc.wait()
            if not line.startswith('{"status"'):
                raise RuntimeError(f"the packaged function did not answer:\n{rest[-3000:]}")
            last = json.loads(line)
            if last["status"] != 200:
                raise RuntimeError(f"first request failed: {last}")
            times.append(elapsed)
    finally:
        server.terminate()
        server.wait(timeout=10)
    return {
        "cold_start_s": round(statistics.median(times), 3),
        "runs_s": [round(t, 3) for t in times],
        "python": "3.12 (packaged function + its layers + runtime boto3 only)",
        "heavy_modules_imported": last.get("heavy", []),
        "first_answer": last.get("body"),
    }


if __name__ == "__main__":  # python -m bench.cold_start BUNDLE.json
    from churnguard.domain.bundle import ModelBundle

    b = json.loads(open(sys.argv[1]).read())
    print(json.dumps(measure(ModelBundle(b["version"], b["model_text"], b["metadata"])), indent=2))
