"""The online API: a FastAPI app built from the schema by a factory.

The request model is generated from the schema, so the OpenAPI document lists the real
fields with their allowed values and bounds. The champion comes from a provider callable,
so tests and the CLI hand in their own. Every domain error maps to a status code here,
in one place; no input reaches a 500.
"""
# No `from __future__ import annotations`: FastAPI must see the generated request models, not strings.

import math
from typing import Annotated, Any, Callable, Literal, Optional

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model

from .errors import ArtifactIntegrityError, ModelNotFoundError, ModelUnavailableError, RecordValidationError
from .predictor import Predictor
from .schema import CategoricalFeature, Schema


def _blank_to_none(v: Any) -> Any:
    # A CSV row sent as JSON writes a missing value as "" or " ".
    return None if isinstance(v, str) and not v.strip() else v


def customer_model(schema: Schema) -> type[BaseModel]:
    """A pydantic model with one field per schema column (id and target optional)."""
    fields: dict[str, Any] = {}
    for f in schema.features:
        if isinstance(f, CategoricalFeature):
            typ: Any = Literal[f.categories]  # type: ignore[valid-type]
            info = Field(description=f"one of {', '.join(f.categories)}")
        else:
            base = int if f.integer else float
            typ = base
            info = Field(ge=f.minimum, le=f.maximum, allow_inf_nan=False, description=f.describe_allowed())
        if f.nullable:
            typ = Annotated[Optional[typ], BeforeValidator(_blank_to_none)]
            info.default = None
        fields[f.name] = (typ, info)
    if schema.id_column:
        fields[schema.id_column] = (Optional[str], Field(default=None, max_length=128, description="customer id (optional)"))
    fields[schema.target] = (Optional[str], Field(default=None, max_length=64, description="ignored if present"))
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


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
    model_version: str


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
    customer_score: Callable[[str], dict[str, Any] | None] | None = None,
) -> FastAPI:
    Customer = customer_model(schema)
    schema_sha = schema.sha256

    Batch = create_model(
        "CustomerBatch",
        __config__=ConfigDict(extra="forbid"),
        customers=(list[Customer], Field(min_length=1, max_length=max_batch, description=f"1 to {max_batch} customers")),
    )

    app = FastAPI(title=title, version="1", description="Calibrated churn scores with reasons, from the champion model.")

    # A plain ASGI middleware: @app.middleware("http") (BaseHTTPMiddleware) costs ~300 us a request.
    app.add_middleware(_BodyLimit, max_body_bytes=max_body_bytes)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "problems": _problems_from_pydantic(exc.errors())}, status_code=422)

    @app.exception_handler(RecordValidationError)
    async def invalid_record(request: Request, exc: RecordValidationError) -> JSONResponse:
        return JSONResponse({"error": "invalid request", "problems": exc.problems}, status_code=422)

    @app.exception_handler(ModelUnavailableError)
    async def unavailable(request: Request, exc: ModelUnavailableError) -> JSONResponse:
        return JSONResponse({"error": "model unavailable", "detail": str(exc)}, status_code=503, headers={"Retry-After": "5"})

    def _score(records: list[BaseModel], reasons: bool) -> list[dict[str, Any]]:
        predictor = champion()
        # Rows validated against this app's schema can skip re-validation when the champion shares it.
        same = predictor.schema.sha256 == schema_sha
        rows = [r.__dict__ for r in records]
        return predictor.predict_records(rows, reasons=reasons, validated=same)

    # async: a sync route costs a worker-thread hop per request (~300 us under Mangum, which starts
    # a thread per invocation); scoring one row takes ~0.2 ms of CPU, too short to offload.
    @app.post("/predict", response_model=Prediction, summary="Score one customer")
    async def predict(customer: Customer, reasons: bool = Query(True, description="include TreeSHAP reasons")):  # type: ignore[valid-type]
        return _score([customer], reasons)[0]

    @app.post("/predict/batch", response_model=BatchPrediction, summary=f"Score up to {max_batch} customers")
    def predict_batch(batch: Batch, reasons: bool = Query(True)):  # type: ignore[valid-type]
        preds = _score(batch.customers, reasons)
        return {"predictions": preds, "model_version": preds[0]["model_version"]}

    @app.get(
        "/customers/{customer_id}/score",
        response_model=StoredScore,
        summary="The customer's latest batch score, as stored (never rescored)",
        responses={404: {"description": "the customer has no stored score"}},
    )
    def stored_score(customer_id: str) -> Any:
        cid = customer_id.strip()
        if not cid or len(cid) > 128:
            return JSONResponse({"error": "invalid request", "problems": [
                {"field": "customer_id", "value": customer_id[:200], "problem": "must be 1 to 128 characters"}]}, status_code=422)
        if customer_score is None:
            return JSONResponse({"error": "customer scores unavailable", "detail": "this deployment has no score table"},
                                status_code=503)
        found = customer_score(cid)  # StorageError -> 503 above
        if found is None:
            return JSONResponse({"error": "customer not scored",
                                 "detail": "no stored score for this customer id; scores are written by batch scoring jobs"},
                                status_code=404)
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
