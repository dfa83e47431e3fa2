"""Telling people and systems what the retraining loop did: SNS (the stack's AlarmTopic) and EventBridge.

SnsNotifier(topic_arn, boto3.client("sns")).notify("churnguard: rolled back v3", {"version": "v3", ...})
EventBridgePublisher("default", boto3.client("events")).publish("ModelRolledBack", {"version": "v3"})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from churnguard.domain.errors import StorageError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sns import SNSClient

SOURCE = "churnguard.retraining"


class SnsNotifier:
    def __init__(self, topic_arn: str, sns_client: SNSClient) -> None:
        self.topic_arn = topic_arn
        self.sns = sns_client

    def notify(self, subject: str, message: Mapping[str, Any]) -> None:
        try:
            self.sns.publish(
                TopicArn=self.topic_arn,
                Subject=subject[:100],  # SNS's limit for email subjects
                Message=json.dumps(message, indent=2, default=str),
            )
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot notify {self.topic_arn}: {e}") from e


class EventBridgePublisher:
    def __init__(self, bus: str, events_client: EventBridgeClient, source: str = SOURCE) -> None:
        self.bus = bus
        self.events = events_client
        self.source = source

    def publish(self, detail_type: str, detail: Mapping[str, Any]) -> None:
        entry = {
            "EventBusName": self.bus,
            "Source": self.source,
            "DetailType": detail_type,
            "Detail": json.dumps(detail, default=str),
        }
        try:
            resp = self.events.put_events(Entries=[entry])  # type: ignore[list-item]
        except (ClientError, BotoCoreError) as e:
            raise StorageError(f"cannot publish {detail_type}: {e}") from e
        if resp.get("FailedEntryCount"):
            raise StorageError(f"EventBridge refused {detail_type}: {resp.get('Entries')}")
