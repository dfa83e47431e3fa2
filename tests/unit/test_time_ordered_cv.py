"""Time-ordered CV for rows built at cutoffs: train only on what was known before the tested cutoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnguard.domain.errors import DataValidationError
from churnguard.domain.time_folds import time_folds
from churnguard.domain.training import TrainingConfig, _outer_folds


def frame(cutoffs, label_end=True, horizon_days=30):
    df = pd.DataFrame({"cutoff": cutoffs})
    if label_end:
        ends = pd.to_datetime(df["cutoff"], utc=True) + pd.Timedelta(days=horizon_days)
        df["label_end"] = ends.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    return df


MONTHS = [f"2026-{m:02d}-01T00:00:00Z" for m in range(1, 7)]


def test_each_of_the_latest_cutoffs_is_tested_on_by_a_model_of_the_past():
    df = frame([c for c in MONTHS for _ in range(3)])

    folds = time_folds(df, 3)

    assert [sorted(set(df["cutoff"].iloc[test])) for _, test in folds] == [[MONTHS[3]], [MONTHS[4]], [MONTHS[5]]]
    for train, test in folds:
        assert df["cutoff"].iloc[train].max() < df["cutoff"].iloc[test].min()


def test_rows_whose_labels_were_not_known_yet_stay_out_of_training():
    # A 45-day horizon: the row at 1 May is labelled on 15 June, after the 1 June cutoff it would train for.
    df = frame(MONTHS, horizon_days=45)

    (train, test), *_ = time_folds(df, 1)

    assert list(df["cutoff"].iloc[test]) == [MONTHS[5]]
    assert list(df["cutoff"].iloc[train]) == MONTHS[:4]


def test_without_a_label_end_column_earlier_cutoffs_train():
    df = frame(MONTHS, label_end=False)

    (train, _), *_ = time_folds(df, 1)

    assert list(df["cutoff"].iloc[train]) == MONTHS[:5]


def test_one_cutoff_cannot_be_split_in_time():
    with pytest.raises(DataValidationError, match="two or more cutoffs"):
        time_folds(frame([MONTHS[0]] * 5), 3)


def test_a_cutoff_that_is_not_a_time_is_named():
    with pytest.raises(DataValidationError, match="'cutoff' holds 'soon'"):
        time_folds(frame(MONTHS[:2], label_end=False).assign(cutoff=["2026-01-01", "soon"]), 1)


def test_auto_is_time_ordered_with_a_cutoff_column_and_stratified_without():
    y = np.array([True, False] * 15)
    snapshot = pd.DataFrame({"tenure": range(30)})
    built = frame([c for c in MONTHS for _ in range(5)])

    assert _outer_folds(snapshot, y, TrainingConfig(n_folds=3))[1] == "stratified"
    assert _outer_folds(built, y, TrainingConfig(n_folds=3))[1] == "time-ordered"
    assert _outer_folds(built, y, TrainingConfig(n_folds=3, cv="stratified"))[1] == "stratified"
    with pytest.raises(ValueError, match="cv must be auto, stratified or time"):
        TrainingConfig.from_dict({"cv": "random"})


def test_time_ordered_cv_forced_on_snapshot_data_names_the_missing_column():
    with pytest.raises(DataValidationError, match="needs a 'cutoff' column"):
        _outer_folds(pd.DataFrame({"tenure": range(6)}), np.array([True, False] * 3), TrainingConfig(cv="time"))
