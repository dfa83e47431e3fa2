"""Training: LightGBM with native categoricals, stratified CV, early stopping, calibration.

``train(df, schema, config)`` validates the data against the schema, estimates quality by
stratified K-fold cross-validation (early stopping and calibration use only each fold's
training part, through inner folds), fits the served booster on all rows the same way,
calibrates it on its inner out-of-fold predictions, picks the decision threshold on those
same predictions, and profiles features and scores for later drift checks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from churnguard.domain import classification as M
from churnguard.domain.calibration import Calibration, fit_calibration
from churnguard.domain.csv_files import CSV_SNIFF_BYTES, csv_problem
from churnguard.domain.errors import DataValidationError, SettingsError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.reference_profile import build_profile
from churnguard.domain.schema import CategoricalFeature, Schema
from churnguard.domain.time_folds import CV_METHODS, in_time_order, time_folds

if TYPE_CHECKING:
    import pandas as pd

Progress = Callable[[str, int, int], None]

# Chosen on the Telco data by a search of ~60 variants (leaves 2-8, min_data 30-200, learning rate
# 0.01-0.03, feature/bagging fractions, L2 0-50, categorical smoothing, monotone constraints,
# linear trees, DART, engineered ratios and counts): this small, regularised model was the best
# single booster; the rest were within +-0.0005 ROC-AUC of it or worse.
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.02,
    "num_leaves": 4,
    "min_data_in_leaf": 50,
    # Every feature at every split: 0.7 did as well on average but made the result depend on the
    # column order (ROC-AUC 0.8499-0.8504 over three CV seeds against 0.8501-0.8507 with 1.0).
    "feature_fraction": 1.0,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 10.0,
    "verbose": -1,
    # One thread: on data of this size OpenMP gains little, and on a busy 2-core machine two
    # threads measured 8x slower than one (46.8 s against 5.7 s for one calibrated fit).
    "num_threads": 1,
}


@dataclass
class TrainingConfig:
    n_folds: int = 5
    # Folds inside each training set for early stopping and calibration (no outer row is used).
    inner_folds: int = 5
    # How the outer folds are drawn: "time" for rows built at cutoffs (domain/time_folds), "stratified",
    # or "auto": time-ordered when the data has a ``cutoff`` column, else stratified.
    cv: str = "auto"
    seed: int = 0
    max_rounds: int = 2000
    early_stopping_rounds: int = 100
    # Class imbalance: the decision threshold is chosen on calibrated out-of-fold scores (by F1 or
    # retention value), which is what handles the imbalance. Re-weighting positives by
    # (negatives/positives) ** imbalance_power is available, but on the Telco data full weighting
    # gave Brier 0.1354 against 0.1332 unweighted at equal ROC-AUC, so it is off by default.
    imbalance_power: float = 0.0
    calibration: str = "platt"
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    # Retention economics: when both are set the threshold maximises expected value.
    offer_cost: float | None = None
    customer_value: float | None = None
    save_rate: float = 0.3
    leakage_auc: float = 0.95

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingConfig:
        if not isinstance(data, dict):
            raise SettingsError(f"training settings must be a mapping of name: value, not {type(data).__name__}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise SettingsError(f"unknown training settings: {sorted(unknown)} (known: {sorted(known)})")
        for name, value in data.items():
            _check_setting_type(name, value, getattr(cls(), name))
        cfg = cls(**{k: v for k, v in data.items() if k != "params"})
        cfg.params.update(data.get("params") or {})
        if cfg.n_folds < 2 or cfg.inner_folds < 2:
            raise SettingsError("n_folds and inner_folds must be at least 2")
        if cfg.cv not in CV_METHODS:
            raise SettingsError(f"cv must be auto, stratified or time, not {cfg.cv!r}")
        if cfg.calibration not in ("platt", "isotonic"):
            raise SettingsError(f"calibration must be platt or isotonic, not {cfg.calibration!r}")
        return cfg


def _check_setting_type(name: str, value: Any, default: Any) -> None:
    """A setting's value has its default's type (a whole number, a number, text, a mapping); an optional
    number may be null."""
    if isinstance(default, bool) or value is None and default is None:
        return
    if isinstance(default, dict):
        ok, what = isinstance(value, dict), "a mapping of name: value"
    elif isinstance(default, int):
        ok, what = isinstance(value, int) and not isinstance(value, bool), "a whole number"
    elif isinstance(default, float) or default is None:
        ok, what = isinstance(value, int | float) and not isinstance(value, bool), "a number"
    elif isinstance(default, str):
        ok, what = isinstance(value, str), "text"
    else:
        return
    if not ok:
        raise SettingsError(f"training setting {name} must be {what}, not {value!r}")


@dataclass
class TrainingResult:
    model_text: str
    calibration: Calibration
    threshold: float
    threshold_method: str
    metrics: dict[str, Any]
    profile: dict[str, Any]
    warnings: list[str]
    num_rounds: int
    feature_importance: dict[str, float]
    config: dict[str, Any]
    seconds: float


def split_labels(df: pd.DataFrame, schema: Schema) -> np.ndarray:
    labels = df[schema.target].astype("string").str.strip()
    return (labels == schema.positive_label).to_numpy(dtype=bool)


def leakage_warnings(schema: Schema, X: np.ndarray, y: np.ndarray, limit: float) -> list[str]:
    """Warn about id-like columns and columns that alone predict the target almost perfectly."""
    out: list[str] = []
    n = len(y)
    for j, f in enumerate(schema.features):
        col = X[:, j]
        present = np.isfinite(col)
        if isinstance(f, CategoricalFeature):
            rates = np.zeros(len(f.categories))
            for c in range(len(f.categories)):
                m = col == c
                rates[c] = y[m].mean() if m.any() else y.mean()
            score = np.where(present, rates[np.nan_to_num(col, nan=0).astype(int)], y.mean())
        else:
            if np.unique(col[present]).size > 0.95 * n:
                out.append(f"{f.name!r} is unique in almost every row: it looks like an identifier, not a feature")
            score = np.where(present, col, np.nanmedian(col) if present.any() else 0.0)
        auc = M.roc_auc(y, score)
        auc = max(auc, 1 - auc)
        if auc >= limit:
            out.append(f"{f.name!r} alone predicts the target with ROC-AUC {auc:.3f}: possible label leakage")
    return out


def _folds(y: np.ndarray, k: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs with the positive share preserved, shuffled with ``seed``."""
    from sklearn.model_selection import StratifiedKFold

    return list(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)), y))


Folds = list[tuple[np.ndarray, np.ndarray]]


def _outer_folds(df: pd.DataFrame, y: np.ndarray, cfg: TrainingConfig) -> tuple[Folds, str]:
    """The outer CV's (train, test) index pairs and what they are. The one place the outer folds are
    made: every search, progress share and report below follows ``len(folds)``, so another way of
    drawing them (time-ordered rows built at cutoffs) is a branch here."""
    if in_time_order(df, cfg.cv):
        return time_folds(df, cfg.n_folds), "time-ordered"
    return _folds(y, cfg.n_folds, cfg.seed), "stratified"


def _fit(cfg: TrainingConfig, X, y, cats, rounds, valid=None):
    import lightgbm as lgb

    neg, pos = float((~y).sum()), float(y.sum())
    params = dict(cfg.params)
    params["seed"] = cfg.seed
    if cfg.imbalance_power:
        params["scale_pos_weight"] = (neg / max(pos, 1.0)) ** cfg.imbalance_power
    train_set = lgb.Dataset(X, label=y.astype(float), categorical_feature=cats, free_raw_data=False)
    kwargs: dict[str, Any] = {}
    if valid is not None:
        Xv, yv = valid
        kwargs["valid_sets"] = [lgb.Dataset(Xv, label=yv.astype(float), reference=train_set, categorical_feature=cats)]
        kwargs["callbacks"] = [lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)]
        params["metric"] = "binary_logloss"
    return lgb.train(params, train_set, num_boost_round=rounds, **kwargs)


def fit_calibrated(cfg: TrainingConfig, X: np.ndarray, y: np.ndarray, cats: list[int]):
    """One model from (X, y) alone: inner K-fold early stopping gives out-of-fold scores (for the
    calibration) and the round count; the booster is then refitted on all of (X, y).

    Returns (booster, calibration, out-of-fold uncalibrated probabilities, rounds).
    """
    oof = np.empty(len(y))
    iters: list[int] = []
    for fit_idx, val_idx in _folds(y, cfg.inner_folds, cfg.seed):
        b = _fit(cfg, X[fit_idx], y[fit_idx], cats, cfg.max_rounds, valid=(X[val_idx], y[val_idx]))
        best = b.best_iteration or b.current_iteration()
        iters.append(best)
        oof[val_idx] = b.predict(X[val_idx], num_iteration=best)
    rounds = max(1, int(round(float(np.mean(iters)))))
    booster = _fit(cfg, X, y, cats, rounds)
    return booster, fit_calibration(cfg.calibration, oof, y), oof, rounds


def train(
    df: pd.DataFrame,
    schema: Schema,
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Validate, cross-validate, fit, calibrate and profile. Raises DataValidationError on bad data."""
    cfg = config or TrainingConfig()
    started = time.perf_counter()
    report = schema.validate_frame(df)
    if not report.ok:
        raise DataValidationError("training data does not match the schema:\n" + report.to_text(), report)
    encoder = FeatureEncoder(schema)
    X = encoder.encode_frame(df)
    y = split_labels(df, schema)
    need = cfg.n_folds * cfg.inner_folds
    if y.sum() < need or (~y).sum() < need:
        raise DataValidationError(
            f"too few examples of each class to cross-validate ({cfg.n_folds}x{cfg.inner_folds} folds need "
            f"{need} of each): {int(y.sum())} positive, {int((~y).sum())} negative"
        )
    warnings = leakage_warnings(schema, X, y, cfg.leakage_auc)
    cats = encoder.categorical_indices
    report_progress = progress or (lambda stage, i, n: None)

    # Outer CV: each fold's model sees only the other folds (in time order, only the past), for honest figures.
    fold_metrics: list[dict[str, float]] = []
    outer, cv_method = _outer_folds(df, y, cfg)
    for i, (train_idx, test) in enumerate(outer):
        report_progress("cross-validation", i, len(outer))
        booster, cal, _, _ = fit_calibrated(cfg, X[train_idx], y[train_idx], cats)
        p = cal.apply(booster.predict(X[test]))
        fold_metrics.append(
            {
                "roc_auc": M.roc_auc(y[test], p),
                "brier": M.brier(y[test], p),
                "pr_auc": M.average_precision(y[test], p),
                "calibration_error": M.calibration_error(y[test], p),
            }
        )
    report_progress("cross-validation", len(outer), len(outer))

    # The served model: same recipe on every row; its threshold and reference profile come from
    # its own out-of-fold calibrated scores (rows each inner model did not train on).
    report_progress("final model", 0, 1)
    final, calibration, oof_raw, rounds = fit_calibrated(cfg, X, y, cats)
    report_progress("final model", 1, 1)
    scores = calibration.apply(oof_raw)

    if cfg.offer_cost is not None and cfg.customer_value is not None:
        threshold, value = M.best_value_threshold(y, scores, cfg.offer_cost, cfg.customer_value, cfg.save_rate)
        method = "expected_value"
    else:
        threshold, _ = M.best_f1_threshold(y, scores)
        method, value = "f1", None

    def mean(key: str) -> float:
        return float(np.mean([m[key] for m in fold_metrics]))

    def std(key: str) -> float:
        return float(np.std([m[key] for m in fold_metrics]))

    oof = M.summarise(y, scores, threshold)
    metrics: dict[str, Any] = {
        "cv_roc_auc": mean("roc_auc"),
        "cv_roc_auc_std": std("roc_auc"),
        "cv_pr_auc": mean("pr_auc"),
        "brier": mean("brier"),
        "brier_std": std("brier"),
        "calibration_error": mean("calibration_error"),
        "f1": oof["f1"],
        "confusion_matrix": oof["confusion_matrix"],
        "threshold": threshold,
        "threshold_method": method,
        "expected_value_per_customer": value,
        "folds": fold_metrics,
        "cv_method": cv_method,
        "rows": int(len(y)),
        "positive_rate": float(y.mean()),
    }
    importance = dict(zip(encoder.names, (float(v) for v in final.feature_importance("gain")), strict=False))
    return TrainingResult(
        model_text=final.model_to_string(),
        calibration=calibration,
        threshold=threshold,
        threshold_method=method,
        metrics=metrics,
        profile=build_profile(schema, X, scores),
        warnings=warnings,
        num_rounds=rounds,
        feature_importance=importance,
        config=asdict(cfg),
        seconds=time.perf_counter() - started,
    )


def read_csv(source: Any) -> pd.DataFrame:
    """Read a churn CSV as raw strings (the schema decides the types).

    ``source`` is a path or a binary file object. Anything that is not a readable CSV text file (missing,
    a folder, empty, binary, JSON, a spreadsheet) raises DataValidationError saying what it is and what
    to give instead, never a pandas or OS error.
    """
    import io
    import os

    import pandas as pd

    if isinstance(source, str | os.PathLike):
        name = str(source)
        try:
            with open(source, "rb") as f:
                head = f.read(CSV_SNIFF_BYTES)
        except FileNotFoundError:
            raise DataValidationError(f"{name} does not exist: give the path of a CSV file") from None
        except IsADirectoryError:
            raise DataValidationError(f"{name} is a folder: give the path of a CSV file in it") from None
        except OSError as e:
            raise DataValidationError(f"cannot read {name}: {e.strerror or e}") from None
    else:
        name = "the data"
        data = source.read()
        source = io.BytesIO(data.encode() if isinstance(data, str) else data)
        head = data[:CSV_SNIFF_BYTES] if isinstance(data, bytes) else data[:CSV_SNIFF_BYTES].encode()
    problem = csv_problem(head)
    if problem:
        raise DataValidationError(f"{name} {problem}")
    try:
        return pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise DataValidationError(f"{name} is not a readable CSV: {str(e).strip()}") from None
