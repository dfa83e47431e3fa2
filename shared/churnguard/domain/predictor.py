"""Scoring: calibrated churn probability, decision, risk level, reasons and a recommendation.

A Predictor is built once per model version from a verified bundle and reused for every
request. Reasons come from LightGBM's exact TreeSHAP contributions (``pred_contrib``),
named by the original feature and value.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from churnguard.domain.booster import NativeBooster
from churnguard.domain.bundle import ModelBundle
from churnguard.domain.calibration import CalibrationMap, PlattCalibration
from churnguard.domain.errors import ArtifactIntegrityError
from churnguard.domain.features import FeatureEncoder
from churnguard.domain.schema import Schema

DEFAULT_TOP_REASONS = 3


@dataclass(frozen=True)
class RiskBands:
    """``low`` below ``medium``; ``high`` at or above ``high``."""

    medium: float
    high: float

    def level(self, p: float) -> str:
        return "high" if p >= self.high else "medium" if p >= self.medium else "low"

    @classmethod
    def for_threshold(cls, threshold: float) -> RiskBands:
        return cls(medium=threshold, high=max(0.6, threshold))


RECOMMENDATIONS = {
    "high": "Contact within 7 days with a retention offer; address the main driver: {driver}.",
    "medium": "Add to the next retention campaign; watch the main driver: {driver}.",
    "low": "No action needed; keep the usual service.",
}
# When reasons were not asked for (``reasons=false``) there is no driver to name.
RECOMMENDATIONS_WITHOUT_REASONS = {
    "high": "Contact within 7 days with a retention offer; ask for reasons to see the main driver.",
    "medium": "Add to the next retention campaign; ask for reasons to see the main driver.",
    "low": RECOMMENDATIONS["low"],
}


def _platt_one_row(cal: PlattCalibration) -> Any:
    """``PlattCalibration.apply`` for a one-element array, into buffers allocated once.

    The same ufuncs in the same order as ``apply`` (clip, log, log1p, multiply, add, negative,
    exp, add, divide), so the value is bit-identical; it skips the temporaries and np.clip's
    Python wrapper, about 15 µs a request. Not thread-safe: call under the booster's lock.
    """
    a, b = cal.a, cal.b
    q, t, u = np.empty(1), np.empty(1), np.empty(1)
    clip, log, log1p, negative, exp = np.clip, np.log, np.log1p, np.negative, np.exp
    multiply, add, subtract, divide = np.multiply, np.add, np.subtract, np.divide

    def one(score: np.ndarray) -> np.ndarray:
        clip(score, 1e-15, 1 - 1e-15, out=q)  # _logit: q = clip(p); log(q) - log1p(-q)
        log(q, out=t)
        log1p(negative(q, out=u), out=u)
        subtract(t, u, out=t)
        multiply(a, t, out=t)  # 1 / (1 + exp(-(a * logit + b)))
        add(t, b, out=t)
        exp(negative(t, out=t), out=t)
        add(1.0, t, out=t)
        return divide(1.0, t, out=t)

    return one


class Predictor:
    """Scores records with one model version. ``Predictor(bundle).predict_record(row)``."""

    def __init__(self, bundle: ModelBundle) -> None:
        meta = bundle.metadata
        self.version = bundle.version
        # Kept for scorers that build their own booster or tables from it (batch: domain/batch/scorer.py).
        self.model_text = bundle.model_text
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
            # lib_lightgbm through ctypes: the same numbers as lightgbm.Booster, without scipy/pandas/sklearn.
            self.booster = NativeBooster(bundle.model_text)
        except ArtifactIntegrityError as e:
            raise ArtifactIntegrityError(f"model of {bundle.version} cannot be parsed: {e}") from e
        if self.booster.num_feature() != self.encoder.n_features:
            raise ArtifactIntegrityError(
                f"model of {bundle.version} expects {self.booster.num_feature()} features, schema has "
                f"{self.encoder.n_features}"
            )
        # Precomputed once so a request allocates nothing it can avoid.
        self._calibrate: Callable[[np.ndarray], Any] = self.calibration.apply
        self._calibrate_one: Callable[[np.ndarray], Any] = self._calibrate
        if isinstance(self.calibration, CalibrationMap):
            xa = np.asarray(self.calibration.x, dtype=np.float64)
            ya = np.asarray(self.calibration.y, dtype=np.float64)
            self._calibrate = lambda raw: np.interp(raw, xa, ya)  # == CalibrationMap.apply, arrays built once
            self._calibrate_one = self._calibrate
        elif isinstance(self.calibration, PlattCalibration):
            self._calibrate_one = _platt_one_row(self.calibration)
        self._names = list(self.encoder.names)
        self._n = self.encoder.n_features

    # ----- matrices -------------------------------------------------------------------
    def probabilities(self, X: np.ndarray) -> np.ndarray:
        return self._calibrate(self.booster.predict(X))

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """Per-feature log-odds contributions (last column is the bias)."""
        return self.booster.predict(X, pred_contrib=True)

    # ----- records --------------------------------------------------------------------
    def predict_records(
        self,
        records: Sequence[Mapping[str, Any]],
        reasons: bool = True,
        validated: bool = False,
        top: int = DEFAULT_TOP_REASONS,
    ) -> list[dict[str, Any]]:
        if len(records) == 1:
            return [self._predict_one(records[0], reasons, validated, top)]
        X = np.empty((len(records), self.encoder.n_features), dtype=np.float64)
        encode = self.encoder.encode_valid_record if validated else self.encoder.encode_record
        for i, r in enumerate(records):
            encode(r, out=X[i])
        return self.predict_matrix(X, reasons=reasons, top=top)

    def predict_record(
        self, record: Mapping[str, Any], reasons: bool = True, validated: bool = False
    ) -> dict[str, Any]:
        return self._predict_one(record, reasons, validated, DEFAULT_TOP_REASONS)

    def _predict_one(self, record: Mapping[str, Any], reasons: bool, validated: bool, top: int) -> dict[str, Any]:
        """One record through LightGBM's single-row fast path; the same result as ``predict_matrix``."""
        booster = self.booster
        with booster.lock:
            x = booster.row
            if validated:
                self.encoder.encode_valid_record(record, x)
            else:
                self.encoder.encode_record(record, out=x)
            booster.score_row()
            # Calibrated as a one-element array with the same numpy ufuncs as the matrix path.
            p = float(self._calibrate_one(booster.score)[0])
            contrib = booster.contrib_row() if reasons else None
            xs = x.tolist() if reasons else None
        risk = self.bands.level(p)
        if contrib is None:
            why: list[dict[str, Any]] = []
            recommendation = RECOMMENDATIONS_WITHOUT_REASONS[risk]
        else:
            why, driver = self._top_reasons(xs, contrib, top)  # type: ignore[arg-type]
            recommendation = RECOMMENDATIONS[risk].format(driver=driver)
        return {
            "churn_probability": round(p, 4),
            "will_churn": p >= self.threshold,
            "risk_level": risk,
            "reasons": why,
            "recommendation": recommendation,
            "model_version": self.version,
        }

    def _top_reasons(self, x: list[float], contrib: list[float], top: int) -> tuple[list[dict[str, Any]], str]:
        """``reasons(x, contrib)[:top]`` and the driver ``recommend`` names, without building every reason.

        Filtering before a stable sort keeps the order of ``np.argsort(-abs, kind="stable")`` over
        the non-zero, non-NaN contributions (NaN is never equal to itself).
        """
        n = self._n
        order = sorted(
            (j for j in range(n) if contrib[j] != 0 and contrib[j] == contrib[j]), key=lambda j: -abs(contrib[j])
        )
        decode = self.encoder.decode
        names = self._names
        out = []
        for j in order[:top]:
            v = contrib[j]
            out.append(
                {
                    "feature": names[j],
                    "value": decode(j, x[j]),
                    "effect": "increases risk" if v > 0 else "decreases risk",
                    "contribution": round(v, 4),
                }
            )
        driver = "none identified"
        for j in order:
            if round(contrib[j], 4) > 0:
                driver = f"{names[j]} = {decode(j, x[j])}"
                break
        return out, driver

    def predict_matrix(
        self, X: np.ndarray, reasons: bool = True, top: int = DEFAULT_TOP_REASONS
    ) -> list[dict[str, Any]]:
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
                    "recommendation": self.recommend(risk, why)
                    if contrib is not None
                    else RECOMMENDATIONS_WITHOUT_REASONS[risk],
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
