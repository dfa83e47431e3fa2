"""Training: LightGBM with native categoricals, stratified CV, early stopping, calibration.

``train(df, schema, config)`` validates the data against the schema, estimates quality by
stratified K-fold cross-validation (early stopping and calibration use only each fold's
training part), fits the final booster on all rows, calibrates it on out-of-fold
predictions, picks the decision threshold on those same out-of-fold predictions, and
profiles features and scores for later drift checks.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from . import metrics as M
from .calibration import CalibrationMap
from .errors import DataValidationError
from .features import FeatureEncoder
from .profile import build_profile
from .schema import CategoricalFeature, Schema

if TYPE_CHECKING:
    import pandas as pd

Progress = Callable[[str, int, int], None]

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "learning_rate": 0.02,
    "num_leaves": 8,
    "max_depth": 4,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 5.0,
    "cat_smooth": 20.0,
    "cat_l2": 10.0,
    "min_data_per_group": 50,
    "max_cat_to_onehot": 4,
    "verbose": -1,
    "num_threads": 2,
}


@dataclass
class TrainingConfig:
    n_folds: int = 5
    seed: int = 0
    max_rounds: int = 3000
    early_stopping_rounds: int = 150
    validation_fraction: float = 0.2
    # Reweight positives by (negatives / positives) ** imbalance_power: 0 ignores the imbalance,
    # 1 balances fully. Calibration undoes the shift in probabilities either way.
    imbalance_power: float = 0.5
    params: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_PARAMS))
    # Retention economics: when both are set the threshold maximises expected value.
    offer_cost: float | None = None
    customer_value: float | None = None
    save_rate: float = 0.3
    leakage_auc: float = 0.95

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainingConfig":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {sorted(unknown)} (known: {sorted(known)})")
        cfg = cls(**{k: v for k, v in data.items() if k != "params"})
        cfg.params.update(data.get("params") or {})
        return cfg


@dataclass
class TrainingResult:
    model_text: str
    calibration: CalibrationMap
    threshold: float
    threshold_method: str
    metrics: dict[str, Any]
    profile: dict[str, Any]
    warnings: list[str]
    num_rounds: int
    feature_importance: dict[str, float]
    config: dict[str, Any]
    seconds: float


def split_labels(df: "pd.DataFrame", schema: Schema) -> np.ndarray:
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


def _stratified_folds(y: np.ndarray, k: int, seed: int) -> list[np.ndarray]:
    """Fold index arrays with the positive share preserved, like StratifiedKFold(shuffle=True)."""
    from sklearn.model_selection import StratifiedKFold

    skf = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [test for _, test in skf.split(np.zeros(len(y)), y)]


def _inner_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    fit, val = train_test_split(idx, test_size=fraction, stratify=y, random_state=seed)
    return np.sort(fit), np.sort(val)


def _fit(cfg: TrainingConfig, X, y, cats, rounds, valid=None):
    import lightgbm as lgb

    neg, pos = float((~y).sum()), float(y.sum())
    params = dict(cfg.params)
    params["seed"] = cfg.seed
    params["scale_pos_weight"] = (neg / max(pos, 1.0)) ** cfg.imbalance_power
    train_set = lgb.Dataset(X, label=y.astype(float), categorical_feature=cats, free_raw_data=False)
    kwargs: dict[str, Any] = {}
    if valid is not None:
        Xv, yv = valid
        kwargs["valid_sets"] = [lgb.Dataset(Xv, label=yv.astype(float), reference=train_set, categorical_feature=cats)]
        kwargs["callbacks"] = [lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)]
        params["metric"] = "binary_logloss"
    return lgb.train(params, train_set, num_boost_round=rounds, **kwargs)


def train(
    df: "pd.DataFrame",
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
    if y.sum() < cfg.n_folds * 2 or (~y).sum() < cfg.n_folds * 2:
        raise DataValidationError(
            f"too few examples of each class to cross-validate: {int(y.sum())} positive, {int((~y).sum())} negative"
        )
    warnings = leakage_warnings(schema, X, y, cfg.leakage_auc)
    cats = encoder.categorical_indices
    report_progress = progress or (lambda stage, i, n: None)

    oof_raw = np.empty(len(y))
    oof_cal = np.empty(len(y))
    fold_metrics: list[dict[str, float]] = []
    best_iters: list[int] = []
    folds = _stratified_folds(y, cfg.n_folds, cfg.seed)
    for i, test in enumerate(folds):
        report_progress("cross-validation", i, cfg.n_folds)
        train_idx = np.setdiff1d(np.arange(len(y)), test)
        fit_rel, val_rel = _inner_split(y[train_idx], cfg.validation_fraction, cfg.seed + i)
        fit_idx, val_idx = train_idx[fit_rel], train_idx[val_rel]
        booster = _fit(cfg, X[fit_idx], y[fit_idx], cats, cfg.max_rounds, valid=(X[val_idx], y[val_idx]))
        best = booster.best_iteration or booster.current_iteration()
        best_iters.append(best)
        cal = CalibrationMap.fit(booster.predict(X[val_idx], num_iteration=best), y[val_idx])
        raw = booster.predict(X[test], num_iteration=best)
        oof_raw[test] = raw
        oof_cal[test] = cal.apply(raw)
        fold_metrics.append(
            {
                "roc_auc": M.roc_auc(y[test], oof_cal[test]),
                "brier": M.brier(y[test], oof_cal[test]),
                "pr_auc": M.average_precision(y[test], oof_cal[test]),
                "calibration_error": M.calibration_error(y[test], oof_cal[test]),
            }
        )
    report_progress("cross-validation", cfg.n_folds, cfg.n_folds)

    # Final model on every row; the fold models stopped on (1 - validation_fraction) of the
    # training folds, so scale their best round count to the larger sample.
    rounds = max(10, int(round(float(np.median(best_iters)) / (1 - cfg.validation_fraction))))
    report_progress("final model", 0, 1)
    final = _fit(cfg, X, y, cats, rounds)
    report_progress("final model", 1, 1)
    calibration = CalibrationMap.fit(oof_raw, y)
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
        "rows": int(len(y)),
        "positive_rate": float(y.mean()),
    }
    importance = dict(zip(encoder.names, (float(v) for v in final.feature_importance("gain"))))
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


def read_csv(source: Any) -> "pd.DataFrame":
    """Read a churn CSV as raw strings (the schema decides the types)."""
    import pandas as pd

    return pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=False)
