"""Fault injection into real (moto-backed) boto3 clients through botocore's own event system.

``before-send`` handlers run where the HTTP request would leave the process; returning an
``AWSResponse`` there stands in for the service's answer, so the client really receives a
throttling or server error, parses it with botocore's parser and goes through botocore's retry
logic, backoff included. botocore calls every before-send handler (the first answer wins), so
moto's responder would still execute the request: while a fault answers, the request's URL points
nowhere moto serves (moto then declines it), and a last handler restores it for the retry.
Nothing of boto3 is faked: when the fault has been used up, moto answers as usual.

    fault = inject(s3, "GetObject", "SlowDown", times=2)   # the first two GetObject calls fail
    ...
    assert fault.injected == 2 and fault.calls == 3
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from io import BytesIO
from typing import Any

from botocore.awsrequest import AWSResponse

# HTTP status each error arrives with, as the real services send it.
STATUS = {
    "SlowDown": 503,
    "InternalError": 500,
    "ServiceUnavailable": 503,
    "AccessDenied": 403,
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "RequestLimitExceeded": 400,
    "InternalServerError": 500,
}


class _Raw(BytesIO):
    def stream(self, **_: Any) -> Any:
        data = self.read()
        while data:
            yield data
            data = self.read()


@dataclass
class Fault:
    service: str
    operation: str
    code: str
    times: int | None  # None: every call fails
    calls: int = 0
    injected: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: Any, **_: Any) -> AWSResponse | None:
        with self.lock:
            self.calls += 1
            if self.times is not None and self.injected >= self.times:
                return None  # let moto answer
            self.injected += 1
        # Keep moto from executing the request this fault answers (restored by _restore_url).
        request.churnguard_fault_url = request.url
        request.url = "http://fault-injected.invalid/"
        status = STATUS.get(self.code, 500)
        if self.service == "s3":
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{self.code}</Code>'
                f"<Message>injected {self.code}</Message></Error>"
            ).encode()
            headers = {"Content-Type": "application/xml"}
        else:
            body = json.dumps(
                {"__type": f"com.amazonaws.dynamodb.v20120810#{self.code}", "message": f"injected {self.code}"}
            ).encode()
            headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-ErrorType": self.code}
        return AWSResponse(request.url, status, headers, _Raw(body))


def _restore_url(request: Any, **_: Any) -> None:
    url = getattr(request, "churnguard_fault_url", None)
    if url is not None:
        request.url = url
        del request.churnguard_fault_url


def inject(client: Any, operation: str, code: str, times: int | None = None) -> Fault:
    """Make ``operation`` on ``client`` fail with ``code`` (the first ``times`` calls, or all)."""
    service = client.meta.service_model.endpoint_prefix
    fault = Fault(service=service, operation=operation, code=code, times=times)
    event = f"before-send.{client.meta.service_model.service_id.hyphenize()}.{operation}"
    client.meta.events.register_first(event, fault)
    # On the generic event, registered last: it runs after moto's responder (also on "before-send").
    client.meta.events.register_last("before-send", _restore_url, unique_id="churnguard-restore-url")
    return fault


def remove(client: Any, fault: Fault) -> None:
    client.meta.events.unregister(
        f"before-send.{client.meta.service_model.service_id.hyphenize()}.{fault.operation}", fault
    )
