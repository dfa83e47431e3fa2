"""A LocalStack Lambda runtime executor that runs each execution environment as a local process.

LocalStack community only ships a Docker executor. This one starts ``bootstrap.py`` (the runtime interface, next
to this module) under a host Python with the function's code and its layers on ``PYTHONPATH``, laid out as on AWS:

    <code>  <layerN>/python/lib/pythonX.Y/site-packages ... <layer1>/...  <layerN>/python ... <layer1>/python

(later layers win, as they do when AWS merges them into ``/opt``). Native libraries are found as on AWS
(``sandbox.py``): ``LD_LIBRARY_PATH`` in Lambda's order (runtime, ``<code>``, ``<code>/lib``, each ``<layer>/lib``),
and, when the executor runs as root, in a private mount namespace where the system library folder holds only the
libraries the python3.12 runtime has (infra/packaging/lambda-runtime-libraries.txt): a package that relies on one
of this host's extra libraries fails here as it would on AWS.

Which Python runs the function code: ``LOCAL_LAMBDA_PYTHON`` (``infra/localstack/up.sh`` sets it to the
project's dev virtualenv when there is one), else ``python3.12`` from ``PATH``. Because the code and layers come
first on the path, the packages a function or layer brings shadow the interpreter's own.

The executor, not the child, enforces the function timeout (a hung handler cannot stop itself) and watches the
process, so that a crash is answered with ``Runtime.ExitError`` instead of leaving the caller waiting for 905 s.
As on AWS, a sandbox whose runtime died or timed out is initialised again on its next invocation.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from concurrent.futures import Future, InvalidStateError
from concurrent.futures import TimeoutError as FutureTimeoutError
from enum import Enum
from pathlib import Path

import requests
from localstack import config
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)
from localstack.utils.net import get_free_tcp_port

from local_lambda_executor import sandbox

LOG = logging.getLogger(__name__)

ENV_PYTHON = "LOCAL_LAMBDA_PYTHON"
HOST = "127.0.0.1"
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
NO_PROXY = {"http": "", "https": ""}


def error_payload(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def child_python() -> str:
    """The interpreter that runs function code: LOCAL_LAMBDA_PYTHON, else python3.12 on PATH."""
    python = os.environ.get(ENV_PYTHON) or shutil.which("python3.12")
    if not python:
        raise LambdaRuntimeException(f"No Python for Lambda functions: set {ENV_PYTHON}")
    return python


@functools.cache
def python_version(python: str) -> str:
    """'3.12' for a python3.12 interpreter; also proves the interpreter runs (a pyenv shim may not)."""
    try:
        out = subprocess.run(
            [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError) as e:
        raise LambdaRuntimeException(f"Cannot run {python} ({ENV_PYTHON}): {e}") from e
    return out.stdout.strip()


def code_layout(function_version: FunctionVersion) -> tuple[Path, list[str], list[Path]]:
    """Task root, sys.path entries and layer folders (newest first) for a function, as AWS merges layers."""
    cfg = function_version.config
    task_root = cfg.code.get_unzipped_code_location()
    runtime = str(cfg.runtime.value if isinstance(cfg.runtime, Enum) else cfg.runtime)  # "python3.12"
    layers = [layer.code.get_unzipped_code_location() for layer in cfg.layers if layer.code]
    newest_first = list(reversed(layers))
    sys_path = [str(task_root)]
    sys_path += [str(layer / "python" / "lib" / runtime / "site-packages") for layer in newest_first]
    sys_path += [str(layer / "python") for layer in newest_first]
    return task_root, sys_path, newest_first


@functools.cache
def _hide_host_libraries() -> bool:
    """Whether function processes run with only the runtime's libraries (once per LocalStack; warns if not)."""
    reason = sandbox.available()
    if reason:
        LOG.warning("Lambda functions run with this host's shared libraries, not only the runtime's: %s", reason)
    return reason is None


def _as_str(value) -> str:
    # LocalStack hands over ints and StrEnums among the environment variables.
    return str(value.value if isinstance(value, Enum) else value)


def _terminate(process: subprocess.Popen, grace: float) -> None:
    """Stop a runtime and whatever it started (it leads its own process group)."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM if grace else signal.SIGKILL)
        process.wait(timeout=grace or 5)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)
    except ProcessLookupError:
        pass


class LocalProcessRuntimeExecutor(RuntimeExecutor):
    """One Lambda execution environment: a bootstrap.py process serving one invocation at a time."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self.endpoint = ExecutorEndpoint(id, container_address=HOST, container_port=None)
        self.process: subprocess.Popen | None = None
        self.env: dict[str, str] = {}
        # Each sandbox gets its own /tmp (TMPDIR) and keeps its output in one file, read for get_logs().
        self.sandbox = Path(tempfile.mkdtemp(prefix=f"lambda-{function_version.id.function_name}-"))
        self.log_path = self.sandbox / "output.log"
        self.request_id: str | None = None
        self._invocation_offset = 0
        self.stopped = False
        self.lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------------------------

    def start(self, env_vars: dict[str, str]) -> None:
        python = child_python()
        task_root, sys_path, layers = code_layout(self.function_version)
        tmp = self.sandbox / "tmp"
        tmp.mkdir()
        env = {key: _as_str(value) for key, value in env_vars.items()}
        env.update(
            LAMBDA_TASK_ROOT=str(task_root),  # the real folder, not the /var/task of a container
            PYTHONPATH=os.pathsep.join(sys_path),
            # Not the host's LD_LIBRARY_PATH: only what Lambda puts there.
            LD_LIBRARY_PATH=sandbox.library_path(task_root, layers, hidden=_hide_host_libraries()),
            PATH=os.pathsep.join([str(Path(python).parent), os.environ.get("PATH", "/usr/bin:/bin")]),
            HOME=os.environ.get("HOME", str(tmp)),
            LANG="C.UTF-8",
            TMPDIR=str(tmp),
            PYTHONUNBUFFERED="1",
            PYTHONDONTWRITEBYTECODE="1",  # leave the unzipped code as it was deployed
            LOCAL_LAMBDA_LOG_FILE=str(self.log_path),
        )
        self.env = env
        with self.lock:
            self._spawn(python, task_root)
        # ExecutionEnvironment's startup timer calls stop() if this takes longer than
        # LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT, which cancels the wait.
        self.endpoint.wait_for_startup()

    def _spawn(self, python: str, task_root: Path) -> None:
        self.endpoint.container_port = get_free_tcp_port()
        self.endpoint.start()  # (re)registers the callback routes with a fresh startup future
        with open(self.log_path, "ab") as log:
            argv = [python, str(BOOTSTRAP)]
            self.process = subprocess.Popen(
                sandbox.command(argv, tmp_root=str(self.sandbox.parent)) if _hide_host_libraries() else argv,
                env={**self.env, "LOCAL_LAMBDA_PORT": str(self.endpoint.container_port)},
                cwd=task_root,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        threading.Thread(target=self._watch, args=(self.process,), name=f"lambda-watch-{self.id}", daemon=True).start()

    def _watch(self, process: subprocess.Popen) -> None:
        """Turn an unexpected exit into an error for whoever waits, rather than a hang."""
        code = process.wait()
        if self.stopped or process is not self.process:
            return
        reason = f"signal: {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        startup = self.endpoint.startup_future
        if startup is not None and not startup.done():
            payload = error_payload("Runtime.ExitError", f"Runtime exited with error: {reason}")
            self._settle(startup, exception=StatusErrorException("Runtime exited during init", payload))
            return
        invocation = self.endpoint.invocation_future
        if invocation is not None and not invocation.done():
            message = f"RequestId: {self.request_id} Error: Runtime exited with error: {reason}"
            result = InvocationResult(
                self.request_id,
                error_payload("Runtime.ExitError", message),
                is_error=True,
                logs=self._logs_since(self._invocation_offset) + message + "\n",
            )
            self._settle(invocation, result=result)

    @staticmethod
    def _settle(future: Future, result=None, exception: BaseException | None = None) -> bool:
        try:
            future.set_exception(exception) if exception else future.set_result(result)
            return True
        except InvalidStateError:  # the runtime answered first
            return False

    def stop(self) -> None:
        self.stopped = True
        if self.process is not None:
            _terminate(self.process, grace=2)
        try:
            self.endpoint.shutdown()
        except Exception as e:  # noqa: BLE001 - unregistering twice is harmless
            LOG.debug("Error while shutting down executor endpoint %s: %s", self.id, e)
        shutil.rmtree(self.sandbox, ignore_errors=True)

    # -- invocation ----------------------------------------------------------------------------------------

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                # As on AWS: a sandbox whose runtime crashed or timed out is initialised again.
                self._spawn(child_python(), code_layout(self.function_version)[0])
                self.endpoint.startup_future.result(timeout=config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
        self.request_id = payload["invoke-id"]
        self._invocation_offset = self._log_size()
        future: Future[InvocationResult] = Future()
        self.endpoint.invocation_future = future
        self.endpoint.logs = None
        try:
            response = requests.post(
                f"http://{HOST}:{self.endpoint.container_port}/invoke", json=payload, proxies=NO_PROXY, timeout=10
            )
            response.raise_for_status()
        except requests.ConnectionError:
            if self.process.poll() is None:
                raise
            # The runtime died while taking the invocation: _watch reports it as Runtime.ExitError.
        timeout = float(self.function_version.config.timeout)
        try:
            return future.result(timeout=timeout)
        except FutureTimeoutError:
            message = f"RequestId: {self.request_id} Error: Task timed out after {timeout:.2f} seconds"
            result = InvocationResult(
                self.request_id,
                error_payload("Sandbox.Timedout", message),
                is_error=True,
                logs=self._logs_since(self._invocation_offset) + message + "\n",
            )
            if self._settle(future, result=result):
                _terminate(self.process, grace=0)  # AWS stops the sandbox; the next invoke starts a new one
            return future.result()

    def _log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _logs_since(self, offset: int) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def get_logs(self) -> str:
        return self._logs_since(0)

    # -- addresses -----------------------------------------------------------------------------------------

    def get_address(self) -> str:
        return HOST

    def get_endpoint_from_executor(self) -> str:
        return HOST

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{HOST}:{port}{self.endpoint.get_endpoint_prefix()}"

    # -- versions ------------------------------------------------------------------------------------------

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        cfg = function_version.config
        runtime = _as_str(cfg.runtime) if cfg.runtime else ""
        if not runtime.startswith("python"):
            raise LambdaRuntimeException(
                f"The local-process executor runs Python zip functions only, not {runtime or 'images'}"
            )
        version = python_version(child_python())
        if runtime != f"python{version}":
            LOG.warning(
                "Function %s declares %s but runs under Python %s (%s): compiled packages in its code or "
                "layers must match that interpreter",
                function_version.id.function_name,
                runtime,
                version,
                child_python(),
            )
        cfg.code.prepare_for_execution()
        for layer in cfg.layers:
            if layer.code:
                layer.code.prepare_for_execution()  # community LocalStack does not unpack layers itself

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # LocalStack removes the unpacked code when it deletes the version

    @classmethod
    def validate_environment(cls) -> bool:
        try:
            python_version(child_python())
        except LambdaRuntimeException as e:
            LOG.warning("Lambda functions cannot run: %s", e)
            return False
        return True
