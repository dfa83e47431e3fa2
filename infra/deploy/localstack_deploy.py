"""Build template.yaml with `sam build`, deploy it to LocalStack through CloudFormation, seed a champion.

    .venv/bin/python infra/deploy/localstack_deploy.py                  # LocalStack at http://127.0.0.1:4566
    .venv/bin/python infra/deploy/localstack_deploy.py --endpoint http://127.0.0.1:4599 --no-seed

Steps, each a function the e2e tests call too:

1. ``build``: ``sam build`` (no container; python3.12 from PATH or pyenv) into ``.aws-sam/localstack/build``, so
   every function folder and every layer (``ContentUri`` copied into ``python/`` with its requirements.txt
   installed there) is laid out exactly as for AWS.
2. ``package`` + ``deploy``: zip each built folder, upload it and each state machine's ``DefinitionUri`` file to an
   artifacts bucket in LocalStack, point the built template's ``CodeUri``/``ContentUri``/``DefinitionUri`` at
   them, and create (or
   update) the stack through CloudFormation, which applies the SAM transform itself. This is what
   ``sam deploy --resolve-s3`` does, minus its 15 s managed-bucket stack, its slow deflate of a 180 MB layer and
   its 5 s polling: about 20 s instead of 60 s here. ``sam deploy --config-env localstack`` still works.
3. ``seed``: upload generated customers to the model bucket, invoke the deployed TrainFunction, then
   PromoteFunction, unless the registry already has a champion.

Stack name, region and parameters come from ``[localstack.deploy.parameters]`` in samconfig.toml.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# The same reader the tests and the demo use to build resources from template.yaml.
from churnguard.local.template import load_template

ROOT = Path(__file__).resolve().parents[2]
BUILD_ROOT = ROOT / ".aws-sam" / "localstack"
DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
ARTIFACT_BUCKET = "churnguard-deploy-artifacts"
# CloudFormation takes at most this many bytes of TemplateBody; a larger template goes by TemplateURL.
TEMPLATE_BODY_LIMIT = 51_200
# Fast but real training for the seed model (as tests/conftest.py FAST).
SEED_TRAINING = {"n_folds": 3, "max_rounds": 400, "early_stopping_rounds": 40, "search": "off"}
SEED_ROWS = 2000
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND", "CAPABILITY_NAMED_IAM"]


class DeployError(RuntimeError):
    """The build, the stack or the seeding failed; the message says which resource and why."""


# ------------------------------------------------------------------------------------------------ settings


@dataclass(frozen=True)
class Target:
    """Where and what to deploy: a LocalStack endpoint and samconfig's [localstack] deploy settings."""

    endpoint: str = DEFAULT_ENDPOINT
    stack_name: str = "churnguard"
    region: str = "us-east-1"
    parameters: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_samconfig(
        cls, endpoint: str = DEFAULT_ENDPOINT, path: Path = ROOT / "samconfig.toml", env: str = "localstack"
    ) -> Target:
        config = tomllib.loads(path.read_text())
        params = {
            **config.get(env, {}).get("global", {}).get("parameters", {}),
            **config.get(env, {}).get("deploy", {}).get("parameters", {}),
        }
        overrides = dict(item.split("=", 1) for item in shlex.split(params.get("parameter_overrides", "")))
        return cls(
            endpoint=endpoint.rstrip("/"),
            stack_name=params.get("stack_name", "churnguard"),
            region=params.get("region", "us-east-1"),
            parameters=overrides,
        )

    def client(self, service: str, **config: Any) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, **config),
        )


def local_api_url(api_url: str, endpoint: str) -> str:
    """LocalStack's path form of a REST API URL, which needs no DNS for *.localhost.localstack.cloud.

    >>> local_api_url("https://abc123.execute-api.localhost.localstack.cloud:4566/local/", "http://127.0.0.1:4566")
    'http://127.0.0.1:4566/_aws/execute-api/abc123/local'
    """
    parsed = urlparse(api_url)
    api_id = parsed.hostname.split(".", 1)[0]
    stage = parsed.path.strip("/").split("/", 1)[0]
    return f"{endpoint.rstrip('/')}/_aws/execute-api/{api_id}/{stage}"


# ------------------------------------------------------------------------------------------------ build


def python312_bin() -> str:
    """A folder holding a working python3.12 (sam build runs it to install python3.12 dependencies)."""
    found = shutil.which("python3.12")
    if found and subprocess.run([found, "-c", ""], capture_output=True).returncode == 0:
        return str(Path(found).parent)
    pyenv = shutil.which("pyenv")
    if pyenv:
        root = Path(subprocess.run([pyenv, "root"], capture_output=True, text=True).stdout.strip())
        candidates = sorted(root.glob("versions/3.12*/bin/python3.12"))
        if candidates:
            return str(candidates[-1].parent)
    raise DeployError("sam build needs python3.12 on PATH (or under pyenv) for the python3.12 runtime")


def build(sam: Path = ROOT / ".venv-sam" / "bin" / "sam", build_root: Path = BUILD_ROOT) -> Path:
    """Run `sam build`; returns the built template. Cached: unchanged functions and layers are not rebuilt."""
    if not sam.exists():
        raise DeployError(f"{sam} not found: `make lint` (or the Makefile's .venv-sam rule) installs the SAM CLI")
    env = {**os.environ, "PATH": python312_bin() + os.pathsep + os.environ.get("PATH", ""), "SAM_CLI_TELEMETRY": "0"}
    cmd = [
        str(sam),
        "build",
        "--template-file",
        str(ROOT / "template.yaml"),
        "--build-dir",
        str(build_root / "build"),
        "--cache-dir",
        str(build_root / "cache"),
        "--cached",
        "--parallel",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise DeployError(f"sam build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return build_root / "build" / "template.yaml"


# ------------------------------------------------------------------------------------------------ package


def _folder_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            st = p.stat()
            h.update(f"{p.relative_to(folder)}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_mode}\n".encode())
    return h.hexdigest()[:20]


def zip_folder(folder: Path, cache: Path) -> Path:
    """A zip of a built folder, cached by its files' names, sizes and times (sam build --cached keeps them).

    Stored, not deflated: LocalStack unpacks it on the same disk, and deflating a 180 MB layer takes 15 s.
    """
    target = cache / f"{folder.name}-{_folder_digest(folder)}.zip"
    if target.exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    for old in cache.glob(f"{folder.name}-*.zip"):
        old.unlink()
    partial = target.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder))
    partial.rename(target)
    return target


def package(built_template: Path, s3: Any, bucket: str = ARTIFACT_BUCKET) -> dict[str, Any]:
    """The built template with code and state machine definitions in S3, ready for CloudFormation."""
    template = load_template(built_template)
    build_dir = built_template.parent
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        s3.create_bucket(Bucket=bucket)
    for logical_id, resource in template.get("Resources", {}).items():
        kind, props = resource.get("Type"), resource.get("Properties") or {}
        key = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}.get(kind)
        if key and isinstance(props.get(key), str) and not props[key].startswith("s3://"):
            archive = zip_folder((build_dir / props[key]).resolve(), BUILD_ROOT / "zips")
            s3_key = f"{logical_id}/{archive.name}"
            s3.upload_file(str(archive), bucket, s3_key)
            props[key] = f"s3://{bucket}/{s3_key}"
        if kind == "AWS::Serverless::StateMachine" and isinstance(props.get("DefinitionUri"), str):
            # As sam package does: the ASL file to S3 (it may be JSON only after DefinitionSubstitutions).
            source = (build_dir / props["DefinitionUri"]).resolve()
            s3_key = f"{logical_id}/{hashlib.sha256(source.read_bytes()).hexdigest()[:20]}.asl.json"
            s3.upload_file(str(source), bucket, s3_key)
            props["DefinitionUri"] = {"Bucket": bucket, "Key": s3_key}
    return template


# ------------------------------------------------------------------------------------------------ deploy


def _describe(cfn: Any, name: str) -> dict[str, Any] | None:
    try:
        return cfn.describe_stacks(StackName=name)["Stacks"][0]
    except cfn.exceptions.ClientError as e:
        if "does not exist" in str(e):
            return None
        raise


def _stack_events(cfn: Any, name: str) -> list[dict[str, Any]]:
    return cfn.describe_stack_events(StackName=name)["StackEvents"]


def _stack_event_ids(cfn: Any, name: str) -> set[str]:
    return {e["EventId"] for e in _stack_events(cfn, name)}


def _stack_status(cfn: Any, name: str) -> str | None:
    stack = _describe(cfn, name)
    return stack["StackStatus"] if stack else None


def _failures(cfn: Any, name: str) -> str:
    events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    bad = [
        f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason', '')}"
        for e in events
        if e["ResourceStatus"].endswith("FAILED")
    ]
    return "\n".join(bad[:20]) or "no failed resource events"


def deploy(target: Target, template: dict[str, Any], timeout_s: float = 300, update: bool = False) -> dict[str, str]:
    """Create the stack (or, with update=True, update it) and wait for it; returns its Outputs plus LocalApiUrl."""
    cfn = target.client("cloudformation")
    args: dict[str, Any] = dict(
        StackName=target.stack_name,
        Capabilities=CAPABILITIES,
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in target.parameters.items()],
    )
    body = json.dumps(template)
    if len(body.encode()) <= TEMPLATE_BODY_LIMIT:
        args["TemplateBody"] = body
    else:
        # Over CloudFormation's inline limit: from S3, as `sam deploy` does (TemplateURL allows 1 MB).
        key = f"templates/{hashlib.sha256(body.encode()).hexdigest()[:20]}.json"
        target.client("s3").put_object(Bucket=ARTIFACT_BUCKET, Key=key, Body=body.encode())
        args["TemplateURL"] = f"{target.endpoint}/{ARTIFACT_BUCKET}/{key}"
    status = _stack_status(cfn, target.stack_name)
    unchanged = False
    if status is None:
        cfn.create_stack(**args)
        seen: set[str] | None = None
    elif not update and status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        # LocalStack 2026.3 loses a stack's Outputs on update: a running stack is reused, and changes are
        # deployed into a fresh LocalStack (its state is in memory: make localstack-down, then deploy again).
        unchanged = True
        seen = set()
    elif status.endswith("_COMPLETE") and "ROLLBACK" not in status or status == "UPDATE_ROLLBACK_COMPLETE":
        # The stack's status may still read the previous UPDATE_COMPLETE for a moment: wait for a new stack event.
        seen = _stack_event_ids(cfn, target.stack_name)
        try:
            cfn.update_stack(**args)
        except cfn.exceptions.ClientError as e:
            if "No updates are to be performed" not in str(e):
                raise
            unchanged = True
    else:
        raise DeployError(f"stack {target.stack_name} is {status}: delete it (or restart LocalStack) first")
    deadline = time.monotonic() + timeout_s
    while True:
        status = _stack_status(cfn, target.stack_name)
        if seen is None:
            finished = status == "CREATE_COMPLETE"
        else:
            finished = unchanged or any(
                e["ResourceStatus"] == "UPDATE_COMPLETE"
                for e in _stack_events(cfn, target.stack_name)
                if e["EventId"] not in seen and e["LogicalResourceId"] == target.stack_name
            )
        if finished and status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
            break
        if status is None or "FAILED" in status or "ROLLBACK" in status:
            raise DeployError(f"stack {target.stack_name} ended {status}:\n{_failures(cfn, target.stack_name)}")
        if time.monotonic() > deadline:
            raise DeployError(f"stack {target.stack_name} still {status} after {timeout_s:.0f} s")
        time.sleep(0.5)
    stack = _describe(cfn, target.stack_name)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if not outputs:
        raise DeployError(f"stack {target.stack_name} is {stack['StackStatus']} but has no Outputs: restart LocalStack")
    if "ApiUrl" in outputs:
        outputs["LocalApiUrl"] = local_api_url(outputs["ApiUrl"], target.endpoint)
    return outputs


# ------------------------------------------------------------------------------------------------ seed


def invoke(target: Target, function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke a deployed function synchronously; a function error raises DeployError with its message."""
    lam = target.client("lambda", read_timeout=900, connect_timeout=10)
    response = lam.invoke(FunctionName=function_name, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read() or b"null")
    if response.get("FunctionError"):
        raise DeployError(f"{function_name} failed: {payload}")
    return payload


def seed_champion(target: Target, outputs: dict[str, str], rows: int = SEED_ROWS) -> dict[str, Any]:
    """Train on generated customers through the deployed TrainFunction and promote the result.

    Returns ``{"version": ..., "seeded": bool}``; nothing is trained when a champion already exists.
    """
    from churnguard.adapters.registry import DynamoRegistry
    from churnguard.local.synth import generate_customers

    registry = DynamoRegistry(outputs["RegistryTableName"], dynamodb_client=target.client("dynamodb"))
    alias = registry.alias()
    if alias:
        return {"version": alias["version"], "seeded": False}
    buf = io.StringIO()
    generate_customers(rows, seed=11).to_csv(buf, index=False)
    bucket = outputs["ModelBucketName"]
    key = "seed/customers.csv"
    target.client("s3").put_object(Bucket=bucket, Key=key, Body=buf.getvalue().encode())
    summary = invoke(
        target,
        outputs["TrainFunctionName"],
        {"data": f"s3://{bucket}/{key}", "config": SEED_TRAINING, "reason": "seed"},
    )
    promoted = invoke(
        target, outputs["PromoteFunctionName"], {"action": "promote", "version": summary["version"], "reason": "seed"}
    )
    return {"version": promoted["champion"], "seeded": True, "metrics": summary.get("metrics")}


def api_key(target: Target) -> str | None:
    """The value of the stack's API Gateway key (SAM creates it with the usage plan), if it has one."""
    resources = target.client("cloudformation").describe_stack_resources(StackName=target.stack_name)["StackResources"]
    ids = [r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::ApiGateway::ApiKey"]
    if not ids:
        return None
    return target.client("apigateway").get_api_key(apiKey=ids[0], includeValue=True)["value"]


def how_to_call(outputs: dict[str, str], key: str | None) -> str:
    """What to paste to call the deployed API: its URL, its key and a first request."""
    url = outputs.get("LocalApiUrl") or outputs.get("ApiUrl", "").rstrip("/")
    header = f" -H 'x-api-key: {key}'" if key else ""
    return "\n".join(
        [
            f"API      {url}",
            f"API key  {key or '(none: the stack has no API key)'}",
            f"  curl -s {url}/health",
            "  python3 -c \"import json; print(json.load(open('events/predict.json'))['body'])\" |",
            f"    curl -s -X POST {url}/predict{header} -H 'content-type: application/json' -d @-",
        ]
    )


# ------------------------------------------------------------------------------------------------ all


def deploy_local(
    target: Target, skip_build: bool = False, seed: bool = True, update: bool = False, log=print
) -> dict[str, Any]:
    """build -> package -> deploy -> seed; returns the stack Outputs (plus LocalApiUrl and SeedVersion)."""
    t0 = time.monotonic()
    built = BUILD_ROOT / "build" / "template.yaml"
    if not skip_build or not built.exists():
        built = build()
        log(f"sam build: {time.monotonic() - t0:.1f} s")
    t1 = time.monotonic()
    template = package(built, target.client("s3"))
    log(f"package: {time.monotonic() - t1:.1f} s")
    t2 = time.monotonic()
    outputs = deploy(target, template, update=update)
    log(f"stack {target.stack_name}: {time.monotonic() - t2:.1f} s")
    if seed:
        t3 = time.monotonic()
        seeded = seed_champion(target, outputs)
        outputs["SeedVersion"] = seeded["version"]
        log(
            f"champion {seeded['version']} ({'trained and promoted' if seeded['seeded'] else 'already there'}): "
            f"{time.monotonic() - t3:.1f} s"
        )
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", default=os.environ.get("LOCALSTACK_ENDPOINT", DEFAULT_ENDPOINT))
    parser.add_argument("--skip-build", action="store_true", help="reuse .aws-sam/localstack/build")
    parser.add_argument("--no-seed", action="store_true", help="do not train and promote a first model")
    parser.add_argument(
        "--update",
        action="store_true",
        help="update a deployed stack (LocalStack 2026.3 may lose its Outputs; default: reuse it)",
    )
    parser.add_argument("--outputs", type=Path, help="write the stack outputs to this JSON file")
    args = parser.parse_args(argv)
    target = Target.from_samconfig(args.endpoint)
    try:
        outputs = deploy_local(target, skip_build=args.skip_build, seed=not args.no_seed, update=args.update)
    except DeployError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    key = api_key(target)
    if key:
        outputs["ApiKey"] = key
    text = json.dumps(outputs, indent=2, sort_keys=True)
    if args.outputs:
        args.outputs.parent.mkdir(parents=True, exist_ok=True)
        args.outputs.write_text(text + "\n")
    print(text)
    print("\n" + how_to_call(outputs, key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
