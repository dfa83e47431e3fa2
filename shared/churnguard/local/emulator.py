"""An embedded AWS emulator: moto's server on 127.0.0.1 with the template's resources.

with Emulator() as emu:          # starts moto server, creates buckets and tables
    os.environ.update(emu.env)   # AWS_ENDPOINT_URL, MODEL_BUCKET, REGISTRY_TABLE, ...
    print(emu.export_lines())    # the same, for a shell (`churn emulator` prints them)
"""

from __future__ import annotations

import logging
import os
import shlex
import urllib.request
from pathlib import Path
from typing import Any

from churnguard.local.ports import free_port
from churnguard.local.template import create_resources, load_template

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


__all__ = ["FAKE_CREDENTIALS", "Emulator", "free_port"]


class Emulator:
    def __init__(self, template: Path | None = None, port: int | None = None, serial: bool = False) -> None:
        """``serial=True`` answers one request at a time.

        DynamoDB runs each transaction in isolation. moto does not: it snapshots whole tables at
        the start of a transaction and restores the snapshot when the transaction is cancelled,
        wiping writes that other requests made meanwhile. Tests of concurrent clients use a
        serial emulator so the race they exercise is the clients' own, as it would be on AWS.
        """
        self.template_path = template
        self.port = port or free_port()
        self.serial = serial
        self.server: Any = None
        self.env: dict[str, str] = {}

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        import boto3
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request drowns the demo
        self.server = (_SerialMotoServer if self.serial else ThreadedMotoServer)(
            ip_address="127.0.0.1", port=self.port, verbose=False
        )
        self.server.start()
        # moto keeps its state per process: start every emulator from an empty account.
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST"), timeout=10)
        for k, v in FAKE_CREDENTIALS.items():
            os.environ.setdefault(k, v)
        session = boto3.session.Session(
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name=FAKE_CREDENTIALS["AWS_DEFAULT_REGION"],
        )
        s3 = session.client("s3", endpoint_url=self.endpoint)
        ddb = session.client("dynamodb", endpoint_url=self.endpoint)
        resources = create_resources(load_template(self.template_path), s3, ddb)
        self.env = {**FAKE_CREDENTIALS, "AWS_ENDPOINT_URL": self.endpoint, **resources}
        if "MODEL_BUCKET" in resources:
            # No Firehose here: served predictions go straight into the bucket, in the layout it would give them.
            self.env["PREDICTION_LOG_BUCKET"] = resources["MODEL_BUCKET"]
        return self

    def export_lines(self) -> str:
        """``export NAME=value`` for every variable of ``env``, ready to paste into a shell."""
        return "\n".join(f"export {k}={shlex.quote(v)}" for k, v in self.env.items())

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _serial_server_class() -> Any:
    from moto.moto_server.threaded_moto_server import MotoRequestHandler, ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    class SerialMotoServer(ThreadedMotoServer):
        def _server_entry(self) -> None:
            app = DomainDispatcherApplication(create_backend_app)
            self._server = make_server(
                self._ip_address, self._port, app, threaded=False, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    return SerialMotoServer


def _SerialMotoServer(**kwargs: Any) -> Any:  # noqa: N802 - a factory standing in for a class
    return _serial_server_class()(**kwargs)
