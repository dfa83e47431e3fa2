"""Runtime interface of one Lambda execution environment run as a local process (standard library only).

Started by LocalProcessRuntimeExecutor as ``python bootstrap.py`` with the function's code and layers on
PYTHONPATH. It speaks the protocol LocalStack's Go init speaks inside a Docker container:

1. import the handler named by ``_HANDLER``, then POST ``{LOCALSTACK_RUNTIME_ENDPOINT}/status/{id}/ready``
   (or ``/status/{id}/error`` with the error, and exit);
2. accept ``POST /invoke`` on 127.0.0.1:``LOCAL_LAMBDA_PORT``, answering at once;
3. run the handler on the main thread, then POST the invocation's output to ``/invocations/{request}/logs`` and
   the result to ``/invocations/{request}/response`` (or the error to ``/error``).

Timeouts and crashes are the executor's business: it kills this process and reports them.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import math
import os
import queue
import resource
import sys
import threading
import time
import traceback
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json"})
    _OPENER.open(request, timeout=30).close()


def _error(exc: BaseException, error_type: str | None = None, request_id: str | None = None) -> dict:
    body = {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_list(
            [frame for frame in traceback.extract_tb(exc.__traceback__) if frame.filename != __file__]
        ),
    }
    if request_id:
        body["requestId"] = request_id
    return body


def _log_error(body: dict) -> None:
    # As the AWS runtime does, so the traceback is in the function's log.
    print(f"[ERROR] {body['errorType']}: {body['errorMessage']}", file=sys.stderr)
    if body["stackTrace"]:
        print("Traceback (most recent call last):\n" + "".join(body["stackTrace"]), file=sys.stderr, end="")


class _ResultEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, decimal.Decimal):  # boto3 returns DynamoDB numbers as Decimal
            return int(o) if o == o.to_integral_value() else float(o)
        return super().default(o)


class LambdaContext:
    """The ``context`` argument, with the attributes the AWS Python runtime provides."""

    def __init__(self, request_id: str, invoked_function_arn: str, deadline: float) -> None:
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_function_arn
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _install_log_handler() -> _RequestIdFilter:
    """The root handler the AWS runtime installs, so `logging.warning(...)` lines look as they do there."""
    request_filter = _RequestIdFilter()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.formatter.converter = time.gmtime
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)
    return request_filter


def _load_handler(spec: str):
    module_name, _, function_name = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise _InitError("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}") from e
    except SyntaxError as e:
        raise _InitError("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}") from e
    try:
        return getattr(module, function_name)
    except AttributeError as e:
        raise _InitError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from e


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


def _peak_memory_mb() -> int:
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across exec.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def _exit_when_orphaned(parent: int) -> None:
    # If LocalStack dies without stopping us, do not linger (stop-by-PID must leave nothing behind).
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def _serve_invocations(port: int, invocations: queue.Queue) -> None:
    class InvokeHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200 if self.path == "/invoke" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            self.wfile.flush()
            # Only now: a handler that kills the process must not cut this answer off.
            if self.path == "/invoke":
                invocations.put(json.loads(body))

        def log_message(self, *args) -> None:  # keep the function's log to what the function prints
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), InvokeHandler)
    threading.Thread(target=server.serve_forever, name="invoke-server", daemon=True).start()


class _Runtime:
    def __init__(self, endpoint: str, runtime_id: str, log_file: str | None) -> None:
        self.endpoint = endpoint
        self.runtime_id = runtime_id
        self.log_file = log_file
        self.version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.timeout = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3"))
        self.request_filter = _install_log_handler()
        self.init_ms: float | None = None

    def init(self, handler_spec: str):
        started = time.perf_counter()
        try:
            handler = _load_handler(handler_spec)
        except Exception as e:  # noqa: BLE001 - any failure while importing user code is an init error
            body = _error(e, getattr(e, "error_type", None))
            _log_error(body)
            _post(f"{self.endpoint}/status/{self.runtime_id}/error", json.dumps(body).encode())
            sys.exit(1)
        self.init_ms = (time.perf_counter() - started) * 1000
        _post(f"{self.endpoint}/status/{self.runtime_id}/ready", b"{}")
        return handler

    def _log_offset(self) -> int:
        sys.stdout.flush()
        sys.stderr.flush()
        return os.path.getsize(self.log_file) if self.log_file else 0

    def _logs_since(self, offset: int) -> str:
        if not self.log_file:
            return ""
        sys.stdout.flush()
        sys.stderr.flush()
        with open(self.log_file, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def invoke(self, handler, invocation: dict) -> None:
        request_id = invocation["invoke-id"]
        os.environ["_X_AMZN_TRACE_ID"] = invocation.get("trace-id") or ""
        self.request_filter.request_id = request_id
        context = LambdaContext(request_id, invocation.get("invoked-function-arn", ""), time.time() + self.timeout)
        offset = self._log_offset()
        print(f"START RequestId: {request_id} Version: {self.version}")
        started = time.perf_counter()
        try:
            result = handler(json.loads(invocation.get("payload") or "null"), context)
            outcome, body = "response", json.dumps(result, cls=_ResultEncoder).encode()
        except Exception as e:  # noqa: BLE001 - reported to the caller as the function error
            error = _error(e, request_id=request_id)
            if isinstance(e, TypeError) and "JSON serializable" in str(e):
                error["errorType"] = "Runtime.MarshalError"
            _log_error(error)
            outcome, body = "error", json.dumps(error).encode()
        duration = (time.perf_counter() - started) * 1000
        max_rss_mb = _peak_memory_mb()
        init = f"\tInit Duration: {self.init_ms:.2f} ms" if self.init_ms is not None else ""
        self.init_ms = None
        print(f"END RequestId: {request_id}")
        print(
            f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\tBilled Duration: {math.ceil(duration)} ms"
            f"\tMemory Size: {self.memory} MB\tMax Memory Used: {max_rss_mb} MB{init}"
        )
        base = f"{self.endpoint}/invocations/{request_id}"
        _post(f"{base}/logs", json.dumps({"logs": self._logs_since(offset)}).encode())
        _post(f"{base}/{outcome}", body)


def main() -> None:
    # `python bootstrap.py` puts this package's folder first on sys.path; function code must not see it.
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), name="orphan-watch", daemon=True).start()
    invocations: queue.Queue = queue.Queue()
    _serve_invocations(int(os.environ["LOCAL_LAMBDA_PORT"]), invocations)
    runtime = _Runtime(
        os.environ["LOCALSTACK_RUNTIME_ENDPOINT"],
        os.environ["LOCALSTACK_RUNTIME_ID"],
        os.environ.get("LOCAL_LAMBDA_LOG_FILE"),
    )
    handler = runtime.init(os.environ["_HANDLER"])
    while True:
        runtime.invoke(handler, invocations.get())


if __name__ == "__main__":
    main()
