"""Time-ordered cross-validation for rows built at cutoffs (``churn features build``).

Such data holds one row per customer and cutoff. Shuffled folds would train on a customer's later
months to predict the earlier ones, and on labels not yet known at the tested cutoff; so each of
the latest cutoffs is tested on by a model trained only on rows whose labels were known by then.
Training draws its outer folds here when the data has a ``cutoff`` column (``TrainingConfig.cv``:
``auto``), or when told (``time``); snapshot data keeps the stratified folds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from churnguard.domain.errors import DataValidationError

if TYPE_CHECKING:
    import pandas as pd

# Columns of rows built at cutoffs: the cutoff, and when the row's label was known (cutoff + horizon).
CUTOFF_COLUMN = "cutoff"
LABEL_END_COLUMN = "label_end"
# TrainingConfig.cv: "auto" is "time" when the data has a cutoff column, else "stratified".
CV_METHODS = ("auto", "stratified", "time")


def in_time_order(df: pd.DataFrame, cv: str) -> bool:
    """Whether the outer CV of ``df`` is drawn in time, for the ``cv`` setting."""
    if cv not in CV_METHODS:
        raise ValueError(f"cv must be auto, stratified or time, not {cv!r}")
    return cv == "time" or (cv == "auto" and CUTOFF_COLUMN in df.columns)


def time_folds(df: pd.DataFrame, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) pairs in time order: each of the latest ``k`` cutoffs is tested on by a model trained on
    the rows whose labels were known by then (``label_end`` <= that cutoff; without it, earlier cutoffs)."""
    import pandas as pd

    def times(column: str) -> np.ndarray:
        if column not in df.columns:
            raise DataValidationError(
                f"time-ordered CV needs a {column!r} column (churn features build writes one), or set cv: stratified"
            )
        parsed = pd.to_datetime(df[column], utc=True, errors="coerce")
        if parsed.isna().any():
            bad = df[column][parsed.isna()].iloc[0]
            raise DataValidationError(f"column {column!r} holds {bad!r}, not a time (time-ordered CV reads it)")
        return parsed.to_numpy(dtype="datetime64[us]")

    cutoff = times(CUTOFF_COLUMN)
    known = times(LABEL_END_COLUMN) if LABEL_END_COLUMN in df.columns else None
    folds = []
    for t in np.unique(cutoff)[1:][-k:]:
        train_idx = np.flatnonzero(known <= t if known is not None else cutoff < t)
        if len(train_idx):
            folds.append((train_idx, np.flatnonzero(cutoff == t)))
    if not folds:
        raise DataValidationError(
            "time-ordered CV needs rows at two or more cutoffs, the earlier ones labelled by the later ones "
            "(or set cv: stratified)"
        )
    return folds
