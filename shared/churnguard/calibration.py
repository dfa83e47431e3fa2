"""Probability calibration as a monotone piecewise-linear map stored as JSON.

Fitted with isotonic regression on predictions the model did not train on; applied with
``numpy.interp``, so serving needs neither scikit-learn nor any code from the bundle.
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
        if any(b < a for a, b in zip(self.x, self.x[1:])) or any(b < a for a, b in zip(self.y, self.y[1:])):
            raise ValueError("a calibration map must be non-decreasing")

    @classmethod
    def identity(cls) -> "CalibrationMap":
        return cls((0.0, 1.0), (0.0, 1.0))

    @classmethod
    def fit(cls, p: np.ndarray, y: np.ndarray) -> "CalibrationMap":
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
    def from_dict(cls, d: dict[str, Any]) -> "CalibrationMap":
        return cls(tuple(float(v) for v in d["x"]), tuple(float(v) for v in d["y"]))
