"""Customer ids never leave the API in clear: logs, stored scores and metrics use a keyed hash.

HMAC-SHA256 with a secret key (``CUSTOMER_ID_HASH_KEY``), so the hash cannot be reversed by
hashing a list of candidate ids without the key, and the same customer always maps to the
same key (joins of predictions, outcomes and scores still work).

    customer_key("7590-VHVEG", b"secret")  # -> 64 hex characters
"""

from __future__ import annotations

import hashlib
import hmac


def customer_key(customer_id: str, secret: bytes) -> str:
    """HMAC-SHA256 of the stripped id, as hex. ``hmac.digest`` is the one-shot C path (about 3x faster
    per id than ``hmac.new``), which batch scoring pays once per stored score."""
    if not secret:
        raise ValueError("a customer-id hash key is required")
    return hmac.digest(secret, customer_id.strip().encode(), hashlib.sha256).hex()


def bucket_of(customer_id_hash: str, buckets: int = 10_000) -> int:
    """A stable bucket in [0, buckets) for sticky traffic splits (canary)."""
    return int(customer_id_hash[:8], 16) % buckets
