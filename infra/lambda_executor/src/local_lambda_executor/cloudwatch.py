"""LocalStack's CloudWatch provider, able to run a metric-math alarm's Lambda action.

LocalStack 2026.3 builds the Lambda action's payload with ``alarm.get("Metrics", <query from Namespace and
MetricName>)``: the default is computed even when the alarm has ``Metrics``, and a metric-math alarm has no
``Namespace``, so ``SetAlarmState``/an evaluation to ALARM fails with ``KeyError: 'Namespace'`` (InternalError) and
the function is never invoked. ChampionWatchAlarm (5xx plus fallbacks over requests) is such an alarm, with
AutoRollbackFunction as its action. This provider is the stock one with that query built from the alarm's own
``Metrics`` when it has them (as the API stores them). Select with ``PROVIDER_OVERRIDE_CLOUDWATCH=metric_math_actions``
(infra/localstack/up.sh does).
"""

from __future__ import annotations

from typing import Any

from localstack.services.cloudwatch import provider_v2

_metric_query = provider_v2.create_metric_data_query_from_alarm


def metric_data_query(alarm: Any) -> list[dict[str, Any]]:
    if "Namespace" not in alarm.alarm:  # a metric-math alarm: its Metrics are the query
        return list(alarm.alarm.get("Metrics") or [])
    return _metric_query(alarm)


def create_provider() -> provider_v2.CloudwatchProvider:
    # The payload builder looks the function up in its module at call time.
    provider_v2.create_metric_data_query_from_alarm = metric_data_query
    return provider_v2.CloudwatchProvider()
