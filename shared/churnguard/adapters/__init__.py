"""Adapters: the only modules that talk to AWS. Each takes its boto3 client as an argument."""

from churnguard.adapters.model_store import S3ModelStore
from churnguard.adapters.registry import DynamoRegistry, ModelVersion

__all__ = ["DynamoRegistry", "ModelVersion", "S3ModelStore"]
