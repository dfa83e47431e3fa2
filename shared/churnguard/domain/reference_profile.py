"""Reference profiles: how each feature and the scores were distributed at training time.

Stored in the model bundle; drift checks compare recent traffic against it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from churnguard.domain.schema import CategoricalFeature, Schema

N_BINS = 10


def numeric_edges(values: np.ndarray, bins: int = N_BINS) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    qs = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(v) for v in qs]


def numeric_frequencies(values: np.ndarray, edges: list[float]) -> tuple[list[float], float]:
    """Share of values in each bin (len(edges)+1 bins) among present values, and the missing share."""
    finite = np.isfinite(values)
    n = len(values)
    if n == 0:
        return [0.0] * (len(edges) + 1), 0.0
    idx = np.searchsorted(np.asarray(edges), values[finite], side="right")
    counts = np.bincount(idx, minlength=len(edges) + 1).astype(float)
    present = counts.sum()
    freqs = (counts / present).tolist() if present else [0.0] * len(counts)
    return freqs, float(1 - finite.sum() / n)


def categorical_frequencies(codes: np.ndarray, n_categories: int) -> tuple[list[float], float]:
    present = np.isfinite(codes)
    n = len(codes)
    counts = np.bincount(codes[present].astype(int), minlength=n_categories).astype(float)
    total = counts.sum()
    freqs = (counts / total).tolist() if total else [0.0] * n_categories
    return freqs, float(1 - present.sum() / n) if n else 0.0


def build_profile(schema: Schema, X: np.ndarray, scores: np.ndarray) -> dict[str, Any]:
    features: dict[str, Any] = {}
    for j, f in enumerate(schema.features):
        col = X[:, j]
        if isinstance(f, CategoricalFeature):
            freqs, missing = categorical_frequencies(col, len(f.categories))
            features[f.name] = {
                "type": "categorical",
                "categories": list(f.categories),
                "frequencies": freqs,
                "missing": missing,
            }
        else:
            edges = numeric_edges(col)
            freqs, missing = numeric_frequencies(col, edges)
            finite = col[np.isfinite(col)]
            features[f.name] = {
                "type": "numeric",
                "edges": edges,
                "frequencies": freqs,
                "missing": missing,
                "mean": float(finite.mean()) if finite.size else None,
                "std": float(finite.std()) if finite.size else None,
                # A bounded sample keeps KS tests possible without storing the training data.
                "sample": [
                    float(v)
                    for v in np.sort(np.random.default_rng(0).choice(finite, min(500, finite.size), replace=False))
                ]
                if finite.size
                else [],
            }
    return {"rows": int(X.shape[0]), "features": features, "scores": score_profile(scores)}


def score_profile(scores: np.ndarray) -> dict[str, Any]:
    """How a model's scores were distributed: decile bins, their shares, the mean and a bounded sample
    (the training profile's ``scores``; the evaluation's held-out scores, which the canary stage expects)."""
    scores = np.asarray(scores, dtype=np.float64)
    edges = numeric_edges(scores)
    freqs, _ = numeric_frequencies(scores, edges)
    return {
        "edges": edges,
        "frequencies": freqs,
        "mean": float(scores.mean()),
        "sample": [
            float(v) for v in np.sort(np.random.default_rng(1).choice(scores, min(500, scores.size), replace=False))
        ],
    }
