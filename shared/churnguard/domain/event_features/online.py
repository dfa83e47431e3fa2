"""Scoring stored feature vectors with a model: the nightly refresh's scores, and the check a vector
passes before ``POST /customers/{id}/predict`` scores it.

    rows, rejected = score_vectors(predictor, vectors)      # for the score store, reasons as JSON
    row = fit_vector(predictor, stored["features"])         # FeatureMismatchError if the model wants others
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from churnguard.domain.batch.explanation import reasons_json
from churnguard.domain.errors import FeatureMismatchError, RecordValidationError
from churnguard.domain.predictor import DEFAULT_TOP_REASONS, Predictor

# Rows scored per block: bounds the memory of contributions (rows x features) for 100k+ customers.
BLOCK = 20_000


def require_features(predictor: Predictor, names: Iterable[str]) -> None:
    """FeatureMismatchError naming the model's features that vectors with ``names`` lack."""
    have = set(names)
    missing = [n for n in predictor.schema.feature_names if n not in have]
    if missing:
        raise FeatureMismatchError(
            f"the stored features lack {', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}, which model "
            f"{predictor.version} needs: train the champion on the feature build (churn features build)"
        )


def fit_vector(predictor: Predictor, features: Mapping[str, Any]) -> dict[str, Any]:
    """The vector as a record of the model's features; FeatureMismatchError (naming what) when it does not fit."""
    require_features(predictor, features)
    try:
        predictor.encoder.encode_record(features)
    except RecordValidationError as e:
        raise FeatureMismatchError(
            f"the stored features do not fit model {predictor.version}: {e}; retrain on a current feature build"
        ) from e
    return dict(features)


def score_vectors(
    predictor: Predictor, vectors: Sequence[tuple[str, Mapping[str, Any]]], top: int = DEFAULT_TOP_REASONS
) -> tuple[list[tuple[str, float, bool, str, str]], list[dict[str, Any]]]:
    """((id, probability, will_churn, risk, reasons JSON) per scorable vector, rejected vectors with why).

    Reasons are the model's exact TreeSHAP contributions, top ``top``, in the API's shape. Vectors without
    features the model needs raise FeatureMismatchError (all vectors of a refresh have the same names).
    """
    if vectors:
        require_features(predictor, vectors[0][1])
    rows: list[tuple[str, float, bool, str, str]] = []
    rejected: list[dict[str, Any]] = []
    for ids, X in _blocks(predictor, vectors, rejected):
        p = predictor.probabilities(X)
        reasons = reasons_json(predictor.contributions(X), X, predictor.encoder, top)
        for cid, prob, why in zip(ids, p.tolist(), reasons.tolist(), strict=True):
            rows.append((cid, prob, prob >= predictor.threshold, predictor.bands.level(prob), str(why)))
    return rows, rejected


def _blocks(
    predictor: Predictor, vectors: Sequence[tuple[str, Mapping[str, Any]]], rejected: list[dict[str, Any]]
) -> Iterator[tuple[list[str], np.ndarray]]:
    encoder = predictor.encoder
    for start in range(0, len(vectors), BLOCK):
        ids: list[str] = []
        X = np.empty((min(BLOCK, len(vectors) - start), encoder.n_features))
        for cid, features in vectors[start : start + BLOCK]:
            try:
                encoder.encode_record(features, out=X[len(ids)])
            except RecordValidationError as e:
                rejected.append({"customer_id": cid, "problems": e.problems})
                continue
            ids.append(cid)
        if ids:
            yield ids, X[: len(ids)]
