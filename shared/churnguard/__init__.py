"""churnguard: the core of a serverless churn-prediction platform, arranged by role.

- ``domain``: what churn prediction is (schema, training, scoring, drift, the gate), with no I/O;
- ``services``: the use cases, typed against the protocols in ``services.ports``;
- ``adapters``: S3, DynamoDB, Firehose, Step Functions, Secrets Manager and local files;
- ``entrypoints``: the HTTP API and the ``churn`` CLI;
- ``bootstrap``: the composition root; ``settings``: the environment, read once.
"""

from churnguard.domain.errors import (
    ArtifactIntegrityError,
    ChurnGuardError,
    DataValidationError,
    ModelNotFoundError,
    ModelUnavailableError,
    PromotionConflictError,
    RecordValidationError,
    SchemaError,
    StorageError,
)
from churnguard.domain.schema import CategoricalFeature, NumericFeature, Schema, ValidationReport

__version__ = "0.1.0"

__all__ = [
    "ArtifactIntegrityError",
    "CategoricalFeature",
    "ChurnGuardError",
    "DataValidationError",
    "ModelNotFoundError",
    "ModelUnavailableError",
    "NumericFeature",
    "PromotionConflictError",
    "RecordValidationError",
    "Schema",
    "SchemaError",
    "StorageError",
    "ValidationReport",
    "__version__",
]
