"""Online scoring: who answers a request, and what happens after the answer.

A request is answered by the champion, or, for the sticky share of customers a canary is set
for, by the canary (a failing canary hands the customer back to the champion). With no model at
all and ``FALLBACK_MODE=base_rate`` the base-rate estimate answers, flagged ``"fallback": true``.
After the answer has been computed (never before), ``follow_up`` scores the shadow challenger,
logs the predictions and lets the challenger cache refresh; it never raises.

    scoring = OnlineScoring(schema, provider.champion, challenger=challengers, log=firehose_log, hash_key=key)
    prediction, later = scoring.predict_one(row, reasons=True)
    if later is not None:
        scoring.follow_up(later, request_id="abc")       # in a background task
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from churnguard.domain.canary import Challenger
from churnguard.domain.errors import ModelUnavailableError
from churnguard.domain.fallback import BaseRateEstimate
from churnguard.domain.identity import customer_key
from churnguard.domain.prediction_log import prediction_record
from churnguard.domain.predictor import Predictor
from churnguard.domain.schema import Schema
from churnguard.services.champion import ChallengerProvider
from churnguard.services.ports import PredictionLogSink

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FollowUp:
    """What ``follow_up`` needs of an answered request."""

    rows: Sequence[Mapping[str, Any]]
    predictions: Sequence[Mapping[str, Any]]
    variant: str
    keys: Sequence[str | None]
    challenger: Challenger | None
    ts: datetime
    # One answer's scoring time, and why a canary that should have answered did not (the champion did).
    latency_ms: float | None = None
    canary_error: str | None = None


class OnlineScoring:
    def __init__(
        self,
        schema: Schema,
        champion: Callable[[], Predictor],
        *,
        challenger: ChallengerProvider | None = None,
        log: PredictionLogSink | None = None,
        hash_key: bytes | None = None,
        fallback: Callable[[], BaseRateEstimate | None] | None = None,
        loaded_version: Callable[[], str | None] = lambda: None,
    ) -> None:
        """``schema`` is the one requests were validated against; ``champion`` returns the model to
        serve (ModelUnavailableError when none can be loaded)."""
        self.schema = schema
        self.champion = champion
        self.challenger = challenger
        self.log = log
        self.hash_key = hash_key
        self.fallback = fallback
        self.loaded_version = loaded_version
        self._schema_sha = schema.sha256
        self._feature_names = schema.feature_names
        self._id_column = schema.id_column
        # The keyed hash feeds the canary split and the log only; without either it is not computed.
        self._follows_up = log is not None or challenger is not None

    def key_of(self, row: Mapping[str, Any]) -> str | None:
        """The customer's keyed hash, or None without an id (or without a hash key)."""
        cid = row.get(self._id_column) if self._id_column else None
        if self.hash_key is None or not isinstance(cid, str) or not cid.strip():
            return None
        return customer_key(cid, self.hash_key)

    def predict_one(self, row: Mapping[str, Any], reasons: bool = True) -> tuple[dict[str, Any], FollowUp | None]:
        """The answer for one validated row, and what to do after it (None: nothing)."""
        key = self.key_of(row) if self._follows_up else None
        ch = self.challenger.current() if self.challenger is not None else None
        pred, variant, canary_error = None, "champion", None
        started = time.perf_counter()
        if ch is not None and ch.answers(key):
            try:
                same = ch.predictor.schema.sha256 == self._schema_sha
                pred, variant = ch.predictor.predict_records([row], reasons=reasons, validated=same)[0], "canary"
            except Exception as e:  # noqa: BLE001 - a failing canary hands the customer back to the champion
                log.warning("canary scoring failed, the champion answers: %s: %s", type(e).__name__, e)
                canary_error, started = "scoring", time.perf_counter()
        elif ch is None and self.challenger is not None and self.challenger.unavailable_for(key):
            canary_error = "unavailable"
        if pred is None:
            pred = self._champion_predictions([row], reasons)[0]
        if not self._follows_up:
            return pred, None
        latency_ms = (time.perf_counter() - started) * 1000.0
        return pred, FollowUp([row], [pred], variant, [key], ch, datetime.now(UTC), latency_ms, canary_error)

    def predict_many(
        self, rows: Sequence[Mapping[str, Any]], reasons: bool = True
    ) -> tuple[list[dict[str, Any]], FollowUp | None]:
        """A batch is answered by the champion alone (one model version per answer); shadow still applies."""
        preds = self._champion_predictions(rows, reasons)
        if not self._follows_up:
            return preds, None
        ch = self.challenger.current() if self.challenger is not None else None
        keys = [self.key_of(r) for r in rows]
        return preds, FollowUp(rows, preds, "champion", keys, ch, datetime.now(UTC))

    def _champion_predictions(self, rows: Sequence[Mapping[str, Any]], reasons: bool) -> list[dict[str, Any]]:
        try:
            predictor = self.champion()
        except ModelUnavailableError:
            estimate = self.fallback() if self.fallback is not None else None
            if estimate is None:
                raise
            return estimate.predict_records(rows)
        # Rows validated against this schema can skip re-validation when the champion shares it.
        same = predictor.schema.sha256 == self._schema_sha
        return predictor.predict_records(rows, reasons=reasons, validated=same)

    def follow_up(self, later: FollowUp, request_id: str) -> None:
        """After the answer: shadow scoring, the prediction log, the challenger refresh. Never raises."""
        try:
            if self.log is not None and not later.predictions[0].get("fallback"):
                self.log.add(self._records(later, request_id))
        except Exception:  # noqa: BLE001 - logging must never fail a served prediction
            log.exception("prediction log record not built")
        if self.challenger is not None:
            self.challenger.refresh_if_due()

    def _records(self, later: FollowUp, request_id: str) -> list[dict[str, Any]]:
        def record(
            row: Mapping[str, Any], pred: Mapping[str, Any], variant: str, key: str | None, answered: bool = False
        ) -> dict[str, Any]:
            return prediction_record(
                features=row,
                prediction=pred,
                variant=variant,
                customer_key=key,
                request_id=request_id,
                feature_names=self._feature_names,
                ts=later.ts,
                latency_ms=later.latency_ms if answered else None,
                canary_error=later.canary_error if answered else None,
            )

        rows, keys = later.rows, later.keys
        recs = [
            record(r, p, later.variant, k, answered=True) for r, p, k in zip(rows, later.predictions, keys, strict=True)
        ]
        ch = later.challenger
        if ch is not None and ch.shadow and ch.predictor.version != later.predictions[0]["model_version"]:
            try:
                same = ch.predictor.schema.sha256 == self._schema_sha
                shadow = ch.predictor.predict_records(rows, reasons=False, validated=same)
                recs += [record(r, p, "shadow", k) for r, p, k in zip(rows, shadow, keys, strict=True)]
            except Exception as e:  # noqa: BLE001 - the shadow never affects the answer or the log
                log.warning("shadow scoring failed: %s: %s", type(e).__name__, e)
        return recs

    def model_info(self) -> dict[str, Any]:
        """The champion's metadata and metrics, as ``GET /model`` shows them."""
        p = self.champion()
        meta = p.metadata
        return {
            "version": p.version,
            "created_at": meta.get("created_at"),
            "metrics": {k: v for k, v in meta.get("metrics", {}).items() if k != "folds"},
            "threshold": p.threshold,
            "threshold_method": meta.get("threshold_method"),
            "risk_bands": {"medium": p.bands.medium, "high": p.bands.high},
            "schema": {"name": p.schema.name, "sha256": p.schema.sha256, "features": p.schema.feature_names},
            "feature_importance": meta.get("feature_importance"),
            "training": {k: v for k, v in meta.get("training", {}).items() if k != "config"},
            "libraries": meta.get("libraries"),
        }
