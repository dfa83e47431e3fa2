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

from fastapi import BackgroundTasks, Body, FastAPI, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, create_model
from pydantic_core import to_json
from starlette.exceptions import HTTPException as StarletteHTTPException

from churnguard.bootstrap import (
    Services,
    build_customer_score_lookup,
    build_feature_store,
    build_feedback_recorder,
    build_online_scoring,
)
from churnguard.domain.errors import (
    CustomerNotFoundError,
    FeatureMismatchError,
    ModelUnavailableError,
    OutcomeConflictError,
    RecordValidationError,
    StorageError,
)
from churnguard.domain.outcomes import EARLIEST, FALSE, ID_PATTERN, MAX_ID_LENGTH, TRUE, is_blank_id
from churnguard.domain.schema import CategoricalFeature, Schema, is_plain_number_text
from churnguard.services.champion import ChampionProvider
from churnguard.services.event_features import predict_customer
from churnguard.services.online_scoring import FollowUp, OnlineScoring
from churnguard.services.ports import FeatureStore, PredictionLogSink

_log = logging.getLogger(__name__)


def _blank_to_none(v: Any) -> Any:
    # A CSV row sent as JSON writes a missing value as "" or " ".
    return None if isinstance(v, str) and not v.strip() else v


def _not_a_bool(v: Any) -> Any:
    # JSON true/false is not a number, although pydantic would read it as 1/0.
    if isinstance(v, bool):
        raise ValueError("must be a number, not true or false")
    return v


def _plain_number(v: Any) -> Any:
    # pydantic reads "1_0" as 10, which batch scoring refuses: a number sent as text is read as batch reads it.
    if isinstance(v, str) and not is_plain_number_text(v):
        raise ValueError("is not a number: write it with ASCII digits and no '_' (as batch scoring reads it)")
    return v


def customer_model(schema: Schema) -> type[BaseModel]:
    """A pydantic model with one field per schema column (id and target optional)."""
    fields: dict[str, Any] = {}
    for f in schema.features:
        if isinstance(f, CategoricalFeature) and f.other is not None:
            # Pooled levels: any text is accepted and encoded as the pooled level, as in training and batch.
            typ: Any = str
            info = Field(max_length=256, description=f.describe_allowed())
        elif isinstance(f, CategoricalFeature):
            typ = Literal[f.categories]
            info = Field(description=f"one of {', '.join(f.categories)}")
        else:
            base = int if f.integer else float
            # The bounds sit on the number itself, so a nullable field's document still states them
            # (on the Optional they became unknown "ge"/"le" keys that no client reads).
            bounds = Field(ge=f.minimum, le=f.maximum, allow_inf_nan=False)
            typ = Annotated[base, bounds, BeforeValidator(_not_a_bool), BeforeValidator(_plain_number)]
            info = Field(description=f.describe_allowed())
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


class CustomerPrediction(Prediction):
    features_as_of: str = Field(description="when the nightly refresh computed the customer's features (UTC)")


class BatchPrediction(BaseModel):
    predictions: list[Prediction]
    model_version: str


# ----- the answers that are not predictions: one shape per kind, each documented on its routes -----
class Problem(BaseModel):
    field: str = Field(description="the field at fault, dotted for nested ones (customers.1.tenure), or body")
    value: str | int | float | bool | None = Field(description="what was sent (long text cut at 200 characters)")
    problem: str = Field(description="what is wrong, and what is allowed")


class InvalidRequest(BaseModel):
    """422: the body or a parameter breaks the contract; every problem is named."""

    error: Literal["invalid request"]
    problems: list[Problem] = Field(min_length=1)


class ErrorAnswer(BaseModel):
    """Every other refusal: what happened (``error``) and what to do about it (``detail``)."""

    error: str
    detail: str


class FeedbackStored(BaseModel):
    stored: bool = Field(description="true: recorded now (201); false: the same outcome was already there (200)")
    duplicate: bool
    customer_key: str = Field(description="the customer id's keyed hash; the id itself is never stored")
    observed_date: str
    churned: bool


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorAnswer, "description": description}


BAD_JSON = _error("the body is not JSON: the detail gives the position of the first error")
TOO_LARGE = _error("the body is over the size limit (MAX_BODY_BYTES)")
NOT_JSON_TYPE = _error("the body was not sent as JSON: send Content-Type: application/json")
INVALID = {"model": InvalidRequest, "description": "invalid fields, each named with its value and what is allowed"}
NO_MODEL = _error("no model can be loaded (none promoted, or its store is down); retry after Retry-After seconds")
STORE_DOWN = _error("a store (DynamoDB) is unavailable; retry after Retry-After seconds")
BODY_ERRORS: dict[int | str, dict[str, Any]] = {400: BAD_JSON, 413: TOO_LARGE, 415: NOT_JSON_TYPE, 422: INVALID}


def _case_insensitive(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


# What POST /feedback accepts, as JSON Schema: the same rules domain/outcomes.py applies (its parse_*
# functions validate; this only describes them), so the document and the answers cannot disagree.
FEEDBACK_BODY_SCHEMA: dict[str, Any] = {
    "title": "Feedback",
    "type": "object",
    "additionalProperties": False,
    "required": ["customer_id", "churned", "observed_date"],
    "properties": {
        "customer_id": {
            "type": "string",
            "maxLength": MAX_ID_LENGTH,
            "pattern": ID_PATTERN,
            "description": "the customer's id, as sent to /predict (hashed on arrival, never stored)",
        },
        "churned": {
            "description": "yes or no (also accepted: true/false, 1/0, y/n, churned/stayed, any case)",
            "anyOf": [
                {"type": "boolean"},
                {"type": "integer", "enum": [0, 1]},
                {
                    "type": "string",
                    "pattern": r"^\s*(" + "|".join(_case_insensitive(w) for w in sorted(TRUE | FALSE)) + r")\s*$",
                },
            ],
        },
        "observed_date": {
            "type": "string",
            "format": "date",
            "pattern": r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}\s*$",
            "description": f"the day the outcome was observed, YYYY-MM-DD, from {EARLIEST.isoformat()} to today "
            "(one day of slack for time zones)",
        },
    },
    "example": {"customer_id": "7590-VHVEG", "churned": "yes", "observed_date": "2026-05-01"},
}


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


def _echo(value: Any) -> str | int | float | bool | None:
    """A sent value as a Problem echoes it: scalars as sent (long text cut), objects and lists not at all."""
    if isinstance(value, float) and not math.isfinite(value):
        value = str(value)
    if not isinstance(value, (str, int, float, bool, type(None))):
        value = None if isinstance(value, (dict, list, tuple)) else str(value)
    if isinstance(value, str) and len(value) > 200:
        value = value[:200] + "..."
    return value


def _problems_from_pydantic(errors: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        value = _echo(e.get("input"))
        problem = e.get("msg", "invalid")
        if not loc and e.get("type") == "missing":
            problem = "the body is empty: send one JSON object with Content-Type: application/json"
        out.append({"field": ".".join(loc) or "body", "value": value, "problem": problem})
    return out


def _not_json(errors: Sequence[Any], body: Any) -> str | None:
    """What is wrong with a body that is not JSON, with where (FastAPI reports the character offset)."""
    for e in errors:
        if e.get("type") == "json_invalid":
            loc: Sequence[Any] = e.get("loc") or ()
            pos = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
            reason = (e.get("ctx") or {}).get("error") or "invalid JSON"
            where = ""
            if pos is not None:
                text = body if isinstance(body, str) else ""
                line = text.count("\n", 0, pos) + 1
                column = pos - (text.rfind("\n", 0, pos) + 1) + 1
                where = f" at line {line}, column {column} (character {pos + 1})"
            return f"the body is not valid JSON: {reason}{where}; send one JSON object"
    return None


def _meant_as_json(body: Any) -> bool:
    """A body that opens (after JSON's whitespace) an object or an array was written as JSON, whatever
    type it was sent as: a mistake in it is answered with where it is, not with its content type."""
    return isinstance(body, str) and body.lstrip(" \t\r\n")[:1] in ("{", "[")


def _sent_as_other_type(errors: Sequence[Any]) -> bool:
    """FastAPI reads a body sent with a non-JSON content type as bytes, and then finds bytes where an
    object belongs: the client's content type is the problem, not a field."""
    return any(tuple(e.get("loc") or ()) == ("body",) and isinstance(e.get("input"), bytes) for e in errors)


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


# A customer id in a path: documented here, checked by the route with _is_bad_customer_id and answered by
# _bad_customer_id in our words (FastAPI's own check would answer in its).
CustomerIdPath = Annotated[
    str,
    Path(description="the customer's id", json_schema_extra={"maxLength": MAX_ID_LENGTH, "pattern": ID_PATTERN}),
]


def _is_bad_customer_id(customer_id: str) -> bool:
    return is_blank_id(customer_id) or len(customer_id) > MAX_ID_LENGTH


def _bad_customer_id(customer_id: str) -> JSONResponse:
    """422 naming a customer id in a path that is blank or too long (checked here, in our words)."""
    problem = {
        "field": "customer_id",
        "value": customer_id[:200],
        "problem": f"must be 1 to {MAX_ID_LENGTH} characters, not only spaces",
    }
    return JSONResponse({"error": "invalid request", "problems": [problem]}, status_code=422)


def _unavailable(what: str) -> JSONResponse:
    """503 for a /customers route whose table this deployment does not have (``what``: "score", "feature")."""
    return JSONResponse(
        {"error": f"customer {what}s unavailable", "detail": f"this deployment has no {what} table"}, status_code=503
    )


class _JsonBodyByDefault:
    """Reads a body sent without a JSON Content-Type as JSON: every route here takes JSON or nothing.

    `sam local generate-event apigateway` events (and some API Gateway clients) carry no Content-Type, and
    `curl -d` without -H sends application/x-www-form-urlencoded; FastAPI would not parse either as JSON and
    answer 422 "Input should be a valid dictionary" for a valid body. A body that is not JSON still gets the
    usual 400 naming the problem, except a form body (`a=1&b=2`) sent as a form: that is a wrong content type,
    answered 415 naming it (the type declared is kept in the scope under DECLARED). A body sent as a form
    that opens with `{` or `[` was meant as JSON (`curl -d '{"tenure": 1,'`): its mistake gets the 400.
    """

    FORM = b"application/x-www-form-urlencoded"
    DECLARED = "churnguard.declared_content_type"

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope.get("method") in ("POST", "PUT", "PATCH"):
            headers = [(k, v) for k, v in scope["headers"] if k != b"content-type"]
            declared = [v for k, v in scope["headers"] if k == b"content-type"]
            if not declared or declared[0].split(b";", 1)[0].strip().lower() == self.FORM:
                scope = {
                    **scope,
                    "headers": [*headers, (b"content-type", b"application/json")],
                    self.DECLARED: declared[0].decode("latin-1") if declared else None,
                }
        await self.app(scope, receive, send)


def _answer(
    request: Request, body: dict[str, Any], status_code: int, headers: Mapping[str, str] | None = None
) -> Response:
    """The error shape as JSON, or as a page for people on the console's paths."""
    if request.url.path.startswith("/console"):
        from churnguard.entrypoints.console_pages import error_page

        problems = "; ".join(f"{p['field']}: {p['problem']}" for p in body.get("problems", []))
        page = error_page(status_code, str(body["error"]), str(body.get("detail") or problems))
        page.headers.update(headers or {})
        return page
    return JSONResponse(body, status_code=status_code, headers=headers)


def _map_errors(app: FastAPI) -> None:
    """Every error a request can meet, as a status code and our error shape: the one place they are mapped."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's own answers (unparseable body, unknown route, wrong method) in our error shape.
        detail = str(exc.detail)
        if exc.status_code == 400 and "parsing the body" in detail:
            detail = "the request body is not valid JSON: send one JSON object with Content-Type: application/json"
        error = {400: "invalid request", 404: "not found", 405: "method not allowed"}.get(
            exc.status_code, "request refused"
        )
        return _answer(request, {"error": error, "detail": detail}, exc.status_code, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        not_json = _not_json(errors, exc.body)
        declared_form = request.scope.get(_JsonBodyByDefault.DECLARED)
        if not_json is not None and (not declared_form or _meant_as_json(exc.body)):
            return _answer(request, {"error": "invalid JSON", "detail": not_json}, 400)
        if not_json is not None or _sent_as_other_type(errors):
            # A form that is not JSON (`a=1&b=2`) was meant as a form: name the type rather than a JSON position.
            sent = declared_form or request.headers.get("content-type")
            how = f"as {sent[:100]}" if sent else "without a Content-Type"
            return _answer(
                request,
                {
                    "error": "unsupported media type",
                    "detail": f"the body was sent {how}: send JSON with Content-Type: application/json",
                },
                415,
            )
        return _answer(request, {"error": "invalid request", "problems": _problems_from_pydantic(errors)}, 422)

    @app.exception_handler(RecordValidationError)
    async def invalid_record(request: Request, exc: RecordValidationError) -> Response:
        problems = [{**p, "field": str(p.get("field")), "value": _echo(p.get("value"))} for p in exc.problems]
        return _answer(request, {"error": "invalid request", "problems": problems}, 422)

    @app.exception_handler(ModelUnavailableError)
    async def unavailable(request: Request, exc: ModelUnavailableError) -> Response:
        retry_after = str(getattr(exc, "retry_after_s", 5))
        return _answer(
            request, {"error": "model unavailable", "detail": str(exc)}, 503, headers={"Retry-After": retry_after}
        )

    @app.exception_handler(OutcomeConflictError)
    async def outcome_conflict(request: Request, exc: OutcomeConflictError) -> Response:
        return _answer(request, {"error": "conflicting outcome", "detail": str(exc)}, 409)

    @app.exception_handler(CustomerNotFoundError)
    async def customer_not_found(request: Request, exc: CustomerNotFoundError) -> Response:
        return _answer(request, {"error": "customer not found", "detail": str(exc)}, 404)

    @app.exception_handler(FeatureMismatchError)
    async def feature_mismatch(request: Request, exc: FeatureMismatchError) -> Response:
        return _answer(request, {"error": "stored features do not fit the champion", "detail": str(exc)}, 409)

    @app.exception_handler(StorageError)
    async def storage_unavailable(request: Request, exc: StorageError) -> Response:
        return _answer(request, {"error": "storage unavailable", "detail": str(exc)}, 503, headers={"Retry-After": "5"})


def create_app(
    scoring: OnlineScoring,
    *,
    max_batch: int = 1000,
    max_body_bytes: int = 2_000_000,
    title: str = "Churn prediction API",
    record_feedback: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None,
    customer_score: Callable[[str], dict[str, Any] | None] | None = None,
    customer_features: FeatureStore | None = None,
) -> FastAPI:
    """The routes and the one mapping of domain errors to status codes; what answers is ``scoring``'s.

    ``record_feedback`` (services.feedback.record_feedback, bound) adds ``POST /feedback``;
    ``customer_score`` (the score store's lookup) answers ``GET /customers/{id}/score``;
    ``customer_features`` (the feature store) lets ``POST /customers/{id}/predict`` score a stored vector.
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

    # Swagger UI (/docs) and ReDoc (/redoc) from files shipped in the fastapi-offline package, not a
    # public CDN: the docs work behind a proxy, in a VPC, offline.
    app = FastAPIOffline(
        title=title,
        version="1",
        description="Calibrated churn scores with reasons, from the champion model. Errors: 422 names each "
        "invalid field; every other refusal is {error, detail}.",
        static_url="/docs/assets",
    )

    # A plain ASGI middleware: @app.middleware("http") (BaseHTTPMiddleware) costs ~300 us a request.
    app.add_middleware(_BodyLimit, max_body_bytes=max_body_bytes)
    app.add_middleware(_JsonBodyByDefault)

    _map_errors(app)

    def _request_id(request: Request) -> str:
        event = request.scope.get("aws.event") or {}
        return str((event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex)

    # async: a sync background task would cost a worker-thread hop per request under Mangum.
    async def _follow_up(later: FollowUp, request_id: str) -> None:
        scoring.follow_up(later, request_id)

    # async: a sync route costs a worker-thread hop per request (~300 us under Mangum, which starts
    # a thread per invocation); scoring one row takes ~0.2 ms of CPU, too short to offload.
    @app.post(
        "/predict",
        response_model=Prediction,
        summary="Score one customer",
        responses={**BODY_ERRORS, 503: NO_MODEL},
    )
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

    @app.post(
        "/predict/batch",
        response_model=BatchPrediction,
        summary=f"Score up to {max_batch} customers",
        responses={**BODY_ERRORS, 503: NO_MODEL},
    )
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
        # The body is read as a plain object and validated by the domain (domain/outcomes.py names each bad
        # field); FEEDBACK_BODY_SCHEMA documents the same rules.
        @app.post(
            "/feedback",
            status_code=201,
            response_model=FeedbackStored,
            summary="Record what happened to a customer (ground truth)",
            responses={
                200: {"model": FeedbackStored, "description": "the same outcome was already stored (nothing changed)"},
                **BODY_ERRORS,
                409: _error("an outcome for this customer and date is stored with the opposite value"),
                503: STORE_DOWN,
            },
            openapi_extra={"requestBody": {"content": {"application/json": {"schema": FEEDBACK_BODY_SCHEMA}}}},
        )
        def feedback(payload: Annotated[dict[str, Any], Body()]) -> JSONResponse:
            body = record_feedback(payload)  # RecordValidationError -> 422 naming each field, conflict -> 409
            return JSONResponse(body, status_code=201 if body["stored"] else 200)

    @app.get(
        "/customers/{customer_id}/score",
        response_model=StoredScore,
        summary="The customer's latest batch score, as stored (never rescored)",
        responses={
            404: _error("the customer has no stored score (scores are written by batch scoring jobs)"),
            422: INVALID,
            503: _error("this deployment has no score table, or it is unavailable"),
        },
    )
    def stored_score(
        customer_id: CustomerIdPath,
    ) -> Any:
        if _is_bad_customer_id(customer_id):
            return _bad_customer_id(customer_id)
        cid = customer_id.strip()
        if customer_score is None:
            return _unavailable("score")
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

    @app.post(
        "/customers/{customer_id}/predict",
        response_model=CustomerPrediction,
        summary="Score a customer by id: the champion on the customer's latest stored features",
        responses={
            404: _error("no current features for this customer (unknown or no longer active)"),
            409: _error("the stored features do not fit the champion (it was trained on other features)"),
            422: INVALID,
            503: _error("no model can be loaded, or this deployment has no feature table, or a store is down"),
        },
    )
    def predict_by_id(  # sync: a DynamoDB read must not block the event loop (it runs in the thread pool)
        customer_id: CustomerIdPath,
        request: Request,
        background: BackgroundTasks,
        reasons: bool = Query(True, description="include TreeSHAP reasons"),
    ) -> Any:
        if _is_bad_customer_id(customer_id):
            return _bad_customer_id(customer_id)
        cid = customer_id.strip()
        if customer_features is None:
            return _unavailable("feature")
        pred, later = predict_customer(cid, customer_features, scoring, reasons)  # 404 / 409 mapped above
        if later is not None:
            background.add_task(_follow_up, later, _request_id(request))
        return JSONResponse(pred)

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

    @app.get("/model", summary="The champion's metadata and metrics", responses={503: NO_MODEL})
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
        customer_features=build_feature_store(services),
    )


def build_console_app(services: Services, allow_anonymous: bool = False) -> FastAPI:
    """The console function's app: the dashboard routes (JSON) and the console's pages, with the same
    error mapping. People sign in through CONSOLE_USER_POOL_CLIENT_ID; only ``allow_anonymous``
    (`churn console`, bound to 127.0.0.1) serves the pages without it."""
    from churnguard.bootstrap import build_console, build_console_sign_in
    from churnguard.domain.errors import ConfigurationError
    from churnguard.entrypoints.console_api import dashboard_router
    from churnguard.entrypoints.console_pages import console_router

    sign_in = build_console_sign_in(services)
    if sign_in is None and not allow_anonymous:
        raise ConfigurationError(
            "set CONSOLE_USER_POOL_CLIENT_ID (the Cognito app client people sign in with): "
            "the console shows customer data"
        )
    reads = build_console(services)
    app = FastAPI(
        title="churnguard console",
        version="1",
        description="Read-only: the call list, customers, models, drift, canary and retraining runs.",
    )
    app.add_middleware(_BodyLimit, max_body_bytes=20_000)
    _map_errors(app)
    app.include_router(dashboard_router(reads))
    app.include_router(console_router(reads, sign_in))
    return app
