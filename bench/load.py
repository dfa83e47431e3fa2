"""Load test of the local API server with wrk: sustained POST /predict, loopback only, bounded.

The server is ``churn serve`` (uvicorn, one worker, the same FastAPI app the Lambda serves) on
127.0.0.1, started and stopped by PID, with the champion loaded from the S3/DynamoDB emulator
(moto server on 127.0.0.1, in this process). wrk POSTs events/predict.json's body for
``--seconds`` (default 60) over a few connections; its Lua script also stops each thread after
``--max-requests`` (a bound on count as well as time), and counts every answer that is not 200.

    PYTHONPATH=shared:. python -m bench.load --seconds 60            # prints JSON
    PYTHONPATH=shared:. python -m bench.load --seconds 5 --out x.json  # a short run

Needs ``wrk`` on PATH (Debian: apt-get install wrk; ``make bench-load`` installs it when missing).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.emulated import ROOT, publish

LUA = r"""
-- POST the predict event's body; stop each thread after max_requests answers; count non-200s.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open("%(body)s", "rb"):read("*a")
local max_requests = %(max_per_thread)d
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) answered = 0; not_ok = 0 end
function response(status, headers, body)
  answered = answered + 1
  if status ~= 200 then not_ok = not_ok + 1 end
  if answered >= max_requests then wrk.thread:stop() end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("not_ok") end
  io.write(string.format("NOT_200 %%d\n", bad))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("PCT %%g %%d\n", p, latency:percentile(p)))
  end
end
"""


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, body: bytes, deadline_s: float) -> dict[str, Any]:
    """POST until the server answers 200 (the first answer loads the champion from the emulator)."""
    end = time.monotonic() + deadline_s
    last: Exception | None = None
    while time.monotonic() < end:
        try:
            req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except Exception as e:  # noqa: BLE001 - not up yet
            last = e
            time.sleep(0.2)
    raise RuntimeError(f"the server did not answer within {deadline_s} s: {last}")


def parse_wrk(text: str) -> dict[str, Any]:
    def num(pattern: str, default: float = 0.0) -> float:
        m = re.search(pattern, text)
        return float(m.group(1)) if m else default

    pct = {float(p): int(us) for p, us in re.findall(r"^PCT (\S+) (\d+)$", text, re.M)}
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise RuntimeError(f"unexpected wrk output:\n{text}")
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    requests, seconds = int(m.group(1)), float(m.group(2)) * scale
    errors = {
        "not_200": int(num(r"^NOT_200 (\d+)$")),
        "non_2xx_3xx": int(num(r"Non-2xx or 3xx responses: (\d+)")),
        **(
            {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), socket_errors.groups(), strict=False)}
            if socket_errors
            else {}
        ),
    }
    return {
        "requests": requests,
        "seconds": round(seconds, 2),
        "requests_per_s": round(requests / seconds, 1) if seconds else None,
        "p50_ms": round(pct.get(50.0, 0) / 1000, 2),
        "p90_ms": round(pct.get(90.0, 0) / 1000, 2),
        "p99_ms": round(pct.get(99.0, 0) / 1000, 2),
        "p999_ms": round(pct.get(99.9, 0) / 1000, 2),
        "errors": errors,
        "error_count": sum(errors[k] for k in errors if k != "non_2xx_3xx"),
    }


def measure(
    bundle: Any, seconds: int = 60, connections: int = 8, threads: int = 1, max_requests: int = 2_000_000
) -> dict[str, Any]:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed (make bench-load installs it: apt-get install wrk)")
    from churnguard.local.emulator import Emulator

    body_path = Path(tempfile.mkstemp(prefix="predict-body-", suffix=".json")[1])
    script = Path(tempfile.mkstemp(prefix="wrk-predict-", suffix=".lua")[1])
    event = json.loads((ROOT / "events" / "predict.json").read_text())
    body_path.write_bytes(event["body"].encode())
    script.write_text(LUA % {"body": body_path, "max_per_thread": max(1, max_requests // threads)})
    port = _free_port()
    url = f"http://127.0.0.1:{port}/predict"
    server = None
    try:
        with Emulator() as emu:
            import boto3

            s3 = boto3.client("s3", endpoint_url=emu.endpoint, region_name="us-east-1")
            ddb = boto3.client("dynamodb", endpoint_url=emu.endpoint, region_name="us-east-1")
            publish(bundle, s3, ddb, emu.env)
            env = {**os.environ, **emu.env, "PYTHONPATH": f"{ROOT / 'shared'}:{ROOT}"}
            env.pop("PREDICTION_LOG_STREAM", None)  # no Firehose here: the log would only count drops
            env.pop("PREDICTION_LOG_BUCKET", None)  # nor the emulator's direct log: measure serving alone, as before
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "churnguard",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            first = _wait_ready(url, event["body"].encode(), deadline_s=60)
            if not first.get("reasons"):
                raise RuntimeError(f"the server answered without reasons: {first}")
            cmd = [
                wrk,
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "5s",
                "--latency",
                "-s",
                str(script),
                url,
            ]
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
            if run.returncode != 0:
                raise RuntimeError(f"wrk failed ({run.returncode}): {run.stderr[-2000:]}")
            result = parse_wrk(run.stdout)
            alive = server.poll() is None
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        body_path.unlink(missing_ok=True)
        script.unlink(missing_ok=True)
    result.update(
        tool=f"wrk -t{threads} -c{connections} -d{seconds}s --latency (Lua: POST events/predict.json body, "
        f"stop after {max_requests} answers)",
        server="churn serve: uvicorn, 1 worker, 127.0.0.1; champion from moto server S3/DynamoDB",
        duration_target_s=seconds,
        server_alive_after=alive,
        zero_errors=result["error_count"] == 0 and alive,
    )
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument(
        "--bundle",
        type=Path,
        default=ROOT / "build" / "bench" / "bundle.json",
        help="bundle JSON (make bench writes one)",
    )
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--max-requests", type=int, default=2_000_000)
    p.add_argument("--out", type=Path)
    a = p.parse_args(argv)
    from churnguard.domain.bundle import ModelBundle

    if a.bundle.exists():
        b = json.loads(a.bundle.read_text())
        bundle = ModelBundle(b["version"], b["model_text"], b["metadata"])
    else:  # a small synthetic model, so the short run needs no Telco training
        from bench.batch_bench import train_bundle

        bundle = train_bundle()
    result = measure(bundle, seconds=a.seconds, connections=a.connections, max_requests=a.max_requests)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return 0 if result["zero_errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
