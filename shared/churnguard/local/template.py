"""Read ``template.yaml`` (with CloudFormation's short tags) to create local resources from it.

Tests and the demo create their buckets and tables from the template itself, so the local
mocks cannot drift from the deployed stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - PyYAML has no other node kinds
        raise yaml.YAMLError(f"unexpected node {node!r}")
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)  # JSON templates take the list form
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def find_template(start: Path | None = None) -> Path:
    """template.yaml in the working directory or above it, else beside the installed package's repo."""
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "template.yaml").is_file():
            return d / "template.yaml"
    repo = Path(__file__).resolve().parents[3] / "template.yaml"
    if repo.is_file():
        return repo
    raise FileNotFoundError("template.yaml not found in this directory or above it")


def load_template(path: Path | None = None) -> dict[str, Any]:
    return yaml.load((path or find_template()).read_text(), Loader=_CfnLoader)


def local_name(logical_id: str, prefix: str = "churnguard") -> str:
    return f"{prefix}-{logical_id.lower()}"


def create_resources(template: dict[str, Any], s3: Any, dynamodb: Any, prefix: str = "churnguard") -> dict[str, str]:
    """Create the template's buckets and tables; returns the Globals environment with names resolved."""
    names: dict[str, str] = {}
    for logical_id, res in template.get("Resources", {}).items():
        kind, props = res.get("Type"), res.get("Properties", {}) or {}
        if kind == "AWS::S3::Bucket":
            name = local_name(logical_id, prefix)
            s3.create_bucket(Bucket=name)
            if (props.get("VersioningConfiguration") or {}).get("Status") == "Enabled":
                s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            names[logical_id] = name
        elif kind == "AWS::DynamoDB::Table":
            name = local_name(logical_id, prefix)
            kwargs: dict[str, Any] = {
                "TableName": name,
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            for key in ("GlobalSecondaryIndexes",):
                if key in props:
                    kwargs[key] = props[key]
            dynamodb.create_table(**kwargs)
            names[logical_id] = name
    env: dict[str, str] = {}
    variables = template.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {})
    for key, value in variables.items():
        if isinstance(value, dict) and "Ref" in value:
            if value["Ref"] in names:
                env[key] = names[value["Ref"]]
        else:
            env[key] = str(value)
    return env
