"""Fixtures of the event-feature tests: generated event logs, and a model trained on their features."""

from __future__ import annotations

import pytest

from tests.conftest import FAST
from tests.functional.event_fixtures import AS_OF, CUSTOMERS, END


@pytest.fixture(scope="session")
def event_logs(tmp_path_factory):
    """(generated data, local folder with the CSVs and features.yaml)."""
    from churnguard.local.event_synth import generate_events

    data = generate_events(CUSTOMERS, seed=21, end=END)
    folder = tmp_path_factory.mktemp("event-logs")
    data.write(folder)
    return data, folder


@pytest.fixture(scope="session")
def events_model(event_logs, tmp_path_factory):
    """(bundle, schema, training set path): a model trained (fast settings) on features at 12 cutoffs."""
    from churnguard.adapters.duckdb_engine import DuckDBFeatureEngine
    from churnguard.adapters.local_files import LocalObjectStore
    from churnguard.domain.event_features import FeatureDefinition
    from churnguard.domain.schema import Schema
    from churnguard.domain.training import TrainingConfig, read_csv, train
    from churnguard.services.event_features import build_training_set
    from churnguard.services.lifecycle import build_bundle

    data, folder = event_logs
    out = tmp_path_factory.mktemp("training-set") / "train.csv"
    definition = FeatureDefinition.load(folder / "features.yaml")
    build_training_set(
        definition, data.labelled_cutoffs(12), str(out), DuckDBFeatureEngine(threads=1), LocalObjectStore(), now=AS_OF
    )
    schema = Schema.load(out.with_name("train.schema.yaml"))
    result = train(read_csv(out), schema, TrainingConfig.from_dict(FAST))
    return build_bundle("v-events-1", result, schema, data_sha256="0" * 64, source=str(out)), schema, out
