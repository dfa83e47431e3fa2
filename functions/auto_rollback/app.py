"""Automatic rollback: the action of the champion's watch alarm (error or fallback rate of the predict function).

During the watch after a promotion (ROLLBACK_WATCH_HOURS), an alarm going to ALARM rolls the champion back to the
previous one through the registry's conditional switch (only if the champion is still the watched version at the
watched revision), marks the version as rolled back (the loop never promotes it again), notifies AlarmTopic and
publishes ModelRolledBack. Outside a watch, or for another state, it records why it did nothing.

Event: the alarm's Lambda action (``{"source": "aws.cloudwatch", "alarmData": {...}}``) or its SNS notification.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from churnguard.bootstrap import build_rollback_on_alarm, build_services
from churnguard.entrypoints.events import alarm_state_change

logger = Logger()
metrics = Metrics()
_roll_back = build_rollback_on_alarm(build_services())


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    alarm = alarm_state_change(event)
    result = _roll_back(alarm, datetime.now(UTC))
    if result["rolled_back"]:
        logger.warning("champion rolled back", extra={"result": result})
        metrics.add_metric(name="AutomaticRollbacks", unit=MetricUnit.Count, value=1)
    else:
        logger.info("alarm: no rollback", extra={"result": result})
    return result
