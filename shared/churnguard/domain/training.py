"""Training: LightGBM with native categoricals, a model chosen from the data, stratified CV, calibration.

``train(df, schema, config)`` validates the data against the schema, estimates quality by
stratified K-fold cross-validation, fits the served booster on all rows the same way, calibrates
it on its inner out-of-fold predictions, picks the decision threshold on those same predictions,
and profiles features and scores for later drift checks.

"The same way" includes choosing the model. Inside each outer training split (and once more on all
rows for the served model) a small search picks a LightGBM configuration from ``CANDIDATES`` by
inner K-fold early stopping: every candidate is scored by the log-loss of its early-stopped inner
models on their validation folds, with successive halving over the folds (all candidates on the
first folds, the better half on the rest), and the simplest candidate within ``select_tolerance``
of the best wins. No outer test row is seen by the search, so the outer CV figure stays an honest,
nested estimate of the whole recipe. The chosen candidate's inner out-of-fold scores are the ones
Platt calibration is fitted on, and it is refitted at its mean best round; nothing is trained twice.
"""

from __future__ import annotations

import math
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


# The search space, simplest first: from Telco's small, strongly regularised trees (the fallback when
# the data is too small to search) to the deep trees data with strong interactions needs (usage x
# plan, complaints x usage). Each step trades shrinkage and regularisation for capacity, so that
# five early-stopped candidates span what a wider grid finds: on the Telco and Iranian data and the
# generated sets of local/synth.py, grids of 4-128 leaves, minimum leaf sizes 2-50, learning rates
# 0.02-0.1, L2 0-10, feature fractions 0.7-1.0, bagging on or off and 1023 bins were within the
# noise of one of these (bench/model_selection.py measures the recipe against stock LightGBM).
CANDIDATES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("4 leaves", {}),  # DEFAULT_PARAMS
    (
        "8 leaves",
        {"num_leaves": 8, "learning_rate": 0.03, "min_data_in_leaf": 30, "lambda_l2": 5.0, "feature_fraction": 0.9},
    ),
    (
        "16 leaves",
        {"num_leaves": 16, "learning_rate": 0.03, "min_data_in_leaf": 20, "lambda_l2": 1.0, "feature_fraction": 0.8},
    ),
    (
        "31 leaves",
        {"num_leaves": 31, "learning_rate": 0.05, "min_data_in_leaf": 20, "lambda_l2": 0.0, "feature_fraction": 0.8},
    ),
    (
        "64 leaves",
        {"num_leaves": 64, "learning_rate": 0.05, "min_data_in_leaf": 10, "lambda_l2": 1.0, "feature_fraction": 0.7},
    ),
)
FALLBACK = "4 leaves"


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
    # Model selection: choose among CANDIDATES inside every training split ("auto"), or train
    # ``params`` as given ("off"). Settings given under ``params`` hold for every candidate.
    search: str = "auto"
    # The whole run's time budget. The search of each of the n_folds + 1 fits gets an equal share
    # of 90% of it; a search out of time keeps the best candidate evaluated so far and says so.
    # The Train Lambda has 900 s: 600 leaves room to read the data and store the bundle.
    max_train_seconds: float = 600.0
    # The search needs this many examples of the rarer class (below, the fallback is trained).
    min_search_minority: int = 100
    # The simplest candidate whose inner log-loss is within this share of the best one wins.
    select_tolerance: float = 0.0025

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
        if cfg.search not in ("auto", "off"):
            raise SettingsError(f"search must be auto or off, not {cfg.search!r}")
        if not cfg.max_train_seconds > 0:
            raise SettingsError("max_train_seconds must be a positive number of seconds")
        return cfg

    def fixed_params(self) -> dict[str, Any]:
        """The LightGBM settings this config sets differently from DEFAULT_PARAMS: every candidate keeps them."""
        return {k: v for k, v in self.params.items() if k not in DEFAULT_PARAMS or DEFAULT_PARAMS[k] != v}


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
    # The served model's search: chosen candidate, its LightGBM settings, every trial, and notes.
    model_selection: dict[str, Any] = field(default_factory=dict)


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
            values = col[present]
            # Integers only: a float measurement (a salary, a charge) is unique in every row too.
            if np.unique(values).size > 0.95 * n and np.all(values == np.round(values)):
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


def _merged(cfg: TrainingConfig, candidate: dict[str, Any]) -> dict[str, Any]:
    """A candidate's LightGBM settings: the config's, the candidate's, then whatever the config fixes."""
    return {**cfg.params, **candidate, **cfg.fixed_params()}


def _params(cfg: TrainingConfig, y: np.ndarray, candidate: dict[str, Any]) -> dict[str, Any]:
    params = _merged(cfg, candidate)
    params["seed"] = cfg.seed
    if cfg.imbalance_power:
        neg, pos = float((~y).sum()), float(y.sum())
        params["scale_pos_weight"] = (neg / max(pos, 1.0)) ** cfg.imbalance_power
    return params


def _fit(params: dict[str, Any], X, y, cats, rounds: int, valid=None, patience: int = 0):
    import lightgbm as lgb

    params = dict(params)
    train_set = lgb.Dataset(X, label=y.astype(float), categorical_feature=cats, free_raw_data=False)
    kwargs: dict[str, Any] = {}
    if valid is not None:
        Xv, yv = valid
        kwargs["valid_sets"] = [lgb.Dataset(Xv, label=yv.astype(float), reference=train_set, categorical_feature=cats)]
        kwargs["callbacks"] = [lgb.early_stopping(patience, verbose=False)]
        params["metric"] = "binary_logloss"
    return lgb.train(params, train_set, num_boost_round=rounds, **kwargs)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


@dataclass
class _Trial:
    """One candidate's inner cross-validation, fold by fold."""

    name: str
    params: dict[str, Any]
    order: int  # position in CANDIDATES: lower is simpler
    oof: np.ndarray
    fold_loss: list[float] = field(default_factory=list)
    iters: list[int] = field(default_factory=list)
    seconds: float = 0.0
    status: str = "complete"

    @property
    def loss(self) -> float:
        return float(np.mean(self.fold_loss)) if self.fold_loss else math.inf

    def record(self) -> dict[str, Any]:
        return {
            "candidate": self.name,
            "status": self.status,
            "folds": len(self.fold_loss),
            "log_loss": round(self.loss, 5) if self.fold_loss else None,
            "fold_log_loss": [round(v, 5) for v in self.fold_loss],
            "mean_best_round": round(float(np.mean(self.iters)), 1) if self.iters else None,
            "seconds": round(self.seconds, 2),
        }


@dataclass
class _Fitted:
    booster: Any
    calibration: Calibration
    oof: np.ndarray
    rounds: int
    chosen: _Trial
    trials: list[_Trial]
    out_of_time: bool


def _plan(cfg: TrainingConfig, y: np.ndarray) -> tuple[list[tuple[str, dict[str, Any]]], list[str]]:
    """The candidates a fit on (X, y) searches, and why any were set aside (scaled to the data size)."""
    minority = int(min(y.sum(), (~y).sum()))
    inner_rows = len(y) * (cfg.inner_folds - 1) // cfg.inner_folds
    fallback = dict(CANDIDATES)[FALLBACK]
    if cfg.search == "off":
        return [("as configured", {})], []
    if minority < cfg.min_search_minority:
        return [(FALLBACK, _shrunk(fallback, inner_rows))], [
            f"{minority} examples of the rarer class are too few to choose a model by inner cross-validation "
            f"(at least {cfg.min_search_minority}): trained the fallback configuration ({FALLBACK}, strongly "
            "regularised) instead"
        ]
    fits = [
        (name, c)
        for name, c in CANDIDATES
        if int(_merged(cfg, c).get("num_leaves", 31)) * int(_merged(cfg, c).get("min_data_in_leaf", 20)) <= inner_rows
    ]
    if not fits:
        return [(FALLBACK, _shrunk(fallback, inner_rows))], [
            f"{inner_rows} rows per inner training split are too few for any candidate's minimum leaf size: "
            f"trained the fallback configuration ({FALLBACK}) with smaller leaves"
        ]
    return fits, []


def _shrunk(candidate: dict[str, Any], rows: int) -> dict[str, Any]:
    """The fallback with leaves small enough for ``rows`` (at least 5 rows a leaf)."""
    leaf = int(DEFAULT_PARAMS["min_data_in_leaf"])
    return {**candidate, "min_data_in_leaf": max(5, min(leaf, rows // 20))}


def fit_calibrated(
    cfg: TrainingConfig,
    X: np.ndarray,
    y: np.ndarray,
    cats: list[int],
    candidates: list[tuple[str, dict[str, Any]]],
    deadline: float = math.inf,
    tick: Callable[[], None] = lambda: None,
) -> _Fitted:
    """One model from (X, y) alone: choose a candidate by inner K-fold early stopping, calibrate on
    its out-of-fold scores, and refit it on all of (X, y) at its mean best round.

    Successive halving over the inner folds: every candidate runs the first half of the folds, the
    better half of them (by mean validation log-loss) the rest. After ``deadline`` no further
    candidate is started (the leader always finishes): the best complete one is kept.
    """
    folds = _folds(y, cfg.inner_folds, cfg.seed)
    k = len(folds)
    names = [name for name, _ in CANDIDATES]
    trials = [
        _Trial(name, _params(cfg, y, c), names.index(name) if name in names else 0, np.full(len(y), np.nan))
        for name, c in candidates
    ]
    out_of_time = False

    def run(t: _Trial, f: int) -> None:
        fit_idx, val_idx = folds[f]
        started = time.perf_counter()
        b = _fit(
            t.params, X[fit_idx], y[fit_idx], cats, cfg.max_rounds, (X[val_idx], y[val_idx]), cfg.early_stopping_rounds
        )
        best = b.best_iteration or b.current_iteration()
        t.iters.append(best)
        t.oof[val_idx] = b.predict(X[val_idx], num_iteration=best)
        t.fold_loss.append(_log_loss(y[val_idx], t.oof[val_idx]))
        t.seconds += time.perf_counter() - started
        tick()

    first = max(1, k // 2) if len(trials) > 2 else k
    # Rung 1, the anchor (a middle candidate: robust on its own if time allows nothing else) first.
    anchor = min(range(len(trials)), key=lambda i: abs(i - (len(trials) - 1) / 2))
    for t in [trials[anchor]] + trials[:anchor] + trials[anchor + 1 :]:
        if t is not trials[anchor] and time.perf_counter() > deadline:
            t.status, out_of_time = "not run: out of time", True
            continue
        for f in range(first):
            run(t, f)
    ran = sorted((t for t in trials if t.fold_loss), key=lambda t: (t.loss, t.order))
    keep = ran[: max(1, math.ceil(len(ran) / 2))] if first < k else ran
    for t in ran[len(keep) :]:
        t.status = f"pruned after {first} of {k} folds"
    # Rung 2: the survivors, best first, on the remaining folds.
    for i, t in enumerate(keep):
        for f in range(first, k):
            if i > 0 and time.perf_counter() > deadline:
                t.status, out_of_time = f"stopped after {len(t.fold_loss)} of {k} folds: out of time", True
                break
            run(t, f)
    complete = [t for t in keep if len(t.fold_loss) == k]
    best = min(t.loss for t in complete)
    # The simplest candidate about as good as the best: a smaller model varies less between samples.
    chosen = min((t for t in complete if t.loss <= best * (1 + cfg.select_tolerance)), key=lambda t: t.order)
    rounds = max(1, int(round(float(np.mean(chosen.iters)))))
    booster = _fit(chosen.params, X, y, cats, rounds)
    tick()
    calibration = fit_calibration(cfg.calibration, chosen.oof, y)
    return _Fitted(booster, calibration, chosen.oof, rounds, chosen, trials, out_of_time)


def _units(n_candidates: int, k: int) -> int:
    """Fits one ``fit_calibrated`` makes when nothing runs out of time (for the progress display)."""
    if n_candidates <= 2:
        return n_candidates * k + 1
    first = max(1, k // 2)
    return n_candidates * first + math.ceil(n_candidates / 2) * (k - first) + 1


def _folds_for(cfg: TrainingConfig, y: np.ndarray) -> tuple[int, int, list[str]]:
    """Outer and inner fold counts the data allows: fewer than configured, with a warning, for very few
    examples of a class; a DataValidationError when even 2 x 2 folds are impossible."""
    minority = int(min(y.sum(), (~y).sum()))
    n_folds, inner = cfg.n_folds, cfg.inner_folds
    if minority >= n_folds * inner:
        return n_folds, inner, []
    fit = math.isqrt(minority)
    if fit < 2:
        raise DataValidationError(
            f"too few examples of each class to train and cross-validate: {int(y.sum())} positive, "
            f"{int((~y).sum())} negative (at least 4 of each are needed, and a few hundred for figures worth "
            "reading); add data, or check the target column and positive label"
        )
    n_folds, inner = min(n_folds, fit), min(inner, fit)
    return (
        n_folds,
        inner,
        [
            f"only {minority} examples of the rarer class: cross-validated with {n_folds} folds ({inner} inner) "
            f"instead of {cfg.n_folds} ({cfg.inner_folds}); figures from so few examples are rough"
        ],
    )


def train(
    df: pd.DataFrame,
    schema: Schema,
    config: TrainingConfig | None = None,
    progress: Progress | None = None,
) -> TrainingResult:
    """Validate, cross-validate (choosing the model inside each split), fit, calibrate and profile.
    Raises DataValidationError on bad data."""
    cfg = config or TrainingConfig()
    started = time.perf_counter()
    report = schema.validate_frame(df)
    if not report.ok:
        raise DataValidationError("training data does not match the schema:\n" + report.to_text(), report)
    encoder = FeatureEncoder(schema)
    X = encoder.encode_frame(df)
    y = split_labels(df, schema)
    n_folds, inner_folds, fold_notes = _folds_for(cfg, y)
    if (n_folds, inner_folds) != (cfg.n_folds, cfg.inner_folds):
        from dataclasses import replace

        cfg = replace(cfg, n_folds=n_folds, inner_folds=inner_folds, params=dict(cfg.params))
    warnings = leakage_warnings(schema, X, y, cfg.leakage_auc) + fold_notes
    cats = encoder.categorical_indices
    outer, cv_method = _outer_folds(df, y, cfg)
    plans = [_plan(cfg, y[train_idx]) for train_idx, _ in outer] + [_plan(cfg, y)]
    notes = sorted({note for _, plan_notes in plans for note in plan_notes})
    warnings += notes

    # Progress in fits, in two stages (the outer folds' searches, then the served model's), so a
    # display's time left per stage holds; each of the searches gets an equal share of the time budget.
    units = [_units(len(c), cfg.inner_folds) for c, _ in plans]
    share = 0.9 * cfg.max_train_seconds / len(plans)
    report_progress = progress or (lambda stage, i, n: None)
    stage, done, total = "cross-validation", 0, sum(units[:-1])

    def tick() -> None:
        nonlocal done
        done += 1
        report_progress(stage, min(done, total), total)

    # Outer CV: each fold's model (and its choice of candidate) sees only the other folds.
    fold_metrics: list[dict[str, float]] = []
    chosen_per_fold: list[str] = []
    out_of_time: list[str] = []
    report_progress(stage, done, total)
    for i, (train_idx, test) in enumerate(outer):
        fitted = fit_calibrated(cfg, X[train_idx], y[train_idx], cats, plans[i][0], started + share * (i + 1), tick)
        done = sum(units[: i + 1])  # a search cut short by time counts as done
        report_progress(stage, done, total)
        chosen_per_fold.append(fitted.chosen.name)
        if fitted.out_of_time:
            out_of_time.append(f"fold {i + 1}/{len(outer)}")
        p = fitted.calibration.apply(fitted.booster.predict(X[test]))
        fold_metrics.append(
            {
                "roc_auc": M.roc_auc(y[test], p),
                "brier": M.brier(y[test], p),
                "pr_auc": M.average_precision(y[test], p),
                "calibration_error": M.calibration_error(y[test], p),
            }
        )

    # The served model: same recipe (search included) on every row; its threshold and reference
    # profile come from its own out-of-fold calibrated scores (rows each inner model did not train on).
    stage, done, total = "final model", 0, units[-1]
    report_progress(stage, done, total)
    fitted = fit_calibrated(cfg, X, y, cats, plans[-1][0], started + share * len(plans), tick)
    report_progress(stage, total, total)
    if fitted.out_of_time:
        out_of_time.append(stage)
    if out_of_time:
        warnings.append(
            f"max_train_seconds ({cfg.max_train_seconds:g} s) ran out during the model search of "
            f"{', '.join(out_of_time)}: kept the best configuration evaluated so far there (see model_selection)"
        )
    final, calibration, rounds = fitted.booster, fitted.calibration, fitted.rounds
    scores = calibration.apply(fitted.oof)

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
    chosen = fitted.chosen
    selection = {
        "chosen": chosen.name,
        "params": {k: v for k, v in chosen.params.items() if k not in ("verbose", "num_threads")},
        "rounds": rounds,
        "search": cfg.search,
        "trials": [t.record() for t in fitted.trials],
        "chosen_in_outer_folds": chosen_per_fold,
        "inner_folds": cfg.inner_folds,
        "select_tolerance": cfg.select_tolerance,
        "max_train_seconds": cfg.max_train_seconds,
        "out_of_time": out_of_time,
        "notes": notes,
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
        model_selection=selection,
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
