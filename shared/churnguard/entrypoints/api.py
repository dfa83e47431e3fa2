"""The online API: a FastAPI app built from the schema by a factory.

The request model is generated from the schema, so the OpenAPI document lists the real
fields with their allowed values and bounds. The champion comes from a provider callable,
so tests and the CLI hand in their own. Every domain error maps to a status code here,
in one place; no input reaches a 500.
"""
# No `from __future__ import annotations`: FastAPI must see the generated request models, not strings.

import logging
import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import BackgroundTasks, Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from churnguard.domain.errors import (
    ModelUnavailableError,
    OutcomeConflictError,
    RecordValidationError,
    StorageError,
)
from churnguard.domain.identity import customer_key as _hash_customer_id
from churnguard.domain.predictor import Predictor
from churnguard.domain.schema import CategoricalFeature, Schema

_log = logging.getLogger(__name__)


def _blank_to_none(v: Any) -> Any:
    # A CSV row sent as JSON writes a missing value as "" or " ".
    return None if isinstance(v, str) and not v.strip() else v


def _not_a_bool(v: Any) -> Any:
    # JSON true/false is not a number, although pydantic would read it as 1/0.
    if isinstance(v, bool):
        raise ValueError("must be a number, not true or false")
    return v


def customer_model(schema: Schema) -> type[BaseModel]:
    """A pydantic model with one field per schema column (id and target optional)."""
    fields: dict[str, Any] = {}
    for f in schema.features:
        if isinstance(f, CategoricalFeature):
            typ: Any = Literal[f.categories]  # type: ignore[valid-type]
            info = Field(description=f"one of {', '.join(f.categories)}")
        else:
            base = int if f.integer else float
            typ = Annotated[base, BeforeValidator(_not_a_bool)]
            info = Field(ge=f.minimum, le=f.maximum, allow_inf_nan=False, description=f.describe_allowed())
        if f.nullable:
            typ = Annotated[typ | None, BeforeValidator(_blank_to_none)]
            info.default = None
        fields[f.name] = (typ, info)
    if schema.id_column:
        fields[schema.id_column] = (
            str | None,
            Field(default=None, max_length=128, description="customer id (optional)"),
        )
    fields[schema.target] = (str | None, Field(default=None, max_length=64, description="ignored if present"))
    return create_model(
        "Customer",
        __config__=ConfigDict(extra="forbid", json_schema_extra={"example": _example(schema)}),
        **fields,
    )


def _example(schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in schema.features:
        if isinstance(f, CategoricalFeature):
            out[f.name] = f.categories[0]
        else:
            lo = f.minimum if f.minimum is not None else 0.0
            out[f.name] = int(lo) if f.integer else lo
    return out


class Reason(BaseModel):
    feature: str
    value: str
    effect: Literal["increases risk", "decreases risk"]
    contribution: float


class StoredScore(BaseModel):
    churn_probability: float
    will_churn: bool
    risk_level: Literal["low", "medium", "high"]
    reasons: list[Reason] = Field(description="top reasons; empty when the job computed none for this risk level")
    reasons_computed: bool
    model_version: str
    scored_at: str
    job_id: str


class Prediction(BaseModel):
    churn_probability: float
    will_churn: bool
    risk_level: Literal["low", "medium", "high"]
    reasons: list[Reason]
    recommendation: str
    model_version: str
    fallback: bool = Field(False, description="true: no model could be loaded; this is the population base rate")


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
    model_version: str


_PREDICTION_KEYS = tuple(Prediction.model_fields)


def _prediction_response(pred: dict[str, Any]) -> Response:
    """``pred`` as JSON, as ``response_model=Prediction`` would write it, without re-validating it.

    Returning a Response skips FastAPI's response validation and serialisation (~20 µs a request);
    the route keeps ``response_model`` for the OpenAPI document. The predictor builds these dicts
    in the model's field order; ``fallback`` defaults to false, as the model says. pydantic-core
    writes the bytes, so numbers are formatted as before.
    """
    if len(pred) != len(_PREDICTION_KEYS) or "fallback" not in pred:
        pred = {k: pred.get(k, False) if k == "fallback" else pred[k] for k in _PREDICTION_KEYS}
    return Response(to_json(pred), media_type="application/json")


def _problems_from_pydantic(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        value = e.get("input")
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        if not isinstance(value, (str, int, float, bool, type(None))):
            value = None if isinstance(value, (dict, list)) else str(value)
        if isinstance(value, str) and len(value) > 200:
            value = value[:200] + "..."
        out.append({"field": ".".join(loc) or "body", "value": value, "problem": e.get("msg", "invalid")})
    return out


class _BodyLimit:
    """Answers 413 when the declared Content-Length is over the limit (or not a number)."""

    def __init__(self, app: Any, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            for name, value in scope["headers"]:
                if name == b"content-length":
                    length = value.decode("latin-1")
                    if not length.isdigit() or int(length) > self.max_body_bytes:
                        detail = f"body is {length} bytes; the limit is {self.max_body_bytes}"
                        response = JSONResponse({"error": "request too large", "detail": detail}, status_code=413)
                        await response(scope, receive, send)
                        return
                    break
        await self.app(scope, receive, send)


def create_app(
    schema: Schema,
    champion: Callable[[], Predictor],
    max_batch: int = 1000,
    max_body_bytes: int = 2_000_000,
    loaded_version: Callable[[], str | None] = lambda: None,
    title: str = "Churn prediction API",
    hash_key: bytes | None = None,
    log_predictions: Callable[[list[dict[str, Any]]], None] | None = None,
    challenger: Any = None,
    outcomes: Any = None,
    customer_score: Callable[[str], dict[str, Any] | None] | None = None,
    fallback: Callable[[], Any] | None = None,
) -> FastAPI:
    Customer = customer_model(schema)
    schema_sha = schema.sha256

    Batch = create_model(
        "CustomerBatch",
        __config__=ConfigDict(extra="forbid"),
        customers=(
            list[Customer],
            Field(min_length=1, max_length=max_batch, description=f"1 to {max_batch} customers"),
        ),
    )

    app = FastAPI(
        title=title, version="1", description="Calibrated churn scores with reasons, from the champion model."
    )

    # A plain ASGI middleware: @app.middleware("http") (BaseHTTPMiddleware) costs ~300 us a request.
    app.add_middleware(_BodyLimit, max_body_bytes=max_body_bytes)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Starlette's own answers (unparseable body, unknown route, wrong method) in our error shape.
        detail = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:
            detail = "the request body is not valid JSON: send one JSON object with Content-Type: application/json"
        error = {400: "invalid request", 404: "not found", 405: "method not allowed"}.get(
            exc.status_code, "request refused"
        )
        return JSONResponse({"error": error, "detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(
            {"error": "invalid request", "problems": _problems_from_pydantic(exc.errors())}, status_code=422
        )

    @app.exception_handler(RecordValidationError)
    async def invalid_record(request: Request, exc: RecordValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "problems": exc.problems}, status_code=422)

    @app.exception_handler(ModelUnavailableError)
    async def unavailable(request: Request, exc: ModelUnavailableError) -> JSONResponse:
        retry_after = str(getattr(exc, "retry_after_s", 5))
        return JSONResponse(
            {"error": "model unavailable", "detail": str(exc)}, status_code=503, headers={"Retry-After": retry_after}
        )

    @app.exception_handler(OutcomeConflictError)
    async def outcome_conflict(request: Request, exc: OutcomeConflictError) -> JSONResponse:
        return JSONResponse({"error": "conflicting outcome", "detail": str(exc)}, status_code=409)

    @app.exception_handler(StorageError)
    async def storage_unavailable(request: Request, exc: StorageError) -> JSONResponse:
        return JSONResponse(
            {"error": "storage unavailable", "detail": str(exc)}, status_code=503, headers={"Retry-After": "5"}
        )

    feature_names = schema.feature_names
    id_column = schema.id_column

    def _key_of(row: dict[str, Any]) -> str | None:
        cid = row.get(id_column) if id_column else None
        if hash_key is None or not isinstance(cid, str) or not cid.strip():
            return None
        return _hash_customer_id(cid, hash_key)

    def _request_id(request: Request) -> str:
        event = request.scope.get("aws.event") or {}
        return str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex)

    # async: a sync background task would cost a worker-thread hop per request under Mangum.
    async def _after(
        rows: list[dict[str, Any]],
        preds: list[dict[str, Any]],
        variant: str,
        keys: list[str | None],
        request_id: str,
        ts: datetime,
        ch: Any,
    ) -> None:
        """Runs after the response is computed: shadow scoring, the log, the challenger refresh. Never raises."""
        from churnguard.domain.prediction_log import prediction_record

        try:
            if log_predictions is not None and not preds[0].get("fallback"):

                def record(row: dict[str, Any], pred: dict[str, Any], v: str, key: str | None) -> dict[str, Any]:
                    return prediction_record(
                        features=row,
                        prediction=pred,
                        variant=v,
                        customer_key=key,
                        request_id=request_id,
                        feature_names=feature_names,
                        ts=ts,
                    )

                recs = [record(r, p, variant, k) for r, p, k in zip(rows, preds, keys, strict=False)]
                if ch is not None and ch.shadow and ch.predictor.version != preds[0]["model_version"]:
                    try:
                        same = ch.predictor.schema.sha256 == schema_sha
                        shadow = ch.predictor.predict_records(rows, reasons=False, validated=same)
                        recs += [record(r, p, "shadow", k) for r, p, k in zip(rows, shadow, keys, strict=False)]
                    except Exception as e:  # noqa: BLE001 - the shadow never affects the answer or the log
                        _log.warning("shadow scoring failed: %s: %s", type(e).__name__, e)
                log_predictions(recs)
        except Exception:  # noqa: BLE001
            _log.exception("prediction log record not built")
        if challenger is not None:
            challenger.refresh_if_due()

    def _score(records: list[BaseModel], reasons: bool) -> list[dict[str, Any]]:
        try:
            predictor = champion()
        except ModelUnavailableError:
            # Configured fallback (churnguard.domain.fallback): the base rate, flagged "fallback": true.
            estimate = fallback() if fallback is not None else None
            if estimate is None:
                raise
            return estimate.predict_records([r.__dict__ for r in records])
        # Rows validated against this app's schema can skip re-validation when the champion shares it.
        same = predictor.schema.sha256 == schema_sha
        rows = [r.__dict__ for r in records]
        return predictor.predict_records(rows, reasons=reasons, validated=same)

    # async: a sync route costs a worker-thread hop per request (~300 us under Mangum, which starts
    # a thread per invocation); scoring one row takes ~0.2 ms of CPU, too short to offload.
    @app.post("/predict", response_model=Prediction, summary="Score one customer")
    async def predict(  # type: ignore[no-untyped-def]
        customer: Customer,  # type: ignore[valid-type]
        request: Request,
        background: BackgroundTasks,
        reasons: bool = Query(True, description="include TreeSHAP reasons"),
    ):
        row = customer.__dict__
        # The keyed hash feeds the canary split and the log only; without either it is not computed.
        key = _key_of(row) if (log_predictions is not None or challenger is not None) else None
        ch = challenger.current() if challenger is not None else None
        pred, variant = None, "champion"
        if ch is not None and ch.answers(key):
            try:
                same = ch.predictor.schema.sha256 == schema_sha
                pred, variant = ch.predictor.predict_records([row], reasons=reasons, validated=same)[0], "canary"
            except Exception as e:  # noqa: BLE001 - a failing canary hands the customer back to the champion
                _log.warning("canary scoring failed, the champion answers: %s: %s", type(e).__name__, e)
        if pred is None:
            pred = _score([customer], reasons)[0]
        if log_predictions is not None or challenger is not None:
            background.add_task(_after, [row], [pred], variant, [key], _request_id(request), datetime.now(UTC), ch)
        return _prediction_response(pred)

    @app.post("/predict/batch", response_model=BatchPrediction, summary=f"Score up to {max_batch} customers")
    def predict_batch(  # type: ignore[no-untyped-def]
        batch: Batch,
        request: Request,
        background: BackgroundTasks,
        reasons: bool = Query(True),  # type: ignore[valid-type]
    ):
        # A batch is answered by the champion alone (one model_version per response); shadow still applies.
        preds = _score(batch.customers, reasons)
        if log_predictions is not None or challenger is not None:
            rows = [c.__dict__ for c in batch.customers]
            ch = challenger.current() if challenger is not None else None
            background.add_task(
                _after,
                rows,
                preds,
                "champion",
                [_key_of(r) for r in rows],
                _request_id(request),
                datetime.now(UTC),
                ch,
            )
        return {"predictions": preds, "model_version": preds[0]["model_version"]}

    if outcomes is not None and hash_key is not None:

        @app.post("/feedback", status_code=201, summary="Record what happened to a customer (ground truth)")
        def feedback(
            payload: Annotated[
                dict[str, Any],
                Body(examples=[{"customer_id": "7590-VHVEG", "churned": "yes", "observed_date": "2026-05-01"}]),
            ],
        ) -> JSONResponse:
            from churnguard.domain.outcomes import parse_feedback

            outcome = parse_feedback(payload, hash_key)  # RecordValidationError -> 422 naming each field
            stored = outcomes.record(outcome, source="api")
            body = {
                "stored": stored,
                "duplicate": not stored,
                "customer_key": outcome.customer_key,
                "observed_date": outcome.observed_date.isoformat(),
                "churned": outcome.churned,
            }
            return JSONResponse(body, status_code=201 if stored else 200)

    @app.get(
        "/customers/{customer_id}/score",
        response_model=StoredScore,
        summary="The customer's latest batch score, as stored (never rescored)",
        responses={404: {"description": "the customer has no stored score"}},
    )
    def stored_score(customer_id: str) -> Any:
        cid = customer_id.strip()
        if not cid or len(cid) > 128:
            return JSONResponse(
                {
                    "error": "invalid request",
                    "problems": [
                        {"field": "customer_id", "value": customer_id[:200], "problem": "must be 1 to 128 characters"}
                    ],
                },
                status_code=422,
            )
        if customer_score is None:
            return JSONResponse(
                {"error": "customer scores unavailable", "detail": "this deployment has no score table"},
                status_code=503,
            )
        found = customer_score(cid)  # StorageError -> 503 above
        if found is None:
            return JSONResponse(
                {
                    "error": "customer not scored",
                    "detail": "no stored score for this customer id; scores are written by batch scoring jobs",
                },
                status_code=404,
            )
        return found

    @app.get("/health", summary="Liveness, and which model is loaded")
    def health() -> dict[str, Any]:
        return {"status": "ok", "model_version": loaded_version()}

    @app.get("/model", summary="The champion's metadata and metrics")
    def model() -> dict[str, Any]:
        p = champion()
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

    return app
