"""Probability calibration stored as JSON and applied with numpy.

Two methods, both fitted on predictions the model did not train on:
- ``platt`` (the default): a logistic map of the raw score, ``p = 1 / (1 + exp(-(a*s + b)))``;
  strictly monotone, so it keeps the model's ranking (and ROC-AUC) intact;
- ``isotonic``: a monotone piecewise-linear map applied with ``numpy.interp``.
Serving needs neither scikit-learn nor any code from the bundle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class CalibrationMap:
    x: tuple[float, ...]
    y: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y) or len(self.x) < 2:
            raise ValueError("a calibration map needs at least two matching points")
        if any(b < a for a, b in zip(self.x, self.x[1:], strict=False)) or any(
            b < a for a, b in zip(self.y, self.y[1:], strict=False)
        ):
            raise ValueError("a calibration map must be non-decreasing")

    @classmethod
    def identity(cls) -> CalibrationMap:
        return cls((0.0, 1.0), (0.0, 1.0))

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> CalibrationMap:
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(p, y)
        xs = np.concatenate(([0.0], iso.X_thresholds_, [1.0]))
        ys = np.concatenate(([iso.y_thresholds_[0]], iso.y_thresholds_, [iso.y_thresholds_[-1]]))
        # Keep probabilities strictly inside (0, 1): a score of exactly 0 or 1 is never honest.
        ys = np.clip(ys, 1e-4, 1 - 1e-4)
        return cls(tuple(float(v) for v in xs), tuple(float(v) for v in ys))

    def apply(self, p: np.ndarray | float) -> np.ndarray:
        return np.interp(p, self._xa, self._ya)

    @property
    def _xa(self) -> np.ndarray:
        return np.asarray(self.x)

    @property
    def _ya(self) -> np.ndarray:
        return np.asarray(self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"method": "isotonic", "x": list(self.x), "y": list(self.y)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """Rebuild whichever calibration ``d`` describes (its ``method`` says which)."""
        if d.get("method") == "platt":
            return PlattCalibration(a=float(d["a"]), b=float(d["b"]))
        return cls(tuple(float(v) for v in d["x"]), tuple(float(v) for v in d["y"]))


def _logit(p: np.ndarray | float) -> np.ndarray:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return np.log(q) - np.log1p(-q)


@dataclass(frozen=True)
class PlattCalibration:
    """Logistic calibration of the raw score (the logit of the model's probability)."""

    a: float
    b: float

    def __post_init__(self) -> None:
        if not (np.isfinite(self.a) and np.isfinite(self.b)) or self.a <= 0:
            raise ValueError("a Platt calibration needs finite parameters and a positive slope")

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> PlattCalibration:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1e6).fit(_logit(np.asarray(p)).reshape(-1, 1), np.asarray(y).astype(int))
        return cls(a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))

    def apply(self, p: np.ndarray | float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(self.a * _logit(p) + self.b)))

    def to_dict(self) -> dict[str, Any]:
        return {"method": "platt", "a": self.a, "b": self.b}


Calibration = CalibrationMap | PlattCalibration
CALIBRATION_METHODS: dict[str, type[PlattCalibration] | type[CalibrationMap]] = {
    "platt": PlattCalibration,
    "isotonic": CalibrationMap,
}


def fit_calibration(method: str, p: np.ndarray, y: np.ndarray) -> Calibration:
    try:
        return CALIBRATION_METHODS[method].fit(p, y)
    except KeyError:
        raise ValueError(f"calibration must be one of {sorted(CALIBRATION_METHODS)}, not {method!r}") from None
