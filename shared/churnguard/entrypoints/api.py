"""The online API: routes and error mapping, built by a factory around the online scoring service.

The request model is generated from the schema, so the OpenAPI document lists the real
fields with their allowed values and bounds. Who answers (champion, canary, fallback) and what
happens after an answer (shadow, log) is services/online_scoring.py's business; tests hand in
their own ``OnlineScoring``. Every domain error maps to a status code here, in one place; no
input reaches a 500.

    app = build_app(build_services())                          # what the predict function serves
    app = create_app(OnlineScoring(schema, lambda: predictor))  # a bare app around one model
"""
# No `from __future__ import annotations`: FastAPI must see the generated request models, not strings.

import logging
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import BackgroundTasks, Body, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from churnguard.bootstrap import (
    Services,
    build_customer_score_lookup,
    build_feedback_recorder,
    build_online_scoring,
)
from churnguard.domain.errors import (
    ModelUnavailableError,
    OutcomeConflictError,
    RecordValidationError,
    StorageError,
)
from churnguard.domain.schema import CategoricalFeature, Schema
from churnguard.services.champion import ChampionProvider
from churnguard.services.online_scoring import FollowUp, OnlineScoring
from churnguard.services.ports import PredictionLogSink

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
            typ: Any = Literal[f.categories]
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


def _problems_from_pydantic(errors: Sequence[Any]) -> list[dict[str, Any]]:
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


def _map_errors(app: FastAPI) -> None:
    """Every error a request can meet, as a status code and our error shape: the one place they are mapped."""

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


def create_app(
    scoring: OnlineScoring,
    *,
    max_batch: int = 1000,
    max_body_bytes: int = 2_000_000,
    title: str = "Churn prediction API",
    record_feedback: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    customer_score: Callable[[str], dict[str, Any] | None] | None = None,
) -> FastAPI:
    """The routes and the one mapping of domain errors to status codes; what answers is ``scoring``'s.

    ``record_feedback`` (services.feedback.record_feedback, bound) adds ``POST /feedback``;
    ``customer_score`` (the score store's lookup) answers ``GET /customers/{id}/score``.
    """
    schema = scoring.schema
    Customer = customer_model(schema)

    Batch = create_model(
        "CustomerBatch",
        __config__=ConfigDict(extra="forbid"),
        customers=(
            list[Customer],  # type: ignore[valid-type]
            Field(min_length=1, max_length=max_batch, description=f"1 to {max_batch} customers"),
        ),
    )

    app = FastAPI(
        title=title, version="1", description="Calibrated churn scores with reasons, from the champion model."
    )

    # A plain ASGI middleware: @app.middleware("http") (BaseHTTPMiddleware) costs ~300 us a request.
    app.add_middleware(_BodyLimit, max_body_bytes=max_body_bytes)

    _map_errors(app)

    def _request_id(request: Request) -> str:
        event = request.scope.get("aws.event") or {}
        return str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex)

    # async: a sync background task would cost a worker-thread hop per request under Mangum.
    async def _follow_up(later: FollowUp, request_id: str) -> None:
        scoring.follow_up(later, request_id)

    # async: a sync route costs a worker-thread hop per request (~300 us under Mangum, which starts
    # a thread per invocation); scoring one row takes ~0.2 ms of CPU, too short to offload.
    @app.post("/predict", response_model=Prediction, summary="Score one customer")
    async def predict(
        customer: Customer,  # type: ignore[valid-type]
        request: Request,
        background: BackgroundTasks,
        reasons: bool = Query(True, description="include TreeSHAP reasons"),
    ) -> Response:
        pred, later = scoring.predict_one(vars(customer), reasons)
        if later is not None:
            background.add_task(_follow_up, later, _request_id(request))
        return _prediction_response(pred)

    @app.post("/predict/batch", response_model=BatchPrediction, summary=f"Score up to {max_batch} customers")
    def predict_batch(
        batch: Batch,  # type: ignore[valid-type]
        request: Request,
        background: BackgroundTasks,
        reasons: bool = Query(True),
    ) -> dict[str, Any]:
        preds, later = scoring.predict_many([vars(c) for c in vars(batch)["customers"]], reasons)
        if later is not None:
            background.add_task(_follow_up, later, _request_id(request))
        return {"predictions": preds, "model_version": preds[0]["model_version"]}

    if record_feedback is not None:

        @app.post("/feedback", status_code=201, summary="Record what happened to a customer (ground truth)")
        def feedback(
            payload: Annotated[
                dict[str, Any],
                Body(examples=[{"customer_id": "7590-VHVEG", "churned": "yes", "observed_date": "2026-05-01"}]),
            ],
        ) -> JSONResponse:
            body = record_feedback(payload)  # RecordValidationError -> 422 naming each field, conflict -> 409
            return JSONResponse(body, status_code=201 if body["stored"] else 200)

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

    @app.get(
        "/health",
        summary="Ready to score: 200 ok only while a verified champion is loaded, 503 otherwise",
        responses={503: {"description": "no verified champion: predictions answer 503, or the base-rate fallback"}},
    )
    def health() -> Any:
        # The champion as /predict would get it (loaded and checksum-verified on first use, then cached),
        # so a load balancer or a canary check never sends traffic that every prediction would refuse.
        try:
            version = scoring.champion().version
        except ModelUnavailableError as e:
            fallback = scoring.fallback is not None and scoring.fallback() is not None
            return JSONResponse(
                {
                    "status": "degraded" if fallback else "unavailable",
                    "model_version": None,
                    "fallback": fallback,
                    "detail": str(e),
                },
                status_code=503,
                headers={"Retry-After": str(getattr(e, "retry_after_s", 5))},
            )
        return {"status": "ok", "model_version": version}

    @app.get("/model", summary="The champion's metadata and metrics")
    def model() -> dict[str, Any]:
        return scoring.model_info()

    return app


def build_app(
    services: Services,
    provider: ChampionProvider | None = None,
    prediction_log: PredictionLogSink | None = None,
) -> FastAPI:
    """The app the predict function serves, composed from the platform's services (bootstrap).

    Canary/shadow and ``POST /feedback`` are wired from the registry and OUTCOMES_TABLE; predictions
    are logged only when a ``prediction_log`` (bootstrap.build_prediction_log) is passed.
    """
    s = services.settings
    scoring = build_online_scoring(services, provider, prediction_log)
    return create_app(
        scoring,
        max_batch=s.max_batch,
        max_body_bytes=s.max_body_bytes,
        record_feedback=build_feedback_recorder(services),
        customer_score=build_customer_score_lookup(services),
    )
