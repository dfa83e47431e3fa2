"""moto's server for DynamoDB, namespaced by account as DynamoDB Local is under LocalStack.

LocalStack's DynamoDB provider signs backend requests with the access key ``<account id><region>`` (how DynamoDB
Local separates accounts); moto separates accounts by the ``x-moto-account-id`` header, which this adds from that
key. Run as ``python -m local_lambda_executor.moto_dynamodb --port N``; it binds 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import re
import threading
import time

from moto.moto_server.werkzeug_app import create_backend_app
from werkzeug.serving import run_simple

ACCOUNT_IN_CREDENTIAL = re.compile(r"Credential=(\d{12})")


class AccountFromAccessKey:
    def __init__(self, app) -> None:
        self.app = app

    def __call__(self, environ, start_response):
        if "HTTP_X_MOTO_ACCOUNT_ID" not in environ:
            match = ACCOUNT_IN_CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
            if match:
                environ["HTTP_X_MOTO_ACCOUNT_ID"] = match.group(1)
        return self.app(environ, start_response)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    app = AccountFromAccessKey(create_backend_app("dynamodb"))
    run_simple(args.host, args.port, app, threaded=True)


if __name__ == "__main__":
    main()
