"""An embedded AWS emulator: moto's server on 127.0.0.1 with the template's resources.

    with Emulator() as emu:          # starts moto server, creates buckets and tables
        os.environ.update(emu.env)   # AWS_ENDPOINT_URL, MODEL_BUCKET, REGISTRY_TABLE, ...
"""
from __future__ import annotations

import logging
import os
import socket
import urllib.request
from pathlib import Path
from typing import Any

from .template import create_resources, load_template

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Emulator:
    def __init__(self, template: Path | None = None, port: int | None = None) -> None:
        self.template_path = template
        self.port = port or free_port()
        self.server: Any = None
        self.env: dict[str, str] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Emulator":
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request drowns the demo
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        # moto keeps its state per process: start every emulator from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10)
        for k, v in FAKE_CREDENTIALS.items():
            os.environ.setdefault(k, v)
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"]
        )
        s3 = session.client("s3", endpoint_url=self.endpoint)
        ddb = session.client("dynamodb", endpoint_url=self.endpoint)
        resources = create_resources(load_template(self.template_path), s3, ddb)
        self.env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, **resources}
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
