"""Adapters: the only modules that talk to AWS. Each takes its boto3 client as an argument."""

from .model_store import S3ModelStore
from .registry import DynamoRegistry, ModelVersion

__all__ = ["DynamoRegistry", "ModelVersion", "S3ModelStore"]
