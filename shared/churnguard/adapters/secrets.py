"""Secrets Manager: the customer-id hash key, read once per cold start.

key = read_secret_bytes(boto3.client("secretsmanager"), "churnguard/customer-id-hash-key")
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import ConfigurationError

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient


def read_secret_bytes(client: SecretsManagerClient, secret_id: str) -> bytes:
    """The secret's string as bytes; ConfigurationError when it cannot be read or is empty."""
    try:
        value = client.get_secret_value(SecretId=secret_id)["SecretString"]
    except (ClientError, BotoCoreError, KeyError) as e:
        raise ConfigurationError(f"cannot read the customer-id hash key secret: {e}") from e
    if not value:
        raise ConfigurationError("the customer-id hash key secret is empty")
    return value.encode()
