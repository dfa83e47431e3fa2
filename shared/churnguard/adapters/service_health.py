"""What the predict function answered over a window, from its CloudWatch metrics (Powertools EMF).

Requests are the sample count of ``PredictionLatency`` (published for every /predict and /predict/batch
answer), errors the ``Prediction5xx`` count, fallbacks the ``ModelFallback`` count, all with the
``service`` dimension the functions publish.

    CloudWatchServiceHealth(boto3.client("cloudwatch"), "ChurnGuard").counts(start, end)
    # {"requests": 1200.0, "errors": 0.0, "fallbacks": 3.0}, or None when nothing was published
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

QUERIES = {
    "requests": ("PredictionLatency", "SampleCount"),
    "errors": ("Prediction5xx", "Sum"),
    "fallbacks": ("ModelFallback", "Sum"),
}


class CloudWatchServiceHealth:
    def __init__(self, cloudwatch_client: CloudWatchClient, namespace: str, service: str = "churnguard") -> None:
        self.cw = cloudwatch_client
        self.namespace = namespace
        self.service = service

    def counts(self, start: datetime, end: datetime) -> dict[str, float] | None:
        # One period over the whole window (CloudWatch wants a multiple of 60 s).
        period = max(60, math.ceil((end - start).total_seconds() / 60) * 60)
        queries: list[Any] = [
            {
                "Id": name,
                "MetricStat": {
                    "Metric": {
                        "Namespace": self.namespace,
                        "MetricName": metric,
                        "Dimensions": [{"Name": "service", "Value": self.service}],
                    },
                    "Period": period,
                    "Stat": stat,
                },
                "ReturnData": True,
            }
            for name, (metric, stat) in QUERIES.items()
        ]
        try:
            resp = self.cw.get_metric_data(MetricDataQueries=queries, StartTime=start, EndTime=end)
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot read the predict function's metrics: {e}") from e
        results = {r["Id"]: r.get("Values") or [] for r in resp.get("MetricDataResults", [])}
        if not any(results.values()):
            return None
        return {name: float(sum(results.get(name, []))) for name in QUERIES}
