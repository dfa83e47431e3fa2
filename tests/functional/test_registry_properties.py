"""The registry's invariants (domain/model_registry.py) under random sequences of operations.

Hypothesis drives register, promote (with a right, a stale or no expected revision), reject, fail,
rollback, canary set and clear against the DynamoDB registry adapter, under moto with the table
template.yaml declares, and after every step reads the stored registry back and checks:

1. the champion alias's version is the only ``production`` version (none without an alias);
2. the history holds only ``archived`` versions, each once, never the champion, at most MAX_HISTORY;
3. ``rejected`` and ``failed`` are final: never the champion, in the history or the canary, never changed;
4. the canary names a ``candidate`` or ``archived`` version other than the champion;
5. a switch raises the revision by exactly one; a refused operation changes nothing at all;

plus each operation's own promise (a promoted version is the champion; a rollback never restores
the version it left, nor a refused one). The checks are written out here, independently of
``domain.model_registry.violations``, which must agree with them.
"""

from __future__ import annotations

import boto3
import hypothesis.strategies as st
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from churnguard.adapters.registry import DynamoRegistry
from churnguard.domain.errors import ModelNotFoundError, PromotionConflictError
from churnguard.domain.model_registry import (
    MAX_HISTORY,
    ChampionAlias,
    ModelVersion,
    RegistryState,
    violations,
)
from churnguard.local.template import create_resources, load_template
from tests.conftest import ROOT

VERSIONS = [f"v{i}" for i in range(7)]
REFUSED = {"rejected", "failed"}


def _registry_table_only() -> dict:
    template = load_template(ROOT / "template.yaml")
    return {"Resources": {"RegistryTable": template["Resources"]["RegistryTable"]}}


class RegistryMachine(RuleBasedStateMachine):
    @initialize()
    def fresh_registry(self):
        from moto import mock_aws

        self.mock = mock_aws()
        self.mock.start()
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )
        ddb = session.client("dynamodb")
        names = create_resources(_registry_table_only(), session.client("s3"), ddb)
        table = next(iter(names.values())) if names else "churnguard-registrytable"
        self.registry = DynamoRegistry(table, ddb)
        self.registered: list[str] = []
        self.refused: dict[str, str] = {}  # version -> the refused status it must keep
        self.last = self.snapshot()  # the stored registry after the previous step

    def teardown(self):
        if hasattr(self, "mock"):
            self.mock.stop()

    # ----- what is stored ------------------------------------------------------------------------
    def snapshot(self):
        alias = self.registry.alias()
        canary = self.registry.canary()
        statuses = {m.version: m.status for m in self.registry.list()}
        return statuses, alias, canary

    def after(self):
        self.last = self.snapshot()
        return self.last

    def refused_changes_nothing(self, before, call):
        try:
            return call()
        except (PromotionConflictError, ModelNotFoundError):
            assert self.after() == before, "a refused operation changed the registry"
            return None

    # ----- operations ----------------------------------------------------------------------------
    @rule(version=st.sampled_from(VERSIONS))
    def register(self, version):
        if version in self.registered:
            return
        self.registry.register(
            ModelVersion(version=version, status="candidate", location="s3://b/x", manifest_sha256="0")
        )
        self.registered.append(version)
        self.after()

    @precondition(lambda self: self.registered)
    @rule(data=st.data(), stale=st.sampled_from([None, "right", "stale"]))
    def promote(self, data, stale):
        version = data.draw(st.sampled_from(self.registered))
        before = self.last
        revision = int(before[1]["revision"]) if before[1] else 0
        expected = {None: None, "right": revision, "stale": revision + 1}[stale]
        out = self.refused_changes_nothing(
            before, lambda: self.registry.promote(version, reason="property test", expected_revision=expected)
        )
        if out is None:
            assert stale == "stale" or before[0][version] in REFUSED or (before[1] or {}).get("version") == version
            return
        statuses, alias, canary = self.after()
        assert stale != "stale" and before[0][version] not in REFUSED
        assert alias["version"] == version and statuses[version] == "production"
        assert int(alias["revision"]) == revision + 1
        if before[1]:
            assert statuses[before[1]["version"]] == "archived"
            assert alias["previous"][:1] == [before[1]["version"]]
        if before[2] and before[2]["version"] == version:
            assert canary is None  # promoting the canary ends it

    @precondition(lambda self: self.registered)
    @rule(data=st.data(), status=st.sampled_from(["rejected", "failed"]))
    def reject_or_fail(self, data, status):
        version = data.draw(st.sampled_from(self.registered))
        before = self.last
        out = self.refused_changes_nothing(
            before, lambda: self.registry.set_status(version, status, reason="test") or True
        )
        if out is None:
            old = before[0][version]
            is_champion = (before[1] or {}).get("version") == version
            assert is_champion or old in REFUSED | {"production"} or (old, status) == ("archived", "failed")
            return
        statuses, alias, _ = self.after()
        assert statuses[version] == status
        self.refused.setdefault(version, status)

    @rule()
    def rollback(self):
        before = self.last
        out = self.refused_changes_nothing(before, lambda: self.registry.rollback(reason="property test"))
        if out is None:
            return
        statuses, alias, _ = self.after()
        left = before[1]["version"]
        assert alias["version"] != left, "a rollback re-instated the version it rolled back from"
        assert alias["version"] in before[1]["previous"]
        assert before[0][alias["version"]] not in REFUSED
        assert statuses[left] == "archived" and left not in alias["previous"]
        assert int(alias["revision"]) == int(before[1]["revision"]) + 1

    @precondition(lambda self: self.registered)
    @rule(data=st.data(), shadow=st.booleans())
    def set_canary(self, data, shadow):
        version = data.draw(st.sampled_from(self.registered))
        before = self.last
        out = self.refused_changes_nothing(
            before, lambda: self.registry.set_canary(version, share=0.0 if shadow else 0.2, shadow=shadow)
        )
        if out is not None:
            self.after()
            assert before[0][version] in ("candidate", "archived")
            assert (before[1] or {}).get("version") != version

    @rule()
    def clear_canary(self):
        self.registry.clear_canary()
        self.after()

    # ----- the invariants, after every step --------------------------------------------------------
    @invariant()
    def registry_is_consistent(self):
        if not hasattr(self, "last"):
            return
        statuses, alias, canary = self.last
        production = sorted(v for v, s in statuses.items() if s == "production")
        assert production == ([alias["version"]] if alias else [])  # 1
        if alias:
            history = alias["previous"]
            assert len(history) <= MAX_HISTORY and len(set(history)) == len(history)  # 2
            assert alias["version"] not in history
            assert all(statuses[v] == "archived" for v in history)
        for version, status in self.refused.items():  # 3
            assert statuses[version] == status
        if canary:  # 4
            assert statuses[canary["version"]] in ("candidate", "archived")
            assert not alias or canary["version"] != alias["version"]
        state = RegistryState(statuses, ChampionAlias.from_item(alias), canary["version"] if canary else None)
        assert violations(state) == []


RegistryMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_registry_invariants_hold_under_random_operations = RegistryMachine.TestCase
