"""Scoring: calibrated churn probability, decision, risk level, reasons and a recommendation.

A Predictor is built once per model version from a verified bundle and reused for every
request. Reasons come from LightGBM's exact TreeSHAP contributions (``pred_contrib``),
named by the original feature and value.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from .bundle import ModelBundle
from .calibration import CalibrationMap
from .errors import ArtifactIntegrityError
from .features import FeatureEncoder
from .schema import Schema

DEFAULT_TOP_REASONS = 3


@dataclass(frozen=True)
class RiskBands:
    """``low`` below ``medium``; ``high`` at or above ``high``."""

    medium: float
    high: float

    def level(self, p: float) -> str:
        return "high" if p >= self.high else "medium" if p >= self.medium else "low"

    @classmethod
    def for_threshold(cls, threshold: float) -> "RiskBands":
        return cls(medium=threshold, high=max(0.6, threshold))


RECOMMENDATIONS = {
    "high": "Contact within 7 days with a retention offer; address the main driver: {driver}.",
    "medium": "Add to the next retention campaign; watch the main driver: {driver}.",
    "low": "No action needed; keep the usual service.",
}


class Predictor:
    """Scores records with one model version. ``Predictor(bundle).predict_record(row)``."""

    def __init__(self, bundle: ModelBundle) -> None:
        import lightgbm as lgb

        meta = bundle.metadata
        self.version = bundle.version
        self.metadata = meta
        try:
            self.schema = Schema.from_dict(meta["schema"])
            if self.schema.sha256 != meta["schema_sha256"]:
                raise ArtifactIntegrityError(f"schema of {bundle.version} does not match its recorded hash")
            self.calibration = CalibrationMap.from_dict(meta["calibration"])
            self.threshold = float(meta["threshold"])
            bands = meta.get("risk_bands") or {}
            self.bands = RiskBands(**bands) if bands else RiskBands.for_threshold(self.threshold)
        except (KeyError, TypeError, ValueError) as e:
            raise ArtifactIntegrityError(f"metadata of {bundle.version} is incomplete: {e}") from e
        self.encoder = FeatureEncoder(self.schema)
        try:
            self.booster = lgb.Booster(model_str=bundle.model_text)
        except lgb.basic.LightGBMError as e:
            raise ArtifactIntegrityError(f"model of {bundle.version} cannot be parsed: {e}") from e
        if self.booster.num_feature() != self.encoder.n_features:
            raise ArtifactIntegrityError(
                f"model of {bundle.version} expects {self.booster.num_feature()} features, schema has {self.encoder.n_features}"
            )

    # ----- matrices -------------------------------------------------------------------
    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return self.calibration.apply(self.booster.predict(X))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions (last column is the bias)."""
        return self.booster.predict(X, pred_contrib=True)

    # ----- records --------------------------------------------------------------------
    def predict_records(
        self, records: Sequence[Mapping[str, Any]], reasons: bool = True, validated: bool = False, top: int = DEFAULT_TOP_REASONS
    ) -> list[dict[str, Any]]:
        X = np.empty((len(records), self.encoder.n_features), dtype=np.float64)
        encode = self.encoder.encode_valid_record if validated else self.encoder.encode_record
        for i, r in enumerate(records):
            encode(r, out=X[i])
        return self.predict_matrix(X, reasons=reasons, top=top)

    def predict_record(self, record: Mapping[str, Any], reasons: bool = True, validated: bool = False) -> dict[str, Any]:
        return self.predict_records([record], reasons=reasons, validated=validated)[0]

    def predict_matrix(self, X: np.ndarray, reasons: bool = True, top: int = DEFAULT_TOP_REASONS) -> list[dict[str, Any]]:
        probs = self.probabilities(X)
        contrib = self.contributions(X) if reasons else None
        out = []
        for i, p in enumerate(probs):
            p = float(p)
            risk = self.bands.level(p)
            why = self.reasons(X[i], contrib[i]) if contrib is not None else []
            out.append(
                {
                    "churn_probability": round(p, 4),
                    "will_churn": p >= self.threshold,
                    "risk_level": risk,
                    "reasons": why[:top],
                    "recommendation": self.recommend(risk, why),
                    "model_version": self.version,
                }
            )
        return out

    def reasons(self, x: np.ndarray, contrib: np.ndarray) -> list[dict[str, Any]]:
        values = contrib[:-1]
        order = np.argsort(-np.abs(values), kind="stable")
        return [
            {
                "feature": self.encoder.names[j],
                "value": self.encoder.decode(j, float(x[j])),
                "effect": "increases risk" if values[j] > 0 else "decreases risk",
                "contribution": round(float(values[j]), 4),
            }
            for j in order
            if values[j] != 0 and not math.isnan(values[j])
        ]

    @staticmethod
    def recommend(risk: str, reasons: list[dict[str, Any]]) -> str:
        up = next((r for r in reasons if r["contribution"] > 0), None)
        driver = f"{up['feature']} = {up['value']}" if up else "none identified"
        return RECOMMENDATIONS[risk].format(driver=driver)
