"""Leaf tables must give LightGBM's numbers bit for bit, on any input, or not be used at all."""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pytest

from churnguard.domain.batch import BatchBooster, BatchOptions, BatchScorer, PathExplainer
from churnguard.domain.leaf_tables import LeafMasks, LeafTables
from tests.conftest import synth_csv_bytes, synth_frame

EDGE_VALUES = np.array(
    [
        np.nan,
        0.0,
        -0.0,
        1e-36,
        -1e-36,
        1e-35,
        -1e-35,
        np.nextafter(1e-35, 1),
        np.nextafter(-1e-35, -1),
        *(np.float64(np.float32(1e-35)) * k for k in (1, -1)),
        *(np.nextafter(np.float64(np.float32(1e-35)) * k, 2 * k) for k in (1, -1)),
        5e-324,
        -5e-324,
        -0.5,
        0.5,
        -1.0,
        1.0,
        2.5,
        3.0,
        31.0,
        32.0,
        33.0,
        64.0,
        1e9,
        -1e9,
        1e300,
        -1e300,
    ]
)


def adversarial(X: np.ndarray, tables: LeafTables, seed: int = 0) -> np.ndarray:
    """``X`` with a share of every column replaced by edge values, thresholds and their neighbours."""
    rng = np.random.default_rng(seed)
    Z = np.repeat(X, 4, axis=0)
    for f in range(Z.shape[1]):
        feat = tables.features.get(f)
        pool = [EDGE_VALUES]
        if feat is not None and feat.thresholds is not None:
            t = feat.thresholds
            pool += [t, np.nextafter(t, np.inf), np.nextafter(t, -np.inf)]
        elif feat is not None:
            pool.append(np.arange(-2, feat.n_codes + 3, dtype=np.float64))
        pool_ = np.concatenate(pool)
        hit = rng.random(len(Z)) < 0.3
        Z[hit, f] = rng.choice(pool_, int(hit.sum()))
    return Z


def assert_same_as_lightgbm(model_text: str, X: np.ndarray, engine: type = LeafTables) -> LeafTables:
    booster = BatchBooster(model_text, num_threads=1)
    tables = engine.build(booster, model_text)
    assert tables is not None
    Z = adversarial(X, tables)
    reference = lgb.Booster(model_str=model_text)
    np.testing.assert_array_equal(tables.raw_score(Z), reference.predict(Z, raw_score=True))
    np.testing.assert_array_equal(tables.predict(Z), reference.predict(Z))
    np.testing.assert_array_equal(tables.predict_leaves(Z), reference.predict(Z, pred_leaf=True))
    explainer = PathExplainer(booster)
    if engine is LeafTables:
        np.testing.assert_array_equal(
            tables.leaf_sums(Z, explainer.table, explainer.offsets), explainer.contributions(Z)
        )
    else:
        np.testing.assert_array_equal(explainer.from_leaves(tables.predict_leaves(Z)), explainer.contributions(Z))
    return tables


def test_our_model_scores_bit_for_bit_as_lightgbm(trained, predictor):
    X = predictor.encoder.encode_frame(synth_frame(500, seed=21))
    tables = assert_same_as_lightgbm(trained[0].model_text, X)
    assert tables.n_trees == BatchBooster(trained[0].model_text).num_iterations
    kinds = {f.thresholds is None for f in tables.features.values()}
    assert kinds == {True, False}  # categorical and numeric splits both exercised


def _train(params: dict, X: np.ndarray, y: np.ndarray, rounds: int = 60, **dataset) -> str:
    base = {"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5, "seed": 1}
    return lgb.train({**base, **params}, lgb.Dataset(X, y, **dataset), num_boost_round=rounds).model_to_string()


def _data(seed: int, n: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack(
        [
            rng.normal(0, 1, n),
            rng.exponential(10, n),
            rng.integers(0, 40, n).astype(float),
            rng.integers(0, 3, n).astype(float),
            rng.choice([0.0, 0.0, 1.5, -2.0], n),
        ]
    )
    logit = X[:, 0] + 0.1 * X[:, 1] - (X[:, 2] % 7 == 0) * 2 + X[:, 3] - X[:, 4]
    return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)


@pytest.mark.parametrize("case", ["nan-missing", "zero-as-missing", "wide-categorical", "eight-leaves", "no-missing"])
def test_lightgbm_missing_value_rules_and_category_bitsets_are_kept(case):
    X, y = _data(3)
    if case == "nan-missing":  # missing_type NaN, learned default directions
        X[np.random.default_rng(4).random(X.shape) < 0.1] = np.nan
        text = _train({"num_leaves": 4}, X, y)
    elif case == "zero-as-missing":  # missing_type Zero
        text = _train({"num_leaves": 4, "zero_as_missing": True}, X, y)
    elif case == "wide-categorical":  # 40 categories: bitsets of two 32-bit words
        text = _train(
            {"num_leaves": 4, "max_cat_to_onehot": 2, "cat_smooth": 1, "min_data_per_group": 5},
            X,
            y,
            categorical_feature=[2, 3],
        )
        words = [
            int(b) - int(a)
            for line in text.splitlines()
            if line.startswith("cat_boundaries=")
            for a, b in zip(line[15:].split(), line[15:].split()[1:], strict=False)
        ]
        assert max(words) >= 2
    elif case == "eight-leaves":
        text = _train({"num_leaves": 8}, X, y, rounds=30)
    else:  # missing_type None: NaN is read as 0
        text = _train({"num_leaves": 4, "use_missing": False}, X, y)
    assert_same_as_lightgbm(text, X[:400])


def test_a_tree_that_could_not_split_adds_its_constant():
    X, y = _data(5, n=400)
    text = _train({"num_leaves": 4, "min_gain_to_split": 1e9}, X, y, rounds=5)
    assert "num_leaves=1\n" in text  # the case under test: a one-leaf tree (the initial score)
    tables = assert_same_as_lightgbm(text, X[:200])
    assert tables.groups[0].features == ()


@pytest.mark.parametrize("why", ["regression", "too many cells"])
def test_models_out_of_scope_get_no_tables(why, caplog):
    X, y = _data(6)
    if why == "regression":
        text, limit = _train({"objective": "regression", "num_leaves": 4}, X, y, rounds=5), 1 << 22
    else:
        text, limit = _train({"num_leaves": 31}, X, y, rounds=20), 1000
    with caplog.at_level(logging.INFO, logger="churnguard.domain.leaf_tables"):
        assert LeafTables.build(BatchBooster(text, num_threads=1), text, max_cells=limit) is None
    assert "leaf tables not used" in caplog.text


def test_the_scorer_output_is_the_same_with_and_without_tables(predictor):
    with_tables = BatchScorer(predictor, num_threads=2)
    without = BatchScorer(predictor, num_threads=2, use_tables=False)
    assert (with_tables.engine, without.engine) == ("leaf-tables", "lightgbm")
    frame = synth_frame(3000, seed=8)
    frame.loc[5, "Contract"] = "Weekly"  # a rejected row among them
    data = frame.to_csv(index=False).encode()
    for options in (BatchOptions(reasons="all"), BatchOptions(reasons="high", top=5)):
        a = with_tables.score_csv(data, options, block_rows=700)
        b = without.score_csv(data, options, block_rows=700)
        assert a.rejected == b.rejected == 1
        assert a.scores_csv() == b.scores_csv()
    assert with_tables.engine == a.counts()["engine"] == "leaf-tables"  # every block's spot check passed
    with_tables.close()
    without.close()


def test_a_table_that_disagrees_with_lightgbm_is_dropped_for_lightgbm(predictor, caplog):
    scorer = BatchScorer(predictor, num_threads=1)
    reference = BatchScorer(predictor, num_threads=1, use_tables=False)
    scorer.tables.values[0] = scorer.tables.values[0] + 1e-3  # as a bug in the tables would
    data = synth_csv_bytes(500, seed=9)
    with caplog.at_level(logging.ERROR, logger="churnguard.domain.batch.scorer"):
        result = scorer.score_csv(data, BatchOptions(reasons="all"))
    assert "disagree with LightGBM" in caplog.text
    assert scorer.engine == result.counts()["engine"] == "lightgbm"
    assert result.scores_csv() == reference.score_csv(data, BatchOptions(reasons="all")).scores_csv()


# ----- leaf masks: deeper trees -------------------------------------------------------------------
@pytest.mark.parametrize(
    "case", ["31-leaves", "64-leaves-nan-missing", "zero-as-missing", "wide-categorical", "no-missing", "ragged"]
)
def test_leaf_masks_score_deeper_trees_bit_for_bit(case):
    X, y = _data(13)
    if case == "31-leaves":
        text = _train({"num_leaves": 31}, X, y, rounds=40)
    elif case == "64-leaves-nan-missing":
        X[np.random.default_rng(14).random(X.shape) < 0.1] = np.nan
        text = _train({"num_leaves": 64, "min_data_in_leaf": 3}, X, y, rounds=30)
        assert "num_leaves=64\n" in text
    elif case == "zero-as-missing":
        text = _train({"num_leaves": 24, "zero_as_missing": True}, X, y, rounds=30)
    elif case == "wide-categorical":  # 40 categories: bitsets of two 32-bit words, in 16-leaf trees
        text = _train(
            {"num_leaves": 16, "max_cat_to_onehot": 2, "cat_smooth": 1, "min_data_per_group": 5},
            X,
            y,
            rounds=30,
            categorical_feature=[2, 3],
        )
    elif case == "no-missing":
        text = _train({"num_leaves": 20, "use_missing": False}, X, y, rounds=30)
    else:  # trees of different sizes in one model, one of them a single leaf
        text = _train({"num_leaves": 12, "min_gain_to_split": 2.0}, X, y, rounds=40)
    masks = assert_same_as_lightgbm(text, X[:500], engine=LeafMasks)
    assert masks.n_trees == BatchBooster(text).num_iterations


def test_trees_over_64_leaves_get_no_masks(caplog):
    X, y = _data(15, n=4000)
    text = _train({"num_leaves": 80, "min_data_in_leaf": 2}, X, y, rounds=3)
    with caplog.at_level(logging.INFO, logger="churnguard.domain.leaf_tables"):
        assert LeafMasks.build(BatchBooster(text, num_threads=1), text) is None
    assert "more than 64 leaves" in caplog.text


@pytest.fixture(scope="module")
def deep_predictor(schema):
    """A 31-leaf model on generated Telco-like customers: too big for tables, in scope for masks."""
    from churnguard.domain.predictor import Predictor
    from churnguard.domain.training import TrainingConfig, train
    from churnguard.services.lifecycle import build_bundle
    from tests.conftest import FAST

    cfg = TrainingConfig.from_dict({**FAST, "params": {"num_leaves": 31, "learning_rate": 0.1}})
    result = train(synth_frame(3000, seed=31), schema, cfg)
    return Predictor(build_bundle("v-deep", result, schema, data_sha256="0" * 64, source="synthetic"))


def test_the_scorer_uses_masks_for_deeper_trees_with_the_same_output(deep_predictor):
    with_masks = BatchScorer(deep_predictor, num_threads=2)
    without = BatchScorer(deep_predictor, num_threads=2, use_tables=False)
    assert (with_masks.engine, without.engine) == ("leaf-masks", "lightgbm")
    data = synth_frame(2500, seed=32).to_csv(index=False).encode()
    for options in (BatchOptions(reasons="all"), BatchOptions(reasons="high", top=5)):
        a = with_masks.score_csv(data, options, block_rows=600)
        assert a.scores_csv() == without.score_csv(data, options, block_rows=600).scores_csv()
    assert with_masks.engine == a.counts()["engine"] == "leaf-masks"  # every block's spot check passed
    with_masks.close()
    without.close()


def test_masks_that_disagree_with_lightgbm_are_dropped_for_lightgbm(deep_predictor, caplog):
    scorer = BatchScorer(deep_predictor, num_threads=1)
    assert isinstance(scorer.tables, LeafMasks)
    scorer.tables.values[3] = scorer.tables.values[3] + 1e-3  # as a bug in the masks would
    reference = BatchScorer(deep_predictor, num_threads=1, use_tables=False)
    data = synth_csv_bytes(400, seed=33)
    with caplog.at_level(logging.ERROR, logger="churnguard.domain.batch.scorer"):
        result = scorer.score_csv(data, BatchOptions(reasons="all"))
    assert "leaf-masks disagree with LightGBM" in caplog.text
    assert scorer.engine == result.counts()["engine"] == "lightgbm"
    assert result.scores_csv() == reference.score_csv(data, BatchOptions(reasons="all")).scores_csv()
