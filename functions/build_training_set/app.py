"""BuildTrainingSet function: the retraining state machine's first step, the data the run trains and is judged on.

Event (from the state machine): ``{"run": <the execution input>, "execution": {"id", "name", "started"}}``.
The run may name its data (``"data"`` and ``"holdout"``: s3:// CSVs); otherwise, and unless TRAINING_DATA_URI
overrides it, a fresh training set is built from served predictions joined point in time to the outcomes that
followed, the newest period held out (churnguard.domain.training_set).

Returns the run's state for the next steps: the input, plus ``execution``, ``reason`` (``manual`` when the input
gives none), ``canary`` (``{}`` when none), ``data``, ``holdout`` and ``training_set`` (``status``: built, given or
insufficient_data; ``rows``, ``period``, ``reasons``, ``report``). Too few labelled rows is an answer (the state
machine stops the run and records why), not an error.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_services, build_training_set_step
from churnguard.entrypoints.events import BadEventError, event_time

logger = Logger()
metrics = Metrics()
_prepare = build_training_set_step(build_services())


def _uri(run: dict[str, Any], name: str) -> str | None:
    value = run.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value.startswith("s3://"):
        raise BadEventError(f"{name!r} must be an s3:// URI of a CSV, not {str(value)[:200]!r}")
    return value


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = event.get("run") if isinstance(event, dict) else None
    execution = event.get("execution") if isinstance(event, dict) else None
    if not isinstance(run, dict) or not isinstance(execution, dict) or not execution.get("name"):
        raise BadEventError(
            "a BuildTrainingSet event needs {'run': <the execution input>, 'execution': {'id', 'name', 'started'}}"
        )
    reason = run.get("reason") or "manual"
    if not isinstance(reason, str):
        raise BadEventError(f"'reason' must be a string, not {reason!r}")
    summary = _prepare(
        str(execution["name"]),
        event_time({"time": execution.get("started")}),
        data=_uri(run, "data"),
        holdout=_uri(run, "holdout"),
    )
    logger.info("training data", extra={"training_set": summary})
    if summary["status"] == "built":
        metrics.add_metric(name="TrainingSetRows", unit=MetricUnit.Count, value=summary["rows"]["train"])
        metrics.add_metric(name="HoldoutRows", unit=MetricUnit.Count, value=summary["rows"]["holdout"])
    elif summary["status"] == "insufficient_data":
        metrics.add_metric(name="RetrainingStoppedNoData", unit=MetricUnit.Count, value=1)
    return {
        **run,
        "reason": reason,
        "execution": execution,
        "canary": run.get("canary") or {},  # the canary stage's options for this run (CanaryFunction checks them)
        "data": summary["data"],
        "holdout": summary["holdout"],
        **({"schema": summary["schema"]} if summary.get("schema") else {}),
        "training_set": {k: v for k, v in summary.items() if k not in ("data", "holdout", "schema")},
    }
