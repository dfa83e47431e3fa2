"""The deployed stack, once per session: LocalStack on the host (no Docker), template.yaml through CloudFormation.

By default the session starts its own LocalStack on a free port (state in .localstack/e2e), deploys with
infra/deploy/localstack_deploy.py (sam build, CloudFormation, a seeded champion), and stops it by PID at the end,
checking that no process it started is left. ``E2E_ENDPOINT=http://127.0.0.1:4566`` reuses a running LocalStack
(``make deploy-local``) instead, and leaves it running.

Tests reach the stack only through its CloudFormation Outputs: ``stack.outputs["TrainFunctionName"]``,
``stack.api`` (an HTTP client on ApiUrl in LocalStack's path form).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.deploy.localstack_deploy import ROOT, Target, api_key, deploy_local, invoke

SCRIPTS = ROOT / "infra" / "localstack"
STATE_DIR = ROOT / ".localstack" / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


@dataclass
class Stack:
    target: Target
    outputs: dict[str, str]
    api: Any  # httpx.Client on the REST API stage

    def client(self, service: str, **config: Any) -> Any:
        return self.target.client(service, **config)

    def invoke(self, output_key: str, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke the function named by an output; a function error raises."""
        return invoke(self.target, self.outputs[output_key], event)

    def invoke_raw(self, output_key: str, event: dict[str, Any]) -> tuple[str | None, Any]:
        """(FunctionError or None, decoded payload), for tests about failures."""
        lam = self.client("lambda", read_timeout=900)
        response = lam.invoke(FunctionName=self.outputs[output_key], Payload=json.dumps(event).encode())
        return response.get("FunctionError"), json.loads(response["Payload"].read() or b"null")

    def function_logs(self, logical_id: str, limit: int = 80) -> str:
        """The last lines a deployed function logged (CloudWatch Logs), to explain a failure."""
        cfn = self.client("cloudformation")
        try:
            name = cfn.describe_stack_resource(StackName=self.target.stack_name, LogicalResourceId=logical_id)[
                "StackResourceDetail"
            ]["PhysicalResourceId"]
            events = self.client("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except Exception as e:  # noqa: BLE001 - diagnostics only
            return f"(no logs for {logical_id}: {e})"
        return "\n".join(e["message"].rstrip() for e in events[-limit:])

    def require(self, *keys: str) -> None:
        missing = [k for k in keys if k not in self.outputs]
        assert not missing, f"template.yaml has no Outputs {missing}; deployed outputs: {sorted(self.outputs)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _descendants(pid: int) -> set[int]:
    out: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        children: list[int] = []
        for task in Path(f"/proc/{parent}/task").glob("*"):  # threads start processes too
            try:
                children += map(int, (task / "children").read_text().split())
            except OSError:
                pass
        for child in children:
            out.add(child)
            todo.append(child)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _script(name: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name)], env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    import httpx

    reuse = os.environ.get("E2E_ENDPOINT")
    env = dict(os.environ)
    pid: int | None = None
    if reuse:
        endpoint = reuse.rstrip("/")
    else:
        python = env.get("LOCAL_LAMBDA_PYTHON") or str(ROOT / ".venv-lambda" / "bin" / "python")
        assert Path(python).exists(), f"no Python for the functions at {python}: run `make e2e` (it builds it)"
        port = _free_port()
        env.update(
            LOCALSTACK_PORT=str(port),
            LOCALSTACK_STATE_DIR=str(STATE_DIR),
            LOCAL_LAMBDA_PYTHON=python,
            LAMBDA_KEEPALIVE_MS=env.get("LAMBDA_KEEPALIVE_MS", "120000"),
        )
        _script("down.sh", env)  # a session killed earlier may have left its LocalStack behind
        up = _script("up.sh", env)
        assert up.returncode == 0, f"LocalStack did not start:\n{up.stdout}\n{up.stderr}"
        pid = int((STATE_DIR / "localstack.pid").read_text())
        endpoint = f"http://127.0.0.1:{port}"
    try:
        target = Target.from_samconfig(endpoint)
        outputs = deploy_local(target, log=lambda msg: print(f"[e2e deploy] {msg}"))
        headers = {"x-api-key": key} if (key := api_key(target)) else {}
        with httpx.Client(base_url=outputs["LocalApiUrl"], headers=headers, timeout=60, trust_env=False) as api:
            yield Stack(target, outputs, api)
    finally:
        if pid is not None:
            tree = _descendants(pid)
            down = _script("down.sh", env)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and any(_alive(p) for p in tree | {pid}):
                time.sleep(0.2)
            left = sorted(p for p in tree | {pid} if _alive(p))
            assert down.returncode == 0 and not left, (
                f"LocalStack left processes {left} behind:\n{down.stdout}\n{down.stderr}"
            )


@pytest.fixture(scope="session")
def api(stack: Stack):
    return stack.api


@pytest.fixture(scope="session")
def registry(stack: Stack):
    from churnguard.adapters.registry import DynamoRegistry

    return DynamoRegistry(stack.outputs["RegistryTableName"], dynamodb_client=stack.client("dynamodb"))


@pytest.fixture(scope="session")
def model_store(stack: Stack):
    from churnguard.adapters.model_store import S3ModelStore

    return S3ModelStore(stack.outputs["ModelBucketName"], s3_client=stack.client("s3"))
