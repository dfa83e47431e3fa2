"""Predict function: the FastAPI app behind API Gateway, through Mangum.

Clients, the champion cache and the app are built once per container; the model itself
loads on the first request that needs it (not in a lifespan hook: Mangum runs with
lifespan="off").
"""

from __future__ import annotations

import gc
import json
import random
import time
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from mangum import Mangum

from churnguard.bootstrap import build_prediction_log, build_provider, build_services, install_shutdown_hook
from churnguard.entrypoints.api import build_app
from churnguard.entrypoints.events import http_request

logger = Logger()
metrics = Metrics()

_services = build_services()
_provider = build_provider(
    _services,
    on_fallback=lambda reason: metrics.add_metric("ModelFallback", MetricUnit.Count, 1),
    # A bundle that fails its checksums is refused (never served) and raises the alarm of that name.
    on_integrity_failure=lambda version, message: (
        logger.error("model artifact refused", extra={"version": version, "problem": message}),
        metrics.add_metric("ArtifactIntegrityFailure", MetricUnit.Count, 1),
    ),
)
# Every prediction goes to the Firehose log, buffered and sent when due; a loss is counted, never raised.
_prediction_log = build_prediction_log(
    _services, on_drop=lambda n: metrics.add_metric("PredictionLogDropped", MetricUnit.Count, n)
)
app = build_app(_services, _provider, prediction_log=_prediction_log)
_asgi = Mangum(app, lifespan="off")


# ----- shutdown ----------------------------------------------------------------------------------
# Records still buffered when Lambda reaps this environment are sent on its SIGTERM, or counted as
# PredictionLogDropped when Firehose does not confirm them within 0.3 s (Lambda allows ~0.5 s).
# Sending on every invocation instead would put a Firehose call on every prediction's latency.
def _on_shutdown() -> None:
    if _prediction_log is not None:
        _prediction_log.close(timeout_s=0.3)
    if metrics.metric_set:
        metrics.flush_metrics()


install_shutdown_hook(_services, _on_shutdown)


# ----- garbage collector ---------------------------------------------------------------------
# The libraries, the app and the model are long-lived: gc.freeze() moves them out of the collector's
# generations, so the full collections a request sometimes triggers do not walk them (a p99 cost).
# Done at init and again after each model load (a new model brings its own long-lived objects).
_frozen_for: list[str | None] = [None]


def _freeze_heap() -> None:
    gc.freeze()
    _frozen_for[0] = _provider.loaded_version


_freeze_heap()


# ----- SnapStart (template: SnapStart ApplyOn PublishedVersions) ---------------------------------
# The snapshot is taken after init; loading the champion before it means a restored environment
# answers its first request without reading S3 or DynamoDB. Restored copies share the snapshot's
# memory, so randomness is re-seeded and the alias re-read at once (the snapshot may be old).
# AWS credentials need nothing: SnapStart environments serve them through the container
# credentials endpoint, which botocore re-reads when they expire.
def _before_snapshot() -> None:
    try:
        _provider.champion()
    except Exception as e:  # noqa: BLE001 - without a champion the first request loads it (or answers 503)
        logger.warning("no champion in the snapshot", extra={"error": f"{type(e).__name__}: {e}"})
    _freeze_heap()


def _after_restore() -> None:
    random.seed()
    _provider.expire()


try:  # the module ships with Lambda's python3.12+ runtime; absent locally, where nothing is snapshotted
    from snapshot_restore_py import register_after_restore, register_before_snapshot
except ImportError:  # pragma: no cover - local runs
    pass
else:
    register_before_snapshot(_before_snapshot)
    register_after_restore(_after_restore)


# ----- per-request metrics ---------------------------------------------------------------------
# PredictionLatency goes out on every request (the dashboard's p95 alarm reads it). Powertools'
# add_metric + flush validates and rebuilds the EMF document each time (~20 µs, 5% of a request):
# Powertools builds the document once per container here, and each request re-stamps its time and
# value. Every other metric (4xx, 5xx, fallback, integrity) still goes through Metrics, flushed
# only when a request added one.
_latency_doc: list[dict[str, Any]] = []


def _put_latency(ms: float) -> None:
    if not _latency_doc:
        _latency_doc.append(
            metrics.serialize_metric_set(
                metrics={
                    "PredictionLatency": {
                        "Unit": MetricUnit.Milliseconds.value,
                        "StorageResolution": 60,
                        "Value": [0.0],
                    }
                }
            )
        )
    doc = _latency_doc[0]
    doc["_aws"]["Timestamp"] = int(time.time() * 1000)
    doc["PredictionLatency"] = [ms]
    print(json.dumps(doc, separators=(",", ":")))


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.perf_counter()
    event = http_request(event)  # REST or HTTP API (named stage too); any other event: BadEventError, not Mangum's
    try:
        response = _asgi(event, context)
        if str(event.get("path") or event.get("rawPath") or "").endswith(("/predict", "/predict/batch")):
            # As the handler sees it, logging included.
            _put_latency((time.perf_counter() - started) * 1000)
        if _provider.loaded_version != _frozen_for[0]:
            _freeze_heap()
        status = response.get("statusCode", 500)
        if status >= 500:
            metrics.add_metric(name="Prediction5xx", unit=MetricUnit.Count, value=1)
        elif status >= 400:
            metrics.add_metric(name="Prediction4xx", unit=MetricUnit.Count, value=1)
        return response
    finally:
        if metrics.metric_set:  # what @metrics.log_metrics does, minus its warning when there is nothing
            metrics.flush_metrics()
