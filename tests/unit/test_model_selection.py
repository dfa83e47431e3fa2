"""Model selection inside the training recipe: nested, bounded in time, and honest about what it did."""

from __future__ import annotations

import numpy as np
import pytest

from churnguard.domain import training
from churnguard.domain.errors import DataValidationError
from churnguard.domain.schema_inference import infer_schema
from churnguard.domain.training import CANDIDATES, TrainingConfig, train
from churnguard.local.synth import generate_additive, generate_interacting

# Real search, small folds: fast enough for the unit tier.
QUICK = {"n_folds": 3, "inner_folds": 3, "max_rounds": 400, "early_stopping_rounds": 30}


def leaves(selection: dict) -> int:
    return int(selection["params"]["num_leaves"])


@pytest.fixture(scope="module")
def interacting():
    df = generate_interacting(2500, seed=5)
    return df, infer_schema(df, "churned").schema


def test_interactions_get_deeper_trees_and_an_additive_signal_small_ones(interacting):
    df, schema = interacting
    deep = train(df, schema, TrainingConfig.from_dict(QUICK)).model_selection
    df2 = generate_additive(2500, seed=5)
    small = train(df2, infer_schema(df2, "churned").schema, TrainingConfig.from_dict(QUICK)).model_selection
    assert leaves(deep) >= 16, deep["trials"]
    assert leaves(small) <= 8, small["trials"]
    for sel in (deep, small):
        statuses = {t["candidate"]: t["status"] for t in sel["trials"]}
        assert set(statuses) == {name for name, _ in CANDIDATES}
        assert statuses[sel["chosen"]] == "complete"
        assert any(s.startswith("pruned") for s in statuses.values())  # successive halving ran


def test_each_outer_fold_searches_its_training_rows_only(interacting, monkeypatch):
    """Nested: the search (and everything fitted) for an outer fold never sees that fold's test rows."""
    df, schema = interacting
    df = df.copy()
    df["row_tag"] = [str(i) for i in range(len(df))]  # a feature that names each row
    from churnguard.domain.schema import NumericFeature, Schema

    tagged = Schema.from_dict(
        {**schema.to_dict(), "features": [*schema.to_dict()["features"], NumericFeature("row_tag").to_dict()]}
    )
    seen: list[set[int]] = []
    real = training.fit_calibrated

    def spy(cfg, X, y, cats, candidates, deadline, tick):
        seen.append(set(X[:, -1].astype(int).tolist()))
        return real(cfg, X, y, cats, candidates, deadline, tick)

    monkeypatch.setattr(training, "fit_calibrated", spy)
    cfg = TrainingConfig.from_dict(QUICK)
    train(df, tagged, cfg)
    y = training.split_labels(df, tagged)
    outer = training._folds(y, cfg.n_folds, cfg.seed)
    assert len(seen) == cfg.n_folds + 1
    for rows, (train_idx, test_idx) in zip(seen, outer, strict=False):
        assert rows == set(train_idx.tolist())
        assert not rows & set(test_idx.tolist())
    assert seen[-1] == set(range(len(df)))  # the served model: all rows


def test_out_of_time_keeps_the_best_so_far_and_says_so(interacting):
    df, schema = interacting
    result = train(df, schema, TrainingConfig.from_dict({**QUICK, "max_train_seconds": 0.01}))
    sel = result.model_selection
    assert sel["out_of_time"] == ["fold 1/3", "fold 2/3", "fold 3/3", "final model"]
    assert any("max_train_seconds" in w and "best configuration evaluated so far" in w for w in result.warnings)
    statuses = [t["status"] for t in sel["trials"]]
    assert statuses.count("complete") == 1  # the anchor, which always finishes
    assert all(s == "complete" or "out of time" in s for s in statuses)
    assert sel["chosen"] == next(t["candidate"] for t in sel["trials"] if t["status"] == "complete")
    assert result.metrics["cv_roc_auc"] > 0.6  # still a real model


def test_too_few_of_the_rarer_class_to_search_trains_the_fallback(schema):
    from tests.conftest import synth_frame

    df = synth_frame(2000, seed=4)
    yes = df.index[df["Churn"] == "Yes"]
    df = df.drop(yes[60:])  # 60 churners: enough to cross-validate, too few to choose a model
    result = train(df, schema, TrainingConfig.from_dict(QUICK))
    sel = result.model_selection
    assert sel["chosen"] == training.FALLBACK and [t["candidate"] for t in sel["trials"]] == [training.FALLBACK]
    assert any("too few to choose a model" in w and "fallback" in w for w in result.warnings)


def test_very_few_positives_cross_validate_with_fewer_folds_and_say_so(schema):
    from tests.conftest import synth_frame

    df = synth_frame(1200, seed=6)
    yes = df.index[df["Churn"] == "Yes"]
    df = df.drop(yes[12:])  # 12 churners: 5 x 5 folds impossible, 3 x 3 possible
    result = train(df, schema, TrainingConfig())
    assert len(result.metrics["folds"]) == 3
    assert result.model_selection["inner_folds"] == 3
    assert any("only 12 examples" in w and "3 folds" in w for w in result.warnings)
    assert result.model_selection["chosen"] == training.FALLBACK


def test_too_few_to_train_at_all_is_a_clear_error(schema):
    from tests.conftest import synth_frame

    df = synth_frame(400, seed=7)
    df = df.drop(df.index[df["Churn"] == "Yes"][3:])
    with pytest.raises(DataValidationError, match=r"too few examples.*3 positive.*add data"):
        train(df, schema, TrainingConfig())


def test_settings_given_under_params_hold_for_every_candidate(interacting):
    df, schema = interacting
    cfg = TrainingConfig.from_dict({**QUICK, "params": {"lambda_l2": 3.0}})
    assert cfg.fixed_params() == {"lambda_l2": 3.0}
    sel = train(df, schema, cfg).model_selection
    assert sel["params"]["lambda_l2"] == 3.0


def test_search_off_trains_the_configured_params_as_before(interacting):
    df, schema = interacting
    sel = train(df, schema, TrainingConfig.from_dict({**QUICK, "search": "off"})).model_selection
    assert sel["chosen"] == "as configured" and leaves(sel) == 4
    assert [t["status"] for t in sel["trials"]] == ["complete"]


def test_the_simplest_candidate_within_the_tolerance_wins(interacting):
    df, schema = interacting
    sel = train(df, schema, TrainingConfig.from_dict({**QUICK, "select_tolerance": 1.0})).model_selection
    complete = [t["candidate"] for t in sel["trials"] if t["status"] == "complete"]
    order = [name for name, _ in CANDIDATES]
    assert sel["chosen"] == min(complete, key=order.index)


def test_bad_search_settings_are_named():
    with pytest.raises(ValueError, match="search must be auto or off"):
        TrainingConfig.from_dict({"search": "grid"})
    with pytest.raises(ValueError, match="max_train_seconds"):
        TrainingConfig.from_dict({"max_train_seconds": 0})


def test_the_choice_and_trials_go_into_the_bundle_metadata(trained, interacting):
    from churnguard.services.lifecycle import build_bundle

    df, schema = interacting
    result = train(df, schema, TrainingConfig.from_dict(QUICK))
    meta = build_bundle("v-sel", result, schema, data_sha256="0" * 64, source="synthetic").metadata
    sel = meta["training"]["model_selection"]
    assert sel["chosen"] == result.model_selection["chosen"]
    assert {"candidate", "status", "folds", "log_loss", "fold_log_loss", "mean_best_round", "seconds"} <= set(
        sel["trials"][0]
    )
    assert sel["rounds"] == meta["training"]["num_rounds"]
    assert np.isfinite([t["log_loss"] for t in sel["trials"] if t["log_loss"] is not None]).all()
