"""churnguard: the core of a serverless churn-prediction platform.

Domain modules (schema, features, training, bundle, predictor, drift) import no AWS SDK;
adapters (``churnguard.adapters``) take boto3 clients as arguments.
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
