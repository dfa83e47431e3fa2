"""The dashboard routes: the console's read models as JSON, for machines (behind the API key, as every route).

Read-only, every one: promotion, rollback, retraining and erasure have no route. ``api.py`` mounts
this router; domain errors become status codes through the app's one error mapping.

    app.include_router(dashboard_router(build_console(services)))
    GET /dashboard/call-list?risk=high&reason=Contract&page=1&size=25
"""
# No `from __future__ import annotations`: FastAPI reads the route signatures.

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from churnguard.services.console import ConsoleReads

RiskLevel = Literal["high", "medium"]
CUSTOMER_ID = Path(min_length=1, max_length=128, description="the customer id, as in the scored data")


def not_found(error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=404)


def dashboard_router(reads: ConsoleReads) -> APIRouter:
    router = APIRouter(prefix="/dashboard", tags=["dashboard (read-only)"])

    @router.get("/models", summary="Every model version (status, metrics), the champion and the canary")
    def models() -> dict[str, Any]:
        return reads.models()

    @router.get(
        "/call-list",
        summary="The latest batch job's at-risk customers, most likely to leave first, with action and value",
    )
    def call_list(
        risk: Annotated[list[RiskLevel] | None, Query(description="risk levels to list (default both)")] = None,
        reason: Annotated[str | None, Query(max_length=100, description="a feature among the risk reasons")] = None,
        page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
        size: Annotated[int, Query(ge=1, le=200)] = 25,
    ) -> Any:
        body = reads.call_list_page(risk, reason or None, page, size)
        if body["job"] is None:
            return not_found("no batch job", "no batch scoring job has finished yet: run `churn score` first")
        return body

    @router.get("/customers/{customer_id}", summary="A customer's latest stored score, reasons and history")
    def customer(customer_id: Annotated[str, CUSTOMER_ID]) -> dict[str, Any]:
        return reads.customer(customer_id.strip())

    @router.get("/drift/latest", summary="The newest drift report")
    def drift() -> Any:
        return reads.drift() or not_found("no drift report", "the drift check has not written a report yet")

    @router.get("/evaluations/latest", summary="The newest evaluation report (challenger against champion)")
    def evaluation() -> Any:
        return reads.evaluation() or not_found("no evaluation report", "no candidate has been evaluated yet")

    @router.get("/canary", summary="The canary or shadow, and each variant's results on observed outcomes")
    def canary() -> dict[str, Any]:
        return reads.canary()

    @router.get(
        "/runs", summary="Training runs (the retraining loop and manual ones), newest first, with their outcome"
    )
    def retraining() -> dict[str, Any]:
        return reads.retraining()

    return router
