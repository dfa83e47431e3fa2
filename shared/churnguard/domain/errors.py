"""Domain errors. Adapters translate library errors into these; entry points map them to responses."""

from __future__ import annotations

from typing import Any


class ChurnGuardError(Exception):
    """Base of every error the core raises on purpose."""


class SchemaError(ChurnGuardError):
    """A schema file is malformed or contradicts itself."""


class DataValidationError(ChurnGuardError):
    """Input data breaks the schema; `report` says where."""

    def __init__(self, message: str, report: Any | None = None) -> None:
        super().__init__(message)
        self.report = report


class RecordValidationError(ChurnGuardError):
    """One record breaks the schema; `problems` lists (field, value, what is allowed)."""

    def __init__(self, problems: list[dict[str, Any]]) -> None:
        self.problems = problems
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        super().__init__(f"invalid record: {summary}")


class ModelNotFoundError(ChurnGuardError):
    """No such model version, or no champion has been promoted yet."""


class ArtifactIntegrityError(ChurnGuardError):
    """A model file does not match the checksum recorded for it."""


class ModelUnavailableError(ChurnGuardError):
    """The champion cannot be loaded and no last-known-good model is cached."""


class PromotionConflictError(ChurnGuardError):
    """Another promotion or rollback changed the champion first."""


class StorageError(ChurnGuardError):
    """S3 or DynamoDB failed in a way the caller cannot fix by changing input."""


class OutcomeConflictError(ChurnGuardError):
    """An outcome for this customer and date is already stored with the opposite value."""


class GateNotPassedError(ChurnGuardError):
    """A promotion was asked for a version whose evaluation did not pass the gate."""


class ConfigurationError(ChurnGuardError):
    """A required setting is missing or malformed."""


class CustomerNotFoundError(ChurnGuardError):
    """No stored feature vector for this customer: unknown, or no longer an active customer."""


class FeatureMismatchError(ChurnGuardError):
    """A stored feature vector does not fit the champion's schema (trained on other features)."""


class SignInRefusedError(ChurnGuardError):
    """A person's sign-in to the console was refused (wrong name or password, or a password the pool's
    policy rejects); the message says which, never more."""


class SettingsError(ConfigurationError, ValueError):
    """A settings file or mapping (training config, gate, drift thresholds) names an unknown setting or
    gives a value of the wrong type. Also a ValueError, as these mappings always raised."""
