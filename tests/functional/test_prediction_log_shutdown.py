"""The reap path: an execution environment of the predict function holds prediction-log records in
its buffer (too few and too fresh to send) when Lambda shuts it down with SIGTERM. They are sent
then, or counted as PredictionLogDropped: none is lost uncounted.

The environment is a real process running functions/predict/app.py as Lambda runs it (the handler
called with API Gateway events, AWS_LAMBDA_FUNCTION_NAME set), against moto's server in another
process (S3, DynamoDB, Firehose delivering to S3); the test sends it SIGTERM as Lambda does.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import boto3
import pytest

from churnguard.domain.prediction_log import parse_jsonl
from churnguard.local.template import create_resources, load_template
from tests.conftest import ROOT
from tests.functional.aws_process import moto_server_process

ENVIRONMENT = """
import json, sys, time
from churnguard.local.functions import LambdaContext, import_function

fn = import_function("predict")
event = json.loads(open("events/predict.json").read())
r = fn.handler(event, LambdaContext("PredictFunction"))
assert r["statusCode"] == 200, r
print("BUFFERED", len(fn._prediction_log), flush=True)
time.sleep(120)  # idle, as a frozen environment waits to be reaped
"""


@pytest.fixture
def stack(trained):
    """moto's server with the template's resources, the prediction-log stream, and a champion."""
    from churnguard.bootstrap import build_services
    from churnguard.settings import Settings
    from tests.functional.test_security_degradation import register

    with moto_server_process() as endpoint:
        creds = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        clients = {n: session.client(n, endpoint_url=endpoint) for n in ("s3", "dynamodb", "firehose")}
        env = create_resources(load_template(ROOT / "template.yaml"), clients["s3"], clients["dynamodb"])
        clients["firehose"].create_delivery_stream(
            DeliveryStreamName="churnguard-predictions",
            DeliveryStreamType="DirectPut",
            ExtendedS3DestinationConfiguration={
                "RoleARN": "arn:aws:iam::123456789012:role/firehose",
                "BucketARN": f"arn:aws:s3:::{env['MODEL_BUCKET']}",
                "Prefix": "predictions/",
            },
        )
        services = build_services(Settings.from_env(env), clients["s3"], clients["dynamodb"])
        register(services, trained, "v1", promote=True)
        yield {**creds, **env, "AWS_ENDPOINT_URL": endpoint}, clients


def _environment(env: dict[str, str], stream: str) -> subprocess.Popen:
    child_env = {
        **os.environ,
        **env,
        "PREDICTION_LOG_STREAM": stream,
        "AWS_LAMBDA_FUNCTION_NAME": "PredictFunction",  # as Lambda sets it
        "POWERTOOLS_SERVICE_NAME": "churnguard",
    }
    child_env.pop("AWS_LAMBDA_RUNTIME_API", None)  # no Extensions API here: the signal comes from the test
    proc = subprocess.Popen(
        [sys.executable, "-c", ENVIRONMENT],
        cwd=ROOT,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:  # wait until it has answered and holds the record
        if line.startswith("BUFFERED"):
            assert line.split() == ["BUFFERED", "1"], line
            return proc
    raise AssertionError(f"the environment never answered: {proc.stderr.read()[-3000:]}")


def _reap(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)  # Lambda's shutdown
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out + err


def _delivered(clients, bucket: str) -> list[dict]:
    s3 = clients["s3"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="predictions/").get("Contents", [])]
    return [r for k in keys for r in parse_jsonl(s3.get_object(Bucket=bucket, Key=k)["Body"].read())]


def _dropped(output: str) -> float:
    total = 0.0
    for line in output.splitlines():
        if line.startswith("{") and '"PredictionLogDropped"' in line:
            value = json.loads(line)["PredictionLogDropped"]
            total += sum(value) if isinstance(value, list) else value
    return total


def test_a_buffered_record_is_sent_when_the_environment_is_reaped(stack):
    env, clients = stack
    proc = _environment(env, "churnguard-predictions")
    try:
        assert _delivered(clients, env["MODEL_BUCKET"]) == []  # still in the buffer
    finally:
        code, output = _reap(proc)
    assert code == 0, output[-3000:]
    got = _delivered(clients, env["MODEL_BUCKET"])
    assert len(got) == 1 and got[0]["model_version"] == "v1" and got[0]["variant"] == "champion"
    assert _dropped(output) == 0


def test_a_record_that_cannot_be_sent_at_shutdown_is_counted_as_lost(stack):
    env, clients = stack
    proc = _environment(env, "no-such-stream")  # Firehose refuses: the record cannot be delivered
    code, output = _reap(proc)
    assert code == 0, output[-3000:]
    assert _delivered(clients, env["MODEL_BUCKET"]) == []
    assert _dropped(output) == 1  # PredictionLogDropped, in the EMF line CloudWatch turns into the metric


def test_the_shutdown_extension_speaks_the_extensions_api():
    """Lambda sends SIGTERM only when an extension is registered. Lambda's Extensions API is not
    available here (neither moto nor LocalStack serve it in process), so a stdlib HTTP server answers
    the two documented calls, and the test checks what the function sends and that it waits on
    event/next, as every extension must."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from churnguard.adapters.lambda_runtime import register_shutdown_extension

    seen: list[tuple[str, str, dict, bytes]] = []
    waiting = threading.Event()

    class ExtensionsApi(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(("POST", self.path, dict(self.headers), body))
            self.send_response(200)
            self.send_header("Lambda-Extension-Identifier", "ext-1")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def do_GET(self):  # noqa: N802
            seen.append(("GET", self.path, dict(self.headers), b""))
            waiting.set()  # subscribed to no event: nothing ever comes; the server just closes at the end

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ExtensionsApi)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert register_shutdown_extension(f"127.0.0.1:{server.server_port}", "churnguard-shutdown-flush")
        assert waiting.wait(5)
    finally:
        server.shutdown()
    (_, register_path, headers, body), (_, next_path, next_headers, _) = seen[:2]
    assert register_path == "/2020-01-01/extension/register" and json.loads(body) == {"events": []}
    assert headers["Lambda-Extension-Name"] == "churnguard-shutdown-flush"
    assert next_path == "/2020-01-01/extension/event/next" and next_headers["Lambda-Extension-Identifier"] == "ext-1"
    assert not register_shutdown_extension("127.0.0.1:9", "x")  # no Extensions API: logged, never raised


def test_the_shutdown_hook_off_the_main_thread_is_skipped_not_fatal(caplog):
    """Python takes signal handlers from the main thread only: a handler module imported elsewhere must
    still load (and say that buffered records may then be lost on reaping)."""
    import threading

    from churnguard.adapters.lambda_runtime import on_shutdown

    installed: list[bool] = []
    worker = threading.Thread(target=lambda: installed.append(on_shutdown(lambda: None)))
    worker.start()
    worker.join(10)
    assert installed == [False]
    assert "no shutdown hook" in caplog.text
    assert signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.default_int_handler)
