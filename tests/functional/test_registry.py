"""S3 model store and DynamoDB registry against moto, with resources created from template.yaml."""

import threading

import boto3
import pytest

from churnguard.domain.bundle import ModelBundle
from churnguard.domain.errors import ArtifactIntegrityError, ModelNotFoundError, PromotionConflictError
from churnguard.domain.model_registry import ModelVersion
from churnguard.domain.predictor import Predictor


def register(services, bundle, version):
    b = ModelBundle(version=version, model_text=bundle.model_text, metadata={**bundle.metadata, "version": version})
    stored = services.store.put(b)
    return services.registry.register(
        ModelVersion(
            version=version,
            status="candidate",
            location=stored["location"],
            manifest_sha256=stored["manifest_sha256"],
            checksums=stored["files"],
            metrics={"cv_roc_auc": 0.84},
        )
    )


def test_bundle_round_trip_through_s3(services, trained):
    mv = register(services, trained[0], "v1")
    bundle = services.store.get("v1", mv.manifest_sha256)
    assert Predictor(bundle).version == "v1"
    assert services.registry.get("v1").checksums == mv.checksums


def test_tampered_object_in_s3_is_refused(services, trained, aws):
    mv = register(services, trained[0], "v1")
    s3 = boto3.client("s3")
    key = "models/v1/model.txt"
    text = s3.get_object(Bucket=aws["MODEL_BUCKET"], Key=key)["Body"].read()
    s3.put_object(Bucket=aws["MODEL_BUCKET"], Key=key, Body=text.replace(b"leaf_value=", b"leaf_value=9", 1))
    with pytest.raises(ArtifactIntegrityError):
        services.store.get("v1", mv.manifest_sha256)


def test_promote_and_rollback_keep_statuses_consistent(services, trained):
    for v in ("v1", "v2", "v3"):
        register(services, trained[0], v)
    reg = services.registry
    with pytest.raises(ModelNotFoundError):
        reg.champion()
    reg.promote("v1")
    reg.promote("v2")
    reg.promote("v3")
    assert reg.champion().version == "v3"
    assert {m.version: m.status for m in reg.list()} == {"v1": "archived", "v2": "archived", "v3": "production"}
    reg.rollback()
    assert reg.champion().version == "v2"
    assert {m.version: m.status for m in reg.list()} == {"v1": "archived", "v2": "production", "v3": "archived"}
    assert reg.alias()["previous"] == ["v1"]


def test_stale_revision_is_refused(services, trained):
    register(services, trained[0], "v1")
    register(services, trained[0], "v2")
    services.registry.promote("v1")
    with pytest.raises(PromotionConflictError):
        services.registry.promote("v2", expected_revision=0)
    assert services.registry.champion().version == "v1"


def test_unknown_or_rejected_versions_cannot_be_promoted(services, trained):
    with pytest.raises(ModelNotFoundError):
        services.registry.promote("nope")
    register(services, trained[0], "v1")
    services.registry.set_status("v1", "rejected", reason="AUC below the champion")
    with pytest.raises(PromotionConflictError, match="rejected"):
        services.registry.promote("v1")


def test_concurrent_promotions_exactly_one_wins(trained):
    """20 clients race to promote; each reads the alias, then writes conditioned on what it read.

    Runs against the emulator as `make demo` and the benchmarks start it (local/emulator.py: one
    request at a time, because DynamoDB isolates transactions and moto's threaded server does not).
    """
    from churnguard.adapters.model_store import S3ModelStore
    from churnguard.adapters.registry import DynamoRegistry
    from churnguard.local.emulator import Emulator
    from tests.conftest import ROOT

    with Emulator(ROOT / "template.yaml") as emu:
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
        )

        def registry():
            return DynamoRegistry(
                emu.env["REGISTRY_TABLE"], dynamodb_client=session.client("dynamodb", endpoint_url=emu.endpoint)
            )

        class Services:
            store = S3ModelStore(emu.env["MODEL_BUCKET"], s3_client=session.client("s3", endpoint_url=emu.endpoint))

        setup = Services()
        setup.registry = registry()
        contenders = [f"v{i:02d}" for i in range(20)]
        register(setup, trained[0], "base")
        setup.registry.promote("base")
        for v in contenders:
            register(setup, trained[0], v)
        barrier = threading.Barrier(len(contenders))
        wins, conflicts, errors = [], [], []
        # Every contender decided on the same champion: a promotion that starts after another
        # has committed is sequential, not concurrent, and may legitimately replace it.
        seen = int(setup.registry.alias()["revision"])

        def attempt(v):
            reg = registry()  # each contender is its own client, as concurrent Lambdas are
            barrier.wait()
            try:
                reg.promote(v, expected_revision=seen)
                wins.append(v)
            except PromotionConflictError:
                conflicts.append(v)
            except Exception as e:  # pragma: no cover - shown in the assertion below
                errors.append(repr(e))

        threads = [threading.Thread(target=attempt, args=(v,)) for v in contenders]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(wins) == 1 and len(conflicts) == 19
        statuses = {m.version: m.status for m in setup.registry.list()}
        assert setup.registry.champion().version == wins[0]
        assert [v for v, s in statuses.items() if s == "production"] == wins
        assert statuses["base"] == "archived"
        assert sum(s == "candidate" for s in statuses.values()) == 19
        assert setup.registry.alias()["previous"][0] == "base"


def test_promoting_the_canary_ends_the_canary(services, trained):
    register(services, trained[0], "v1")
    register(services, trained[0], "v2")
    services.registry.promote("v1")
    services.registry.set_canary("v2", share=0.1)
    assert services.registry.canary()["version"] == "v2"
    services.registry.promote("v2")
    assert services.registry.canary() is None
    assert services.registry.champion().version == "v2"


# ----- the registry's invariants (domain/model_registry.py), one regression each ----------------------
def test_rollback_never_restores_a_rejected_version(services, trained):
    for v in ("v1", "v2"):
        register(services, trained[0], v)
    reg = services.registry
    reg.promote("v1")
    reg.promote("v2")
    reg.set_status("v1", "rejected", reason="found leaking the target")  # an old champion withdrawn for good
    assert reg.alias()["previous"] == []  # it left the history with its rejection
    with pytest.raises(ModelNotFoundError, match="no previous champion"):
        reg.rollback()
    assert reg.champion().version == "v2"
    assert {m.version: m.status for m in reg.list()} == {"v1": "rejected", "v2": "production"}


def test_rejecting_the_serving_champion_is_refused(services, trained):
    register(services, trained[0], "v1")
    services.registry.promote("v1")
    with pytest.raises(PromotionConflictError, match="is the champion: roll back or promote another"):
        services.registry.set_status("v1", "rejected", reason="gate said no")
    assert services.registry.champion().status == "production"
    with pytest.raises(PromotionConflictError, match="is the champion"):
        services.registry.set_status("v1", "archived")  # only a switch archives a champion


def test_history_never_holds_the_champion_so_rollback_does_not_ping_pong(services, trained):
    for v in ("v1", "v2", "v3"):
        register(services, trained[0], v)
    reg = services.registry
    for v in ("v1", "v2", "v3", "v1"):  # v1 promoted again: it must not also stay in the history
        reg.promote(v)
    assert reg.alias()["previous"] == ["v3", "v2"]
    assert reg.rollback()["version"] == "v3"
    assert reg.rollback()["version"] == "v2"  # further back, not back to v1
    with pytest.raises(ModelNotFoundError):
        reg.rollback()
    assert {m.version: m.status for m in reg.list()} == {"v1": "archived", "v2": "production", "v3": "archived"}


@pytest.mark.parametrize("version", ["../../etc", "v1/../../x", "", "a" * 65, "-rf", "v1\n", ".hidden", "v 1"])
def test_malformed_version_ids_are_refused_everywhere(services, trained, version):
    from churnguard.domain.model_registry import InvalidVersionIdError

    bundle = ModelBundle(version=version, model_text=trained[0].model_text, metadata=trained[0].metadata)
    with pytest.raises(InvalidVersionIdError, match="is not a model version id"):
        services.store.put(bundle)
    with pytest.raises(InvalidVersionIdError):
        services.store.get(version, None)
    mv = ModelVersion(version=version, status="candidate", location="s3://b/x", manifest_sha256="0" * 64)
    with pytest.raises(InvalidVersionIdError):
        services.registry.register(mv)
    for call in (
        lambda: services.registry.get(version),
        lambda: services.registry.promote(version),
        lambda: services.registry.set_status(version, "rejected"),
        lambda: services.registry.set_canary(version, share=0.1),
    ):
        with pytest.raises(InvalidVersionIdError):
            call()
    assert services.registry.list() == []
    assert "Contents" not in boto3.client("s3").list_objects_v2(Bucket=services.store.bucket, Prefix="models/")


def test_a_refused_version_never_serves_again(services, trained):
    for v in ("v1", "v2"):
        register(services, trained[0], v)
    reg = services.registry
    reg.set_status("v2", "failed", reason="training run died")
    for call in (lambda: reg.promote("v2"), lambda: reg.set_canary("v2", share=0.1)):
        with pytest.raises(PromotionConflictError, match="failed"):
            call()
    with pytest.raises(PromotionConflictError, match="cannot become rejected"):
        reg.set_status("v2", "rejected")  # final: not even rejected
    assert reg.get("v2").status == "failed"
