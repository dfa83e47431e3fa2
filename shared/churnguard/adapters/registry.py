"""The model registry in DynamoDB.

One table, keys ``pk``/``sk``. Per model name (``MODEL#churn``):
- ``VERSION#{version}``: status (candidate | production | archived | rejected | failed), metrics,
  S3 location, checksums, lineage, timestamps;
- ``ALIAS#champion``: the version in production, the stack of previous champions and a
  ``revision`` counter; ``ALIAS#canary``: the challenger and its share.

The rules are domain/model_registry.py's: every change reads the registry's state, asks the domain
for the transition (which checks the invariants on the state it leads to) and writes it as one
transaction conditioned on everything it read: the alias revision, each touched version's status
and the canary alias. Of two concurrent changes exactly one wins; the other gets
PromotionConflictError and nothing of it is written.
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
    ChampionAlias,
    ModelVersion,
    RegistryState,
    Transition,
    check_canary_allowed,
    check_version_id,
    now_iso,
    plan_promotion,
    plan_rollback,
    plan_status,
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
        """Record a new version; every version starts as a candidate (the only way into the registry)."""
        check_version_id(mv.version)
        if mv.status != "candidate":
            raise PromotionConflictError(f"a version is registered as a candidate, not {mv.status}")
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
        check_version_id(version)
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
            "ConsistentRead": True,
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

    def state(self) -> RegistryState:
        """Every version's status and both aliases, as the domain's transitions are planned from."""
        canary = self.alias(CANARY)
        return RegistryState(
            statuses={m.version: m.status for m in self.list()},
            champion=ChampionAlias.from_item(self.alias()),
            canary=str(canary["version"]) if canary else None,
        )

    def set_status(
        self, version: str, status: str, reason: str | None = None, extra: dict[str, Any] | None = None
    ) -> None:
        """Reject or fail a version (domain/model_registry.py says which changes are allowed), or with the
        same status, update its reason and ``extra`` attributes."""
        transition = plan_status(self.state(), version, status)
        self._write(transition, what=f"mark {version} {status}", reason=reason, extra=extra)

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
        check_version_id(version)
        config = CanaryConfig(version=version, share=share, shadow=shadow)  # ValueError names a bad share
        state = self.state()
        check_canary_allowed(state, version)
        item = {"pk": self.pk, "sk": f"ALIAS#{CANARY}", **config.to_dict(), "updated_at": now_iso(), "reason": reason}
        # Conditioned on the version's status and the champion alias as read: a concurrent reject or
        # promotion of this version makes the canary write fail instead of breaking the invariants.
        items: builtins.list[Any] = [
            {"Put": {"TableName": self.table, "Item": _to_item(item)}},
            {"ConditionCheck": self._version_condition(version, state.statuses[version])},
            {"ConditionCheck": self._champion_condition(state.champion)},
        ]
        self._transact(items, what=f"set the canary to {version}")
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
        """Make ``version`` the champion. Raises PromotionConflictError if it may not be promoted, if the
        alias is not at ``expected_revision``, or if the registry changed meanwhile."""
        transition = plan_promotion(self.state(), version, expected_revision)
        return self._write(transition, what=f"promote {version}", reason=reason)

    def rollback(self, reason: str = "rollback", expected_revision: int | None = None) -> dict[str, Any]:
        """Restore the newest earlier champion that may still serve; the current one is archived."""
        transition = plan_rollback(self.state(), expected_revision)
        return self._write(transition, what="roll back", reason=reason)

    # ----- writing a transition ---------------------------------------------------------
    def _write(
        self, t: Transition, what: str, reason: str | None = None, extra: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One transaction: the new alias, each status change and the canary, each conditioned on what was read."""
        ts = now_iso()
        items: builtins.list[Any] = []
        alias: dict[str, Any] = {}
        if t.champion is not None:
            alias = {
                "pk": self.pk,
                "sk": f"ALIAS#{CHAMPION}",
                "version": t.champion.version,
                "previous": list(t.champion.previous),
                "revision": t.champion.revision,
                "updated_at": ts,
                "reason": reason,
            }
            items.append(
                {"Put": {"TableName": self.table, "Item": _to_item(alias), **_as_read("revision", t.read_revision)}}
            )
        for version, (old, new) in t.statuses.items():
            values: dict[str, Any] = {":s": new, ":u": ts, ":old": old}
            sets = "#st = :s, updated_at = :u"
            if new == "production":
                sets += ", promoted_at = :u"
            # A switch's reason lives on the alias; a status change's here (also an archived version's reason
            # given by set_status, e.g. why it was rolled back).
            if new not in ("production", "archived") or (t.champion is None and reason is not None):
                sets += ", reason = :r"
                values[":r"] = reason
            for i, (k, v) in enumerate((extra or {}).items()):
                sets += f", {k} = :x{i}"
                values[f":x{i}"] = v
            update = self._version_condition(version, old)
            update.update(UpdateExpression="SET " + sets, ExpressionAttributeValues=_to_item(values))
            items.append({"Update": update})
        if t.end_canary:
            items.append({"Delete": self._canary_condition(t.canary_read)})
        elif t.champion is not None or any(old != new for old, new in t.statuses.values()):
            items.append({"ConditionCheck": self._canary_condition(t.canary_read)})
        self._transact(items, what=what)
        return {k: v for k, v in alias.items() if k not in ("pk", "sk")}

    def _transact(self, items: builtins.list[Any], what: str) -> None:
        try:
            # The token makes botocore's retry of a request whose answer was lost idempotent:
            # DynamoDB answers the retry with the first outcome instead of a false conflict.
            self.ddb.transact_write_items(TransactItems=items, ClientRequestToken=secrets.token_hex(16))
        except ClientError as e:
            if _code(e) in ("TransactionCanceledException", "ConditionalCheckFailedException"):
                raise PromotionConflictError(
                    f"the registry changed while trying to {what}; nothing was written, read it again"
                ) from e
            raise StorageError(f"cannot {what}: {e}") from e
        except BotoCoreError as e:
            raise StorageError(f"cannot {what}: {e}") from e

    def _version_condition(self, version: str, status: str) -> dict[str, Any]:
        return {
            "TableName": self.table,
            "Key": _to_item({"pk": self.pk, "sk": f"VERSION#{version}"}),
            "ConditionExpression": "attribute_exists(pk) AND #st = :old",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": _to_item({":old": status}),
        }

    def _alias_condition(self, name: str, attribute: str, value: Any) -> dict[str, Any]:
        """A check that alias ``name`` is as read: absent when ``value`` is None, else ``attribute = value``."""
        return {
            "TableName": self.table,
            "Key": _to_item({"pk": self.pk, "sk": f"ALIAS#{name}"}),
            **_as_read(attribute, value),
        }

    def _champion_condition(self, alias: ChampionAlias | None) -> dict[str, Any]:
        return self._alias_condition(CHAMPION, "revision", alias.revision if alias else None)

    def _canary_condition(self, version: str | None) -> dict[str, Any]:
        return self._alias_condition(CANARY, "version", version)


def _as_read(attribute: str, value: Any) -> dict[str, Any]:
    """The condition that an item is as read: absent when ``value`` is None, else ``attribute = value``."""
    if value is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {"ConditionExpression": f"{attribute} = :read", "ExpressionAttributeValues": _to_item({":read": value})}
