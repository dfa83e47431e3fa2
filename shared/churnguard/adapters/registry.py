"""The model registry in DynamoDB.

One table, keys ``pk``/``sk``. Per model name (``MODEL#churn``):
- ``VERSION#{version}``: status (candidate | production | archived | rejected | failed), metrics,
  S3 location, checksums, lineage, timestamps;
- ``ALIAS#champion``: the version in production, the stack of previous champions and a
  ``revision`` counter. Every switch is one transaction conditioned on the revision it read,
  so of two concurrent promotions exactly one wins and the other gets PromotionConflictError.
"""

from __future__ import annotations

import builtins
import secrets
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.adapters.aws_errors import error_code as _code
from churnguard.adapters.dynamo_items import from_item as _from_item
from churnguard.adapters.dynamo_items import to_item as _to_item
from churnguard.domain.canary import CanaryConfig
from churnguard.domain.errors import ModelNotFoundError, PromotionConflictError, StorageError
from churnguard.domain.model_registry import (
    CANARY,
    CHAMPION,
    ModelVersion,
    champion_history,
    check_canary_allowed,
    check_promotable,
    check_status,
    now_iso,
    rollback_target,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["DynamoRegistry"]


class DynamoRegistry:
    def __init__(self, table: str, dynamodb_client: DynamoDBClient, model_name: str = "churn") -> None:
        self.table = table
        self.pk = f"MODEL#{model_name}"
        self.ddb = dynamodb_client

    # ----- versions -------------------------------------------------------------------
    def register(self, mv: ModelVersion) -> ModelVersion:
        item = _to_item({"pk": self.pk, "sk": f"VERSION#{mv.version}", **mv.to_dict()})
        try:
            self.ddb.put_item(TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(pk)")
        except ClientError as e:
            if _code(e) == "ConditionalCheckFailedException":
                raise StorageError(f"version {mv.version} is already registered") from e
            raise StorageError(f"cannot register {mv.version}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot register {mv.version}: {e}") from e
        return mv

    def get(self, version: str) -> ModelVersion:
        try:
            resp = self.ddb.get_item(
                TableName=self.table, Key=_to_item({"pk": self.pk, "sk": f"VERSION#{version}"}), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read version {version}: {e}") from e
        if "Item" not in resp:
            raise ModelNotFoundError(f"no model version {version!r}")
        return ModelVersion.from_item(_from_item(resp["Item"]))

    def list(self) -> list[ModelVersion]:
        out: list[ModelVersion] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :v)",
            "ExpressionAttributeValues": _to_item({":pk": self.pk, ":v": "VERSION#"}),
        }
        try:
            while True:
                resp = self.ddb.query(**kwargs)
                out.extend(ModelVersion.from_item(_from_item(i)) for i in resp.get("Items", []))
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot list model versions: {e}") from e
        return sorted(out, key=lambda m: m.created_at)

    def set_status(
        self, version: str, status: str, reason: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        check_status(status)
        values = {":s": status, ":u": now_iso(), ":r": reason}
        sets = "#st = :s, updated_at = :u, reason = :r"
        for i, (k, v) in enumerate((extra or {}).items()):
            sets += f", {k} = :x{i}"
            values[f":x{i}"] = v
        try:
            self.ddb.update_item(
                TableName=self.table,
                Key=_to_item({"pk": self.pk, "sk": f"VERSION#{version}"}),
                UpdateExpression="SET " + sets,
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#st": "status"},
                ExpressionAttributeValues=_to_item(values),
            )
        except ClientError as e:
            if _code(e) == "ConditionalCheckFailedException":
                raise ModelNotFoundError(f"no model version {version!r}") from e
            raise StorageError(f"cannot update {version}: {e}") from e

    # ----- the champion alias ---------------------------------------------------------
    def alias(self, name: str = CHAMPION) -> dict[str, Any] | None:
        try:
            resp = self.ddb.get_item(
                TableName=self.table, Key=_to_item({"pk": self.pk, "sk": f"ALIAS#{name}"}), ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read alias {name}: {e}") from e
        return _from_item(resp["Item"]) if "Item" in resp else None

    def champion(self) -> ModelVersion:
        alias = self.alias()
        if not alias:
            raise ModelNotFoundError("no champion model has been promoted yet")
        return self.get(alias["version"])

    # ----- the canary / shadow challenger (churnguard.domain.canary) ------------------------------
    def canary(self) -> dict[str, Any] | None:
        """``{"version", "share", "shadow", "updated_at", "reason"}`` of the challenger, or None."""
        alias = self.alias(CANARY)
        return {k: v for k, v in alias.items() if k not in ("pk", "sk")} if alias else None

    def set_canary(self, version: str, share: float, shadow: bool = False, reason: str = "manual") -> dict[str, Any]:
        """Let ``version`` answer ``share`` of customers (or, with ``shadow``, score every request unseen)."""
        config = CanaryConfig(version=version, share=share, shadow=shadow)  # ValueError names a bad share
        current = self.alias()
        check_canary_allowed(self.get(version), current["version"] if current else None)
        item = {"pk": self.pk, "sk": f"ALIAS#{CANARY}", **config.to_dict(), "updated_at": now_iso(), "reason": reason}
        try:
            self.ddb.put_item(TableName=self.table, Item=_to_item(item))
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot set the canary: {e}") from e
        return {k: v for k, v in item.items() if k not in ("pk", "sk")}

    def clear_canary(self) -> dict[str, Any] | None:
        """Stop the canary or shadow; returns what was configured (None if nothing was)."""
        try:
            resp = self.ddb.delete_item(
                TableName=self.table, Key=_to_item({"pk": self.pk, "sk": f"ALIAS#{CANARY}"}), ReturnValues="ALL_OLD"
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot clear the canary: {e}") from e
        old = resp.get("Attributes")
        return {k: v for k, v in _from_item(old).items() if k not in ("pk", "sk")} if old else None

    def promote(self, version: str, reason: str = "manual", expected_revision: int | None = None) -> dict[str, Any]:
        """Make ``version`` the champion. Raises PromotionConflictError if the alias moved meanwhile."""
        target = self.get(version)
        current = self.alias()
        check_promotable(target, current["version"] if current else None)
        return self._switch(version, current, champion_history(current), reason, expected_revision)

    def rollback(self, reason: str = "rollback", expected_revision: int | None = None) -> dict[str, Any]:
        """Restore the previous champion; the current one is archived. ``expected_revision``: only if the
        alias is still at that revision (an automatic rollback must not undo a promotion it did not see)."""
        current = self.alias()
        target, rest = rollback_target(current)
        return self._switch(target, current, rest, reason, expected_revision)

    def _switch(
        self,
        version: str,
        current: dict[str, Any] | None,
        previous: builtins.list[str],
        reason: str,
        expected_revision: int | None,
    ) -> dict[str, Any]:
        revision = int(current["revision"]) if current else 0
        if expected_revision is not None and expected_revision != revision:
            raise PromotionConflictError(f"champion is at revision {revision}, not {expected_revision}")
        ts = now_iso()
        alias = {
            "pk": self.pk,
            "sk": f"ALIAS#{CHAMPION}",
            "version": version,
            "previous": previous,
            "revision": revision + 1,
            "updated_at": ts,
            "reason": reason,
        }
        put: dict[str, Any] = {"TableName": self.table, "Item": _to_item(alias)}
        if current:
            put["ConditionExpression"] = "revision = :rev"
            put["ExpressionAttributeValues"] = _to_item({":rev": revision})
        else:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        items: builtins.list[Any] = [
            {"Put": put},
            {"Update": self._status_update(version, "production", ts, promoted=True)},
        ]
        if current:
            items.append({"Update": self._status_update(current["version"], "archived", ts)})
        canary = self.alias(CANARY)
        if canary and canary.get("version") == version:
            # The challenger became the champion: its canary split has served its purpose.
            items.append(
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": _to_item({"pk": self.pk, "sk": f"ALIAS#{CANARY}"}),
                        "ConditionExpression": "version = :v",
                        "ExpressionAttributeValues": _to_item({":v": version}),
                    }
                }
            )
        try:
            # The token makes botocore's retry of a request whose answer was lost idempotent:
            # DynamoDB answers the retry with the first outcome instead of a false conflict.
            self.ddb.transact_write_items(TransactItems=items, ClientRequestToken=secrets.token_hex(16))
        except ClientError as e:
            if _code(e) in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise PromotionConflictError(
                    f"the champion changed while promoting {version}; nothing was written, read it again"
                ) from e
            raise StorageError(f"cannot switch the champion to {version}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot switch the champion to {version}: {e}") from e
        return {k: v for k, v in alias.items() if k not in ("pk", "sk")}

    def _status_update(self, version: str, status: str, ts: str, promoted: bool = False) -> dict[str, Any]:
        expr = "SET #st = :s, updated_at = :u" + (", promoted_at = :u" if promoted else "")
        return {
            "TableName": self.table,
            "Key": _to_item({"pk": self.pk, "sk": f"VERSION#{version}"}),
            "UpdateExpression": expr,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": _to_item({":s": status, ":u": ts}),
        }
